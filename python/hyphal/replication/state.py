"""What the feed replication machine knows: its configuration, our feed's state and each peer's.

Plain records shared by :mod:`~hyphal.replication.replicator` (which handles
events, serves peers and announces our state) and
:mod:`~hyphal.replication.scheduler` (which decides what to ask of whom).
Neither holds behaviour here beyond trivial views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from hyphal.errors import InvalidInput
from hyphal.replication.actions import PeerId
from hyphal.replication.messages import MAX_BLOCKS_PER_REQUEST, Request
from hyphal.replication.ranges import RangeSet


@dataclass(frozen=True, slots=True)
class ReplicatorConfig:
    target_reply_bytes: int = 1 << 20
    """Requests ask for about this many bytes of blocks."""
    default_block_size: int = 64 << 10
    """Assumed block size while no byte length is known."""
    max_blocks_per_request: int = MAX_BLOCKS_PER_REQUEST
    initial_window: int = 2
    """Requests in flight to a new peer; grows by one per stored reply."""
    max_window: int = 16
    request_timeout: float = 30.0
    max_concurrent_serves: int = 4
    """Serve actions outstanding per peer (the driver reads storage for each)."""
    max_queued_serves: int = 64
    """Requests a peer may have queued with us; more get NO_DATA(BUSY)."""
    max_cancelled_ids: int = 1024
    """Cancelled request ids remembered per peer, so late replies are ignored rather than punished."""

    def __post_init__(self) -> None:
        if not (
            self.target_reply_bytes > 0
            and self.default_block_size > 0
            and 0 < self.max_blocks_per_request <= MAX_BLOCKS_PER_REQUEST
            and 0 < self.initial_window <= self.max_window
            and self.request_timeout > 0
            and self.max_concurrent_serves > 0
            and self.max_queued_serves >= self.max_concurrent_serves
            and self.max_cancelled_ids > 0
        ):
            raise InvalidInput("inconsistent ReplicatorConfig")


@dataclass(slots=True)
class LocalState:
    """Our feed as the machine knows it: the latest ``local_changed``, plus what stored replies added."""

    fork: int
    length: int
    head: bytes
    have: RangeSet
    block_size_hint: int | None
    """Average block size from our own byte length, when we know one."""
    now: float = 0.0
    """The machine's clock: the latest ``tick(now)``."""


class RequestState(Enum):
    SENT = 1
    """On the wire; counts against the peer's window and can time out."""
    STORING = 2
    """Reply received and handed to the driver as a Store; the blocks stay reserved."""


@dataclass(slots=True)
class Outgoing:
    """A request we sent."""

    message: Request
    peer_id: PeerId
    deadline: float
    estimated_bytes: int
    state: RequestState = RequestState.SENT
    proof_length: int = 0
    head: bytes = b""

    @property
    def blocks(self) -> tuple[int, int]:
        return self.message.start, self.message.end

    @property
    def upgrades(self) -> bool:
        return self.message.upgrade_from < self.message.length


@dataclass(slots=True)
class Incoming:
    """A request a peer sent us."""

    message: Request
    head: bytes = b""
    """The head the reply carries: ours when the request upgrades, fixed when the Serve was emitted."""
    cancelled: bool = False


@dataclass(slots=True)
class HeadCheck:
    """A head waiting for the driver's verification, and what its message claimed about it."""

    head: bytes
    fork: int | None
    length: int | None


@dataclass(slots=True)
class PeerState:
    id: PeerId
    handshake_hash: bytes
    is_initiator: bool
    window: int
    authenticated: bool = False
    synced_fork: int | None = None
    # The peer's latest verified head.
    fork: int | None = None
    length: int = 0
    head: bytes = b""
    byte_length: int | None = None
    have: RangeSet = field(default_factory=RangeSet)
    wants: RangeSet = field(default_factory=RangeSet)
    in_flight: dict[int, Outgoing] = field(default_factory=dict)
    in_flight_bytes: int = 0
    cancelled: dict[int, None] = field(default_factory=dict)  # insertion-ordered set
    verifying: HeadCheck | None = None
    next_head: HeadCheck | None = None
    serve_queue: dict[int, Incoming] = field(default_factory=dict)
    serving: dict[int, Incoming] = field(default_factory=dict)
    stale: bool = False
    """It said NO_DATA for fork or length reasons: wait for its next SYNC or head."""
    upgrade_refused_at: int = -1
    block_cap: int | None = None


def block_size(length: int, byte_length: int | None) -> int | None:
    """The average block size a head's byte length implies (None when it has none, or no blocks)."""
    return max(1, byte_length // length) if byte_length is not None and length > 0 else None


__all__ = [
    "HeadCheck",
    "Incoming",
    "LocalState",
    "Outgoing",
    "PeerState",
    "ReplicatorConfig",
    "RequestState",
    "block_size",
]
