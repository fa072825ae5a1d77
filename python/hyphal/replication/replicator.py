"""The replication state machine of one feed, sans-I/O.

A :class:`Replicator` talks to many peers about one feed. It holds no
sockets, reads no clock, never sleeps and touches no storage: every public
method is an event and returns a list of actions for the driver to perform
(send bytes, verify a head, build a reply from storage, verify and store a
reply, drop a peer, set a timer). The driver reports the outcome of the
slow or cryptographic actions back as events (``head_verified``,
``served``, ``data_stored``). docs/PROTOCOL.md §10 describes the
protocol and the policy.

Time: the machine's clock is the latest ``tick(now)``. Drivers call
``tick(now)`` before feeding other events (it is cheap) and at every
:class:`SetTimer` deadline.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TypeAlias

from typing_extensions import Buffer

from hyphal.buffers import Parts
from hyphal.errors import DecodeError, HyphalError, InvalidInput
from hyphal.merkle import Proof
from hyphal.replication.capability import capability_key, capability_mac, verify_capability
from hyphal.replication.messages import (
    MAX_BLOCKS_PER_REQUEST,
    MAX_LENGTH,
    MAX_MESSAGE_SIZE,
    Auth,
    Cancel,
    Data,
    Have,
    Head,
    NoData,
    NoDataReason,
    Request,
    Sync,
    Unwant,
    Want,
    decode_message,
    encode_range_messages,
)
from hyphal.replication.ranges import OPEN_END, RangeSet

PeerId: TypeAlias = Hashable
"""Whatever the driver uses to name a connection; the machine only compares and hashes it."""

MAX_PEER_RANGES = 1 << 16
"""Runs a peer's HAVE or WANT may accumulate; beyond this it is dropped (memory bound)."""


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


# -- actions ---------------------------------------------------------------------


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


# -- internal state ----------------------------------------------------------------


class _State(Enum):
    SENT = 1
    """On the wire; counts against the peer's window and can time out."""
    STORING = 2
    """Reply received and handed to the driver as a Store; the blocks stay reserved."""


@dataclass(slots=True)
class _Outgoing:
    """A request we sent."""

    message: Request
    peer_id: PeerId
    deadline: float
    estimated_bytes: int
    state: _State = _State.SENT
    proof_length: int = 0
    head: bytes = b""

    @property
    def blocks(self) -> tuple[int, int]:
        return self.message.start, self.message.end

    @property
    def upgrades(self) -> bool:
        return self.message.upgrade_from < self.message.length


@dataclass(slots=True)
class _Incoming:
    """A request a peer sent us."""

    message: Request
    head: bytes = b""
    """The head the reply carries: ours when the request upgrades, fixed when the Serve was emitted."""
    cancelled: bool = False


@dataclass(slots=True)
class _HeadCheck:
    """A head waiting for the driver's verification, and what its message claimed about it."""

    head: bytes
    fork: int | None
    length: int | None


@dataclass(slots=True)
class _Peer:
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
    in_flight: dict[int, _Outgoing] = field(default_factory=dict)
    in_flight_bytes: int = 0
    cancelled: dict[int, None] = field(default_factory=dict)  # insertion-ordered set
    verifying: _HeadCheck | None = None
    next_head: _HeadCheck | None = None
    serve_queue: dict[int, _Incoming] = field(default_factory=dict)
    serving: dict[int, _Incoming] = field(default_factory=dict)
    stale: bool = False
    """It said NO_DATA for fork or length reasons: wait for its next SYNC or head."""
    upgrade_refused_at: int = -1
    block_cap: int | None = None


class Replicator:
    """Replicates one feed with any number of peers. See the module docstring."""

    def __init__(
        self,
        feed_key: Buffer,
        *,
        length: int = 0,
        fork: int = 0,
        head: bytes = b"",
        have: Iterable[tuple[int, int]] = (),
        byte_length: int | None = None,
        config: ReplicatorConfig | None = None,
    ) -> None:
        self._capability_key = capability_key(feed_key)
        self._config = config or ReplicatorConfig()
        self._now = 0.0
        _check_local(length, fork, head, byte_length)
        self._fork = fork
        self._length = length
        self._head = head
        self._block_size_hint = _block_size(length, byte_length)
        self._have = RangeSet(have)
        # What every authenticated peer has been told (updated by _announce).
        self._announced_fork = fork
        self._announced_length = length
        self._announced_have = self._have.copy()
        self._peers: dict[PeerId, _Peer] = {}
        self._requests: dict[int, _Outgoing] = {}
        self._reserved = RangeSet()
        self._next_request_id = 1
        self._downloads: dict[int, tuple[int, int]] = {}
        self._next_handle = 1
        self._explicit_wants = RangeSet()
        self._announced_wants = RangeSet()
        self._timer: float | None = None
        self._keep_failed: tuple[int, int] | None = None
        """(fork, length): keeping our tree at that length failed to verify under that fork."""

    # -- read-only views -------------------------------------------------------

    @property
    def length(self) -> int:
        return self._length

    @property
    def fork(self) -> int:
        return self._fork

    @property
    def have(self) -> RangeSet:
        return self._have.copy()

    @property
    def peer_ids(self) -> list[PeerId]:
        return list(self._peers)

    def peers_settled(self) -> bool:
        """Every peer's SYNC is in and no head of theirs awaits verification: ``length``
        is at least every head they have told us of, so fetching ``[0, length)`` is a full sync."""
        return all(
            p.synced_fork is not None and p.verifying is None and p.next_head is None
            for p in self._peers.values()
        )

    @property
    def remote_length(self) -> int:
        """The longest verified head any peer has told us of (0 if none)."""
        return max((p.length for p in self._peers.values() if p.head), default=0)

    def in_flight(self, peer_id: PeerId) -> int:
        """Requests on the wire to ``peer_id``."""
        peer = self._peers.get(peer_id)
        return len(peer.in_flight) if peer else 0

    def window(self, peer_id: PeerId) -> int:
        peer = self._peers.get(peer_id)
        return peer.window if peer else 0

    # -- events: peers -----------------------------------------------------------

    def add_peer(self, peer_id: PeerId, handshake_hash: Buffer, is_initiator: bool) -> list[Action]:
        """A feed channel opened. We send AUTH; SYNC and HAVE follow once the peer's AUTH checks out."""
        if peer_id in self._peers:
            raise InvalidInput(f"peer {peer_id!r} already added")
        peer = _Peer(peer_id, bytes(handshake_hash), is_initiator, self._config.initial_window)
        mac = capability_mac(self._capability_key, peer.handshake_hash, is_initiator)
        self._peers[peer_id] = peer
        return [Send(peer_id, Auth(mac).encode())]

    def remove_peer(self, peer_id: PeerId) -> list[Action]:
        """The channel closed. Its requests go to other peers."""
        out: list[Action] = []
        peer = self._peers.get(peer_id)
        if peer is not None:
            self._forget(peer)
        return self._finish(out)

    def receive(self, peer_id: PeerId, data: Buffer) -> list[Action]:
        """A message arrived on the peer's feed channel."""
        out: list[Action] = []
        peer = self._peers.get(peer_id)
        if peer is None:
            return out  # a late message from a peer already dropped
        try:
            message = decode_message(data)
        except DecodeError as exc:
            self._drop(peer, DropReason.PROTOCOL, str(exc), out)
            return self._finish(out)
        if not peer.authenticated:
            if isinstance(message, Auth):
                self._on_auth(peer, message, out)
            else:
                self._drop(peer, DropReason.PROTOCOL, "message before AUTH", out)
            return self._finish(out)
        match message:
            case Auth():
                self._drop(peer, DropReason.PROTOCOL, "second AUTH", out)
            case Sync():
                self._on_sync(peer, message, out)
            case Have(ranges):
                peer.have.update(ranges)
                self._limit_ranges(peer, peer.have, out)
            case Want(ranges):
                added = RangeSet(ranges).difference(peer.wants)
                peer.wants.update(ranges)
                self._limit_ranges(peer, peer.wants, out)
                # Growth is announced only inside wanted ranges, so a newly wanted
                # range needs its current holdings now; they may predate the WANT.
                held = self._have.intersection(added)
                out.extend(Send(peer.id, m) for m in encode_range_messages(Have, list(held)))
            case Unwant(ranges):
                peer.wants.difference_update(ranges)
            case Request():
                self._on_request(peer, message, out)
            case Cancel(request_id):
                self._on_cancel(peer, request_id)
            case Data():
                self._on_data(peer, message, out)
            case NoData():
                self._on_no_data(peer, message, out)
            case Head(head):
                self._check_head(peer, _HeadCheck(head, peer.synced_fork, None), out)
        return self._finish(out)

    # -- events: local state and interest ------------------------------------------

    def local_changed(
        self,
        length: int,
        fork: int,
        head: bytes,
        have: Iterable[tuple[int, int]],
        byte_length: int | None = None,
    ) -> list[Action]:
        """Storage changed (a local append, a truncation, a store): the authoritative local state."""
        _check_local(length, fork, head, byte_length)
        out: list[Action] = []
        if fork != self._fork:
            # Every request we sent names the old fork; its replies are useless now.
            for request in [r for r in self._requests.values() if r.state is _State.SENT]:
                self._cancel_request(request, out)
            for peer in self._peers.values():
                peer.stale = False
                peer.upgrade_refused_at = -1
        self._fork, self._length, self._head = fork, length, head
        self._block_size_hint = _block_size(length, byte_length) or self._block_size_hint
        self._have = RangeSet(have)
        self._announce(out)
        return self._finish(out)

    def want(self, start: int, end: int | None = None) -> list[Action]:
        """Ask peers for HAVE updates on ``[start, end)``; ``end=None``: all, and follow the head live."""
        self._explicit_wants.add(*_interval(start, end))
        return self._finish([])

    def unwant(self, start: int, end: int | None = None) -> list[Action]:
        self._explicit_wants.remove(*_interval(start, end))
        return self._finish([])

    def download(self, start: int, end: int | None = None) -> tuple[int, list[Action]]:
        """Fetch blocks ``[start, end)``; ``end=None`` also fetches every future block (never done).

        Returns a handle; :class:`DownloadDone` names it once all blocks are held.
        """
        interval = _interval(start, end)
        handle = self._next_handle
        self._next_handle += 1
        self._downloads[handle] = interval
        return handle, self._finish([])

    def cancel(self, handle: int) -> list[Action]:
        """Stop a download; requests nobody needs any more are cancelled."""
        out: list[Action] = []
        if self._downloads.pop(handle, None) is not None:
            targets = self._download_targets()
            for request in [r for r in self._requests.values() if r.state is _State.SENT]:
                start, end = request.blocks
                if start < end and not targets.clip(start, end):
                    self._cancel_request(request, out)
        return self._finish(out)

    # -- events: results of driver actions -------------------------------------------

    def head_verified(
        self,
        peer_id: PeerId,
        head: bytes,
        ok: bool,
        length: int = 0,
        fork: int = 0,
        byte_length: int | None = None,
    ) -> list[Action]:
        """The result of a :class:`VerifyHead`: whether it verifies, and the length and fork it signs."""
        out: list[Action] = []
        peer = self._peers.get(peer_id)
        if peer is None or peer.verifying is None or peer.verifying.head != head:
            return out  # the peer is gone, or a result we no longer wait for
        check, peer.verifying = peer.verifying, None
        if not ok:
            self._drop(peer, DropReason.BAD_HEAD, "head does not verify", out)
            return self._finish(out)
        if not (0 <= length <= MAX_LENGTH and fork >= 0):
            raise InvalidInput("verified head out of range")
        if (check.fork is not None and fork != check.fork) or (
            check.length is not None and length != check.length
        ):
            self._drop(
                peer, DropReason.BAD_HEAD, "head contradicts the fork or length its message claimed", out
            )
            return self._finish(out)
        if peer.fork is None or (fork, length) > (peer.fork, peer.length):
            peer.fork, peer.length, peer.head, peer.byte_length = fork, length, head, byte_length
            peer.stale = False
        if peer.next_head is not None:
            peer.verifying, peer.next_head = peer.next_head, None
            out.append(VerifyHead(peer.id, peer.verifying.head))
        return self._finish(out)

    def served(
        self, peer_id: PeerId, request_id: int, proof: Buffer, blocks: Sequence[Buffer]
    ) -> list[Action]:
        """The result of a :class:`Serve`: the encoded proof and the blocks."""
        out: list[Action] = []
        peer = self._peers.get(peer_id)
        job = peer.serving.get(request_id) if peer else None
        if peer is None or job is None:
            return out
        if len(blocks) != job.message.end - job.message.start:
            raise InvalidInput("served the wrong number of blocks")
        del peer.serving[request_id]
        if job.cancelled:
            pass
        elif job.message.fork != self._fork:  # we forked while the driver built it
            out.append(Send(peer.id, NoData(request_id, NoDataReason.WRONG_FORK).encode()))
        else:
            data = Data(request_id, job.head, proof, tuple(blocks))
            if data.encoded_size() > MAX_MESSAGE_SIZE:
                out.append(Send(peer.id, NoData(request_id, NoDataReason.TOO_LARGE).encode()))
            else:
                out.append(Send(peer.id, data.encode_parts()))
        self._pump_serves(peer, out)
        return self._finish(out)

    def serve_failed(self, peer_id: PeerId, request_id: int, reason: NoDataReason) -> list[Action]:
        """A :class:`Serve` could not be built (storage lacks a node or block)."""
        out: list[Action] = []
        peer = self._peers.get(peer_id)
        job = peer.serving.pop(request_id, None) if peer else None
        if peer is None or job is None:
            return out
        if not job.cancelled:
            out.append(Send(peer.id, NoData(request_id, NoDataReason(reason)).encode()))
        self._pump_serves(peer, out)
        return self._finish(out)

    def data_stored(
        self, peer_id: PeerId, request_id: int, ok: bool, error: str = "", peer_at_fault: bool = True
    ) -> list[Action]:
        """The result of a :class:`Store`.

        ``ok=False`` with ``peer_at_fault`` (verification failed) drops the
        peer; without it (a local storage failure) the blocks are simply
        requested again. On success the driver should also call
        :meth:`local_changed` (before or after: both are idempotent).
        """
        out: list[Action] = []
        request = self._requests.get(request_id)
        if request is None or request.state is not _State.STORING or request.peer_id != peer_id:
            return out
        self._release(request)
        peer = self._peers.get(peer_id)
        message = request.message
        if ok:
            if message.fork == self._fork:
                self._have.add(message.start, message.end)
                if request.proof_length > self._length:
                    self._length, self._head = request.proof_length, request.head
            if peer is not None:
                peer.window = min(self._config.max_window, peer.window + 1)
                if peer.fork == message.fork and request.proof_length > peer.length:
                    peer.length, peer.head = request.proof_length, request.head
            self._announce(out)
        elif message.fork > self._fork and message.upgrade_from > 0:
            # Our tree at upgrade_from is not a prefix of the new fork (or the proof was bad):
            # ask again keeping nothing; only that attempt can blame the peer.
            self._keep_failed = (message.fork, message.upgrade_from)
        elif peer is not None and peer_at_fault and message.fork >= self._fork:
            # (After we forked, the driver refuses replies for the old fork: not the peer's fault.)
            self._drop(peer, DropReason.BAD_DATA, error or "data does not verify", out)
        return self._finish(out)

    def tick(self, now: float) -> list[Action]:
        """Advance the clock; requests past their deadline are cancelled and asked of others."""
        self._now = max(self._now, now)
        out: list[Action] = []
        for request in [r for r in self._requests.values() if r.state is _State.SENT]:
            if request.deadline <= self._now:
                peer = self._peers[request.peer_id]
                peer.window = max(1, peer.window // 2)
                self._cancel_request(request, out)
        return self._finish(out)

    # -- message handlers ------------------------------------------------------------

    def _on_auth(self, peer: _Peer, message: Auth, out: list[Action]) -> None:
        if not verify_capability(
            self._capability_key, peer.handshake_hash, not peer.is_initiator, message.mac
        ):
            self._drop(peer, DropReason.BAD_AUTH, "capability MAC does not match", out)
            return
        peer.authenticated = True
        # Nothing about the feed is revealed before the peer proved it knows the feed key.
        out.append(Send(peer.id, Sync(self._fork, self._length, self._head).encode()))
        out.extend(Send(peer.id, m) for m in encode_range_messages(Have, list(self._have)))
        out.extend(Send(peer.id, m) for m in encode_range_messages(Want, list(self._announced_wants)))

    def _on_sync(self, peer: _Peer, message: Sync, out: list[Action]) -> None:
        # A SYNC restarts the peer's announcements: a full HAVE follows it.
        peer.have.clear()
        peer.synced_fork = message.fork
        peer.stale = False
        peer.upgrade_refused_at = -1
        if message.head:
            self._check_head(peer, _HeadCheck(message.head, message.fork, message.length), out)

    def _check_head(self, peer: _Peer, check: _HeadCheck, out: list[Action]) -> None:
        verified = (
            check.head == peer.head
            and check.fork in (None, peer.fork)
            and check.length in (None, peer.length)
        )
        if verified or check in (peer.verifying, peer.next_head):
            return  # verified already, or about to be
        # One verification at a time per peer; a newer head replaces any waiting one.
        if peer.verifying is None:
            peer.verifying = check
            out.append(VerifyHead(peer.id, check.head))
        else:
            peer.next_head = check

    def _on_request(self, peer: _Peer, message: Request, out: list[Action]) -> None:
        if message.id in peer.serve_queue or message.id in peer.serving:
            self._drop(peer, DropReason.PROTOCOL, f"request id {message.id} reused", out)
            return
        reason: NoDataReason | None = None
        if len(peer.serve_queue) + len(peer.serving) >= self._config.max_queued_serves:
            reason = NoDataReason.BUSY
        elif message.fork != self._fork:
            reason = NoDataReason.WRONG_FORK
        elif message.length > self._length:
            reason = NoDataReason.BEYOND_LENGTH
        elif not self._have.covers(message.start, message.end):
            reason = NoDataReason.NOT_AVAILABLE
        if reason is not None:
            out.append(Send(peer.id, NoData(message.id, reason).encode()))
            return
        peer.serve_queue[message.id] = _Incoming(message)
        self._pump_serves(peer, out)

    def _pump_serves(self, peer: _Peer, out: list[Action]) -> None:
        while peer.serve_queue and len(peer.serving) < self._config.max_concurrent_serves:
            request_id = next(iter(peer.serve_queue))
            job = peer.serve_queue.pop(request_id)
            m = job.message
            if m.fork != self._fork:  # we forked while it waited
                out.append(Send(peer.id, NoData(request_id, NoDataReason.WRONG_FORK).encode()))
                continue
            # An upgrade goes to our current length (at least the one asked for): we hold
            # the signed head for that length only.
            upgrading = m.upgrade_from < m.length
            length = self._length if upgrading else m.length
            upgraded = Request(m.id, m.fork, length, m.start, m.end, m.upgrade_from)
            peer.serving[request_id] = _Incoming(upgraded, self._head if upgrading else b"")
            out.append(Serve(peer.id, m.id, m.fork, length, m.upgrade_from, m.start, m.end))

    def _on_cancel(self, peer: _Peer, request_id: int) -> None:
        if peer.serve_queue.pop(request_id, None) is None and request_id in peer.serving:
            peer.serving[request_id].cancelled = True  # the driver is building it; discard the result

    def _on_data(self, peer: _Peer, message: Data, out: list[Action]) -> None:
        request = peer.in_flight.get(message.id)
        if request is None:
            self._unexpected_reply(peer, message.id, out)
            return
        proof_length_or_error = _check_reply(request.message, message)
        if isinstance(proof_length_or_error, str):
            self._drop(peer, DropReason.MISMATCHED_DATA, proof_length_or_error, out)
            return
        del peer.in_flight[message.id]
        peer.in_flight_bytes -= request.estimated_bytes
        request.state = _State.STORING
        request.proof_length = proof_length_or_error
        request.head = message.head
        m = request.message
        if m.fork != self._fork:
            out.append(
                ForkDetected(
                    peer.id, m.id, m.fork, proof_length_or_error, m.upgrade_from, message.head, message.proof
                )
            )
            return
        out.append(
            Store(
                peer.id,
                m.id,
                m.fork,
                proof_length_or_error,
                m.upgrade_from,
                m.start,
                m.end,
                message.head,
                message.proof,
                message.blocks,
            )
        )

    def _on_no_data(self, peer: _Peer, message: NoData, out: list[Action]) -> None:
        request = peer.in_flight.get(message.id)
        if request is None:
            self._unexpected_reply(peer, message.id, out)
            return
        self._release(request)
        start, end = request.blocks
        match message.reason:
            case NoDataReason.NOT_AVAILABLE:
                if start < end:
                    peer.have.remove(start, end)  # until it announces them again
                else:
                    peer.upgrade_refused_at = peer.length
            case NoDataReason.WRONG_FORK | NoDataReason.BEYOND_LENGTH:
                peer.stale = True
            case NoDataReason.BUSY:
                peer.window = max(1, len(peer.in_flight))
            case NoDataReason.TOO_LARGE:
                if end - start > 1:
                    peer.block_cap = max(1, (end - start) // 2)
                else:
                    peer.have.remove(start, end)

    def _unexpected_reply(self, peer: _Peer, request_id: int, out: list[Action]) -> None:
        if request_id in peer.cancelled:
            del peer.cancelled[request_id]  # a reply that crossed our CANCEL: ignore it
        else:
            self._drop(
                peer, DropReason.UNREQUESTED_DATA, f"reply to request {request_id} we did not send", out
            )

    def _limit_ranges(self, peer: _Peer, ranges: RangeSet, out: list[Action]) -> None:
        if len(ranges) > MAX_PEER_RANGES:
            self._drop(peer, DropReason.PROTOCOL, "too many ranges", out)

    # -- peers and requests ----------------------------------------------------------

    def _drop(self, peer: _Peer, reason: DropReason, detail: str, out: list[Action]) -> None:
        if self._peers.get(peer.id) is peer:
            self._forget(peer)
            out.append(DropPeer(peer.id, reason, detail))

    def _forget(self, peer: _Peer) -> None:
        del self._peers[peer.id]
        for request in list(peer.in_flight.values()):
            self._release(request)
        # Replies already handed to the driver (STORING) stay until data_stored: verified data
        # is fine to keep whoever relayed it.

    def _release(self, request: _Outgoing) -> None:
        """Forget a request: its blocks may be requested again."""
        self._requests.pop(request.message.id, None)
        peer = self._peers.get(request.peer_id)
        if peer is not None and peer.in_flight.pop(request.message.id, None) is not None:
            peer.in_flight_bytes -= request.estimated_bytes
        self._reserved.remove(*request.blocks)

    def _cancel_request(self, request: _Outgoing, out: list[Action]) -> None:
        peer = self._peers.get(request.peer_id)
        if peer is not None:
            out.append(Send(peer.id, Cancel(request.message.id).encode()))
            peer.cancelled[request.message.id] = None
            while len(peer.cancelled) > self._config.max_cancelled_ids:
                del peer.cancelled[next(iter(peer.cancelled))]
        self._release(request)

    def _new_request_id(self, peer: _Peer) -> int:
        while True:
            request_id = self._next_request_id
            self._next_request_id = request_id % 0xFFFFFFFF + 1  # u32, never 0
            if request_id not in self._requests and request_id not in peer.cancelled:
                return request_id

    # -- announcing our state ----------------------------------------------------------

    def _authenticated(self) -> list[_Peer]:
        return [p for p in self._peers.values() if p.authenticated]

    def _announce(self, out: list[Action]) -> None:
        """Tell peers what changed since the last announcement: HEAD and new HAVE, or a full resync."""
        shrank = self._length < self._announced_length or bool(self._announced_have.difference(self._have))
        if self._fork != self._announced_fork or shrank:
            sync = Sync(self._fork, self._length, self._head).encode()
            haves = encode_range_messages(Have, list(self._have))
            for peer in self._authenticated():
                out.append(Send(peer.id, sync))
                out.extend(Send(peer.id, m) for m in haves)
        else:
            if self._length > self._announced_length:
                head = Head(self._head).encode()
                for peer in self._authenticated():
                    if peer.fork != self._fork or peer.length < self._length:
                        out.append(Send(peer.id, head))
            new = self._have.difference(self._announced_have)
            if new:
                for peer in self._authenticated():
                    for m in encode_range_messages(Have, list(new.intersection(peer.wants))):
                        out.append(Send(peer.id, m))
        self._announced_fork, self._announced_length = self._fork, self._length
        self._announced_have = self._have.copy()

    def _sync_wants(self, out: list[Action]) -> None:
        wants = self._explicit_wants.union(self._download_targets())
        added = wants.difference(self._announced_wants)
        removed = self._announced_wants.difference(wants)
        if not added and not removed:
            return
        messages = encode_range_messages(Want, list(added)) + encode_range_messages(Unwant, list(removed))
        for peer in self._authenticated():
            out.extend(Send(peer.id, m) for m in messages)
        self._announced_wants = wants

    def _download_targets(self) -> RangeSet:
        return RangeSet(self._downloads.values())

    # -- scheduling ----------------------------------------------------------------------

    def _finish(self, out: list[Action]) -> list[Action]:
        """Run after every event: finished downloads, WANT changes, new requests, the timer."""
        for handle, (start, end) in list(self._downloads.items()):
            if end != OPEN_END and self._have.covers(start, end):
                del self._downloads[handle]
                out.append(DownloadDone(handle))
        self._sync_wants(out)
        self._schedule(out)
        deadline = min((r.deadline for r in self._requests.values() if r.state is _State.SENT), default=None)
        if deadline != self._timer:
            self._timer = deadline
            out.append(SetTimer(deadline))
        return out

    def _sources(self) -> list[_Peer]:
        """Peers we may ask: authenticated, with a verified head on our fork that their SYNC agrees with."""
        return [
            p
            for p in self._peers.values()
            if p.authenticated and p.fork == self._fork and p.synced_fork == p.fork and not p.stale
        ]

    def _schedule(self, out: list[Action]) -> None:
        self._schedule_fork(out)
        sources = self._sources()
        if not sources:
            return
        reach = max(self._length, max(p.length for p in sources))
        needed = RangeSet((s, min(e, reach)) for s, e in self._downloads.values() if s < min(e, reach))
        needed.difference_update(self._have)
        needed.difference_update(self._reserved)
        # Hand out one request at a time to the peer with the most free window, so work
        # spreads across peers and those that answer faster (freeing slots) get more.
        candidates = [p for p in sources if p.length >= self._length]
        while needed and candidates:
            peer = max(candidates, key=lambda p: p.window - len(p.in_flight))
            request = self._plan_blocks(peer, needed)
            if request is None:
                candidates.remove(peer)
                continue
            self._send(peer, request, out)
            needed.remove(request.start, request.end)
        self._schedule_upgrade(sources, out)

    def _plan_blocks(self, peer: _Peer, needed: RangeSet) -> Request | None:
        if len(peer.in_flight) >= peer.window:
            return None
        # One upgrade at a time: the storage layer applies an upgrade only from its current
        # length, so blocks past our length wait until the upgrade in flight is stored.
        reach = self._length if self._upgrade_in_flight() else peer.length
        servable = needed.intersection(peer.have).clip(0, min(reach, peer.length))
        first = servable.first()
        if first is None:
            return None
        start, run_end = first
        block_size = self._average_block_size()
        count = min(run_end - start, self._blocks_per_request(peer, block_size))
        # The byte window: never more than window * target bytes outstanding (but always one request).
        budget = peer.window * self._config.target_reply_bytes - peer.in_flight_bytes
        if peer.in_flight:
            count = min(count, budget // block_size)
        if count <= 0:
            return None
        end = start + count
        if end <= self._length:
            # Inside our verified tree: the proof needs only our own roots, no head.
            return Request(0, self._fork, self._length, start, end, self._length)
        # Beyond it: the same proof upgrades us from our length, so it carries only what we lack.
        return Request(0, self._fork, peer.length, start, end, self._length)

    def _schedule_upgrade(self, sources: list[_Peer], out: list[Action]) -> None:
        """Follow the head live: upgrade alone when no block request is carrying the upgrade.

        Finite downloads never upgrade alone: their block requests carry the upgrade they need.
        """
        live = self._explicit_wants.last_end() == OPEN_END
        if not (live or any(end == OPEN_END for _, end in self._downloads.values())):
            return
        best = max((p.length for p in sources), default=0)
        if best <= self._length or self._upgrade_in_flight():
            return
        for peer in sources:
            if peer.length == best and peer.upgrade_refused_at != best and len(peer.in_flight) < peer.window:
                a = self._length
                self._send(peer, Request(0, self._fork, best, a, a, a), out)
                return

    def _upgrade_in_flight(self) -> bool:
        return any(r.upgrades and r.message.fork == self._fork for r in self._requests.values())

    def _schedule_fork(self, out: list[Action]) -> None:
        """Fetch the proof that moves us to a later fork some peer has shown a signed head for."""
        if any(r.message.fork > self._fork for r in self._requests.values()):
            return  # one at a time
        later = [
            p
            for p in self._peers.values()
            if p.authenticated and p.fork is not None and p.fork > self._fork and p.synced_fork == p.fork
        ]
        later = [
            p
            for p in later
            if not p.stale and p.upgrade_refused_at != p.length and len(p.in_flight) < p.window
        ]
        if not later:
            return
        peer = max(later, key=lambda p: (p.fork or 0, p.length))
        fork, n = peer.fork or 0, peer.length
        if n == 0:
            return  # an empty later fork: nothing to prove yet; its first append will be
        # Try to keep everything we have (the truncation may be past our length); else nothing.
        keep = self._length if 0 < self._length < n and self._keep_failed != (fork, self._length) else 0
        self._send(peer, Request(0, fork, n, keep, keep, keep), out)

    def _send(self, peer: _Peer, template: Request, out: list[Action]) -> None:
        request_id = self._new_request_id(peer)
        message = Request(
            request_id, template.fork, template.length, template.start, template.end, template.upgrade_from
        )
        estimated = (message.end - message.start) * self._average_block_size()
        request = _Outgoing(message, peer.id, self._now + self._config.request_timeout, estimated)
        self._requests[request_id] = request
        peer.in_flight[request_id] = request
        peer.in_flight_bytes += estimated
        self._reserved.add(message.start, message.end)
        out.append(Send(peer.id, message.encode()))

    def _average_block_size(self) -> int:
        """From our own byte length, else the longest peer head that came with one, else the default."""
        if self._block_size_hint:
            return self._block_size_hint
        known = [
            (p.length, size) for p in self._peers.values() if (size := _block_size(p.length, p.byte_length))
        ]
        return max(known)[1] if known else self._config.default_block_size

    def _blocks_per_request(self, peer: _Peer, block_size: int) -> int:
        count = max(1, self._config.target_reply_bytes // block_size)
        count = min(count, self._config.max_blocks_per_request)
        return min(count, peer.block_cap) if peer.block_cap else count


def _check_reply(request: Request, data: Data) -> int | str:
    """The proof's length if ``data`` answers exactly ``request``, else what is wrong with it."""
    try:
        proof = Proof.decode(data.proof)
    except HyphalError as exc:
        return f"proof does not decode: {exc}"
    if (proof.start, proof.end, proof.upgrade_from) != (request.start, request.end, request.upgrade_from):
        return "proof is for another range"
    if len(data.blocks) != request.end - request.start:
        return "wrong number of blocks"
    if request.upgrade_from == request.length:
        if proof.length != request.length or data.head:
            return "reply to a request without upgrade must prove the requested length, headless"
    elif proof.length < request.length or not data.head:
        return "an upgrade must reach the requested length and carry the head"
    return proof.length


def _block_size(length: int, byte_length: int | None) -> int | None:
    return max(1, byte_length // length) if byte_length is not None and length > 0 else None


def _interval(start: int, end: int | None) -> tuple[int, int]:
    end = OPEN_END if end is None else end
    if not 0 <= start <= end or (end != OPEN_END and end > MAX_LENGTH):
        raise InvalidInput(f"bad block range [{start}, {end})")
    return start, end


def _check_local(length: int, fork: int, head: bytes, byte_length: int | None) -> None:
    if not 0 <= length <= MAX_LENGTH or fork < 0:
        raise InvalidInput("local length or fork out of range")
    if length > 0 and not head:
        raise InvalidInput("a non-empty feed needs its signed head")
    if byte_length is not None and byte_length < 0:
        raise InvalidInput("negative byte length")


__all__ = [
    "MAX_PEER_RANGES",
    "Action",
    "DownloadDone",
    "DropPeer",
    "DropReason",
    "ForkDetected",
    "PeerId",
    "Replicator",
    "ReplicatorConfig",
    "Send",
    "Serve",
    "SetTimer",
    "Store",
    "VerifyHead",
]
