"""What a blob :class:`~hyphal.blobs.transfer.Download` asks its driver to do, sans-I/O.

The machine returns these; the driver (:mod:`hyphal.blobs.downloader`) sends,
stores, drops providers and reports progress, and may run a
:class:`DecodeJob` (verifying one large reply) on a worker thread.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from hyphal import _core


@dataclass(frozen=True)
class Send:
    provider: Hashable
    data: bytes


@dataclass(frozen=True)
class SizeKnown:
    """The size is verified: open the partial blob before the next Store."""

    size: int


@dataclass(frozen=True)
class Store:
    """Verified output of a decoder: write it to the partial blob."""

    nodes: list[tuple[int, bytes]]
    groups: list[tuple[int, bytes]]


@dataclass(frozen=True)
class DropProvider:
    provider: Hashable
    reason: str


@dataclass(frozen=True)
class Progress:
    bytes_done: int
    bytes_total: int
    providers: int
    rate: float
    """Bytes per second received so far in this download."""
    eta: float | None
    """Seconds left at that rate; ``None`` before anything arrived."""


@dataclass(frozen=True)
class Finished:
    pass


@dataclass(frozen=True)
class Failed:
    reason: str


Action = Send | SizeKnown | Store | DropProvider | Progress | Finished | Failed


Decoded = tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]
THREAD_BYTES = 256 * 1024
"""DATA replies at least this large are offered to the driver as a :class:`DecodeJob`."""


@dataclass(frozen=True)
class DecodeJob:
    """Verifying one DATA reply: pure work on one request's decoder, safe on another thread
    while the machine goes on (only this provider's next reply must wait for it)."""

    provider: Hashable
    request_id: int
    last: bool
    decoder: _core.RangeDecoder
    payload: memoryview

    def run(self) -> Decoded:
        return self.decoder.feed(self.payload)


__all__ = [
    "THREAD_BYTES",
    "Action",
    "DecodeJob",
    "Decoded",
    "DropProvider",
    "Failed",
    "Finished",
    "Progress",
    "Send",
    "SizeKnown",
    "Store",
]
