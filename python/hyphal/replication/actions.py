"""What the feed replication machine asks its driver to do: the actions a ``Replicator`` returns.

Each is a small frozen value. The driver performs them in order and reports
the outcome of the slow or cryptographic ones back to the machine as events
(``head_verified``, ``served``, ``data_stored``); docs/PROTOCOL.md §10.5.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from typing_extensions import Buffer

from hyphal.buffers import Parts

PeerId: TypeAlias = Hashable
"""Whatever the driver uses to name a connection; the machine only compares and hashes it."""


class DropReason(StrEnum):
    BAD_AUTH = "bad-auth"
    """The AUTH MAC is wrong: the peer does not know the feed key (or replays another connection's)."""
    PROTOCOL = "protocol"
    """A malformed message, a message before AUTH, a reused request id, too many ranges."""
    UNREQUESTED_DATA = "unrequested-data"
    """DATA or NO_DATA for a request we never sent to this peer (or already answered)."""
    MISMATCHED_DATA = "mismatched-data"
    """DATA whose proof or blocks do not match the request's range."""
    BAD_HEAD = "bad-head"
    """A head the driver could not verify, or one that contradicts its SYNC."""
    BAD_DATA = "bad-data"
    """DATA that failed verification in the driver."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` as one message on the peer's feed channel.

    A DATA message comes as a list of pieces (its blocks uncopied); every
    other message as ``bytes``. :func:`~hyphal.replication.messages.decode_message`
    takes either.
    """

    peer_id: PeerId
    data: bytes | Parts


@dataclass(frozen=True, slots=True)
class VerifyHead:
    """Verify a peer's signed head; report with :meth:`Replicator.head_verified`."""

    peer_id: PeerId
    head: bytes


@dataclass(frozen=True, slots=True)
class Serve:
    """Build a proof for ``(length, upgrade_from, start, end)`` and read blocks ``[start, end)``.

    Report with :meth:`Replicator.served`, or :meth:`Replicator.serve_failed`
    if storage lacks something. ``length`` may be older than the feed's
    current length; its nodes are still in storage.
    """

    peer_id: PeerId
    request_id: int
    fork: int
    length: int
    upgrade_from: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Store:
    """Verify a reply and store it atomically; report with :meth:`Replicator.data_stored`.

    The driver must check, before storing anything: when ``head`` is not
    empty, that it verifies and names ``fork`` and ``length``; that the
    proof verifies against that head's tree hash (or, with no head, against
    the local tree at ``length``) using the local roots at ``upgrade_from``;
    and that the local fork is still ``fork``. It adopts ``head`` only if it
    is longer than the local one. Then it reports ``data_stored`` and, on
    success, ``local_changed``.
    """

    peer_id: PeerId
    request_id: int
    fork: int
    length: int
    upgrade_from: int
    start: int
    end: int
    head: bytes
    proof: Buffer
    blocks: tuple[Buffer, ...]


@dataclass(frozen=True, slots=True)
class DropPeer:
    """Close the peer's feed channel (the machine has already forgotten it)."""

    peer_id: PeerId
    reason: DropReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ForkDetected:
    """A peer proved a head on a later fork: apply the truncation, then report ``data_stored``.

    ``proof`` upgrades our tree at ``upgrade_from`` (the length we try to keep;
    0 always works) to ``length`` on ``fork``; it carries no blocks. The driver
    verifies ``head``, then the proof against its tree hash with our roots at
    ``upgrade_from``, truncates to ``upgrade_from`` and adopts the head, all at
    once (``Feed.apply_truncation``). It reports ``data_stored`` and, on
    success, ``local_changed`` with the new fork. A failure with
    ``upgrade_from > 0`` is retried from 0 before anyone is blamed.
    """

    peer_id: PeerId
    request_id: int
    fork: int
    length: int
    upgrade_from: int
    head: bytes
    proof: Buffer


@dataclass(frozen=True, slots=True)
class DownloadDone:
    handle: int


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Call :meth:`Replicator.tick` at ``deadline`` (replaces the previous timer; None: no timer)."""

    deadline: float | None


Action: TypeAlias = Send | VerifyHead | Serve | Store | DropPeer | ForkDetected | DownloadDone | SetTimer


__all__ = [
    "Action",
    "DownloadDone",
    "DropPeer",
    "DropReason",
    "ForkDetected",
    "PeerId",
    "Send",
    "Serve",
    "SetTimer",
    "Store",
    "VerifyHead",
]
