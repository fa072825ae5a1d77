"""What the mux (:mod:`hyphal.net.mux`) tells its driver: channel states and events, sans-I/O.

:meth:`~hyphal.net.mux.Mux.receive` returns these; the connection
(:mod:`hyphal.net.connection`) turns each into a wake-up of the channel it names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ChannelState(enum.Enum):
    OPENING = "opening"
    """Opened here, not yet by the peer: no credit to send."""
    OPEN = "open"
    REMOTE_CLOSED = "remote closed"
    """The peer closed or rejected it; buffered messages can still be read."""


# -- events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """The peer opened the pair too: the channel can send."""

    channel: int


@dataclass(frozen=True, slots=True)
class ChannelRequested:
    """The peer opened a pair not opened here: accept with :meth:`Mux.open` or :meth:`Mux.reject`."""

    protocol: str
    id: bytes


@dataclass(frozen=True, slots=True)
class ChannelRequestWithdrawn:
    """The peer closed a pair before it was accepted here."""

    protocol: str
    id: bytes


@dataclass(frozen=True, slots=True)
class Readable:
    """Messages arrived on the channel; take them with :meth:`Mux.read`."""

    channel: int


@dataclass(frozen=True, slots=True)
class Writable:
    """The peer granted credit on the channel."""

    channel: int


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """The peer closed (or rejected) the channel."""

    channel: int
    reason: str


@dataclass(frozen=True, slots=True)
class PongReceived:
    nonce: int


@dataclass(frozen=True, slots=True)
class GoodbyeReceived:
    """The peer is closing the whole connection."""

    reason: str


Event = (
    ChannelOpened
    | ChannelRequested
    | ChannelRequestWithdrawn
    | Readable
    | Writable
    | ChannelClosed
    | PongReceived
    | GoodbyeReceived
)


__all__ = [
    "ChannelClosed",
    "ChannelOpened",
    "ChannelRequestWithdrawn",
    "ChannelRequested",
    "ChannelState",
    "Event",
    "GoodbyeReceived",
    "PongReceived",
    "Readable",
    "Writable",
]
