"""The replication state machine of one feed, sans-I/O.

A :class:`Replicator` talks to many peers about one feed. It holds no
sockets, reads no clock, never sleeps and touches no storage: every public
method is an event and returns a list of actions for the driver to perform
(send bytes, verify a head, build a reply from storage, verify and store a
reply, drop a peer, set a timer). The driver reports the outcome of the
slow or cryptographic actions back as events (``head_verified``,
``served``, ``data_stored``). docs/PROTOCOL.md §10 describes the
protocol and the policy.

The machine is three modules: this one handles events, serves peers and
announces our state; :mod:`~hyphal.replication.scheduler` decides what to
ask of whom; :mod:`~hyphal.replication.state` holds what both know. The
actions it returns are in :mod:`~hyphal.replication.actions` (and named
here too).

Time: the machine's clock is the latest ``tick(now)``. Drivers call
``tick(now)`` before feeding other events (it is cheap) and at every
:class:`SetTimer` deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from typing_extensions import Buffer

from hyphal.errors import DecodeError, InvalidInput
from hyphal.replication.actions import (
    Action,
    DownloadDone,
    DropPeer,
    DropReason,
    ForkDetected,
    PeerId,
    Send,
    Serve,
    SetTimer,
    Store,
    VerifyHead,
)
from hyphal.replication.capability import capability_key, capability_mac, verify_capability
from hyphal.replication.messages import (
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
from hyphal.replication.scheduler import Scheduler, check_reply
from hyphal.replication.state import (
    HeadCheck,
    Incoming,
    LocalState,
    PeerState,
    ReplicatorConfig,
    RequestState,
    block_size,
)

MAX_PEER_RANGES = 1 << 16
"""Runs a peer's HAVE or WANT may accumulate; beyond this it is dropped (memory bound)."""


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
        _check_local(length, fork, head, byte_length)
        self._local = LocalState(fork, length, head, RangeSet(have), block_size(length, byte_length))
        # What every authenticated peer has been told (updated by _announce).
        self._announced_fork = fork
        self._announced_length = length
        self._announced_have = self._local.have.copy()
        self._peers: dict[PeerId, PeerState] = {}
        self._scheduler = Scheduler(self._config, self._local, self._peers)
        self._timer: float | None = None

    # -- read-only views -------------------------------------------------------

    @property
    def length(self) -> int:
        return self._local.length

    @property
    def fork(self) -> int:
        return self._local.fork

    @property
    def have(self) -> RangeSet:
        return self._local.have.copy()

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
        peer = PeerState(peer_id, bytes(handshake_hash), is_initiator, self._config.initial_window)
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
                held = self._local.have.intersection(added)
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
                self._check_head(peer, HeadCheck(head, peer.synced_fork, None), out)
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
        if fork != self._local.fork:
            # Every request we sent names the old fork; its replies are useless now.
            self._scheduler.cancel_sent(out)
            for peer in self._peers.values():
                peer.stale = False
                peer.upgrade_refused_at = -1
        local = self._local
        local.fork, local.length, local.head = fork, length, head
        local.block_size_hint = block_size(length, byte_length) or local.block_size_hint
        local.have = RangeSet(have)
        self._announce(out)
        return self._finish(out)

    def want(self, start: int, end: int | None = None) -> list[Action]:
        """Ask peers for HAVE updates on ``[start, end)``; ``end=None``: all, and follow the head live."""
        self._scheduler.want(_interval(start, end))
        return self._finish([])

    def unwant(self, start: int, end: int | None = None) -> list[Action]:
        self._scheduler.unwant(_interval(start, end))
        return self._finish([])

    def download(self, start: int, end: int | None = None) -> tuple[int, list[Action]]:
        """Fetch blocks ``[start, end)``; ``end=None`` also fetches every future block (never done).

        Returns a handle; :class:`DownloadDone` names it once all blocks are held.
        """
        handle = self._scheduler.add_download(_interval(start, end))
        return handle, self._finish([])

    def cancel(self, handle: int) -> list[Action]:
        """Stop a download; requests nobody needs any more are cancelled."""
        out: list[Action] = []
        self._scheduler.cancel_download(handle, out)
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
        elif job.message.fork != self._local.fork:  # we forked while the driver built it
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
        request = self._scheduler.get(request_id)
        if request is None or request.state is not RequestState.STORING or request.peer_id != peer_id:
            return out
        self._scheduler.release(request)
        peer = self._peers.get(peer_id)
        message = request.message
        if ok:
            if message.fork == self._local.fork:
                self._local.have.add(message.start, message.end)
                if request.proof_length > self._local.length:
                    self._local.length, self._local.head = request.proof_length, request.head
            if peer is not None:
                peer.window = min(self._config.max_window, peer.window + 1)
                if peer.fork == message.fork and request.proof_length > peer.length:
                    peer.length, peer.head = request.proof_length, request.head
            self._announce(out)
        elif message.fork > self._local.fork and message.upgrade_from > 0:
            # Our tree at upgrade_from is not a prefix of the new fork (or the proof was bad):
            # ask again keeping nothing; only that attempt can blame the peer.
            self._scheduler.keep_failed = (message.fork, message.upgrade_from)
        elif peer is not None and peer_at_fault and message.fork >= self._local.fork:
            # (After we forked, the driver refuses replies for the old fork: not the peer's fault.)
            self._drop(peer, DropReason.BAD_DATA, error or "data does not verify", out)
        return self._finish(out)

    def tick(self, now: float) -> list[Action]:
        """Advance the clock; requests past their deadline are cancelled and asked of others."""
        self._local.now = max(self._local.now, now)
        out: list[Action] = []
        self._scheduler.expire(out)
        return self._finish(out)

    # -- message handlers ------------------------------------------------------------

    def _on_auth(self, peer: PeerState, message: Auth, out: list[Action]) -> None:
        if not verify_capability(
            self._capability_key, peer.handshake_hash, not peer.is_initiator, message.mac
        ):
            self._drop(peer, DropReason.BAD_AUTH, "capability MAC does not match", out)
            return
        peer.authenticated = True
        # Nothing about the feed is revealed before the peer proved it knows the feed key.
        out.append(Send(peer.id, Sync(self._local.fork, self._local.length, self._local.head).encode()))
        out.extend(Send(peer.id, m) for m in encode_range_messages(Have, list(self._local.have)))
        out.extend(
            Send(peer.id, m) for m in encode_range_messages(Want, list(self._scheduler.announced_wants))
        )

    def _on_sync(self, peer: PeerState, message: Sync, out: list[Action]) -> None:
        # A SYNC restarts the peer's announcements: a full HAVE follows it.
        peer.have.clear()
        peer.synced_fork = message.fork
        peer.stale = False
        peer.upgrade_refused_at = -1
        if message.head:
            self._check_head(peer, HeadCheck(message.head, message.fork, message.length), out)

    def _check_head(self, peer: PeerState, check: HeadCheck, out: list[Action]) -> None:
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

    def _on_request(self, peer: PeerState, message: Request, out: list[Action]) -> None:
        if message.id in peer.serve_queue or message.id in peer.serving:
            self._drop(peer, DropReason.PROTOCOL, f"request id {message.id} reused", out)
            return
        reason: NoDataReason | None = None
        if len(peer.serve_queue) + len(peer.serving) >= self._config.max_queued_serves:
            reason = NoDataReason.BUSY
        elif message.fork != self._local.fork:
            reason = NoDataReason.WRONG_FORK
        elif message.length > self._local.length:
            reason = NoDataReason.BEYOND_LENGTH
        elif not self._local.have.covers(message.start, message.end):
            reason = NoDataReason.NOT_AVAILABLE
        if reason is not None:
            out.append(Send(peer.id, NoData(message.id, reason).encode()))
            return
        peer.serve_queue[message.id] = Incoming(message)
        self._pump_serves(peer, out)

    def _pump_serves(self, peer: PeerState, out: list[Action]) -> None:
        while peer.serve_queue and len(peer.serving) < self._config.max_concurrent_serves:
            request_id = next(iter(peer.serve_queue))
            job = peer.serve_queue.pop(request_id)
            m = job.message
            if m.fork != self._local.fork:  # we forked while it waited
                out.append(Send(peer.id, NoData(request_id, NoDataReason.WRONG_FORK).encode()))
                continue
            # An upgrade goes to our current length (at least the one asked for): we hold
            # the signed head for that length only.
            upgrading = m.upgrade_from < m.length
            length = self._local.length if upgrading else m.length
            upgraded = Request(m.id, m.fork, length, m.start, m.end, m.upgrade_from)
            peer.serving[request_id] = Incoming(upgraded, self._local.head if upgrading else b"")
            out.append(Serve(peer.id, m.id, m.fork, length, m.upgrade_from, m.start, m.end))

    def _on_cancel(self, peer: PeerState, request_id: int) -> None:
        if peer.serve_queue.pop(request_id, None) is None and request_id in peer.serving:
            peer.serving[request_id].cancelled = True  # the driver is building it; discard the result

    def _on_data(self, peer: PeerState, message: Data, out: list[Action]) -> None:
        request = peer.in_flight.get(message.id)
        if request is None:
            self._unexpected_reply(peer, message.id, out)
            return
        proof_length_or_error = check_reply(request.message, message)
        if isinstance(proof_length_or_error, str):
            self._drop(peer, DropReason.MISMATCHED_DATA, proof_length_or_error, out)
            return
        del peer.in_flight[message.id]
        peer.in_flight_bytes -= request.estimated_bytes
        request.state = RequestState.STORING
        request.proof_length = proof_length_or_error
        request.head = message.head
        m = request.message
        if m.fork != self._local.fork:
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

    def _on_no_data(self, peer: PeerState, message: NoData, out: list[Action]) -> None:
        request = peer.in_flight.get(message.id)
        if request is None:
            self._unexpected_reply(peer, message.id, out)
            return
        self._scheduler.release(request)
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

    def _unexpected_reply(self, peer: PeerState, request_id: int, out: list[Action]) -> None:
        if request_id in peer.cancelled:
            del peer.cancelled[request_id]  # a reply that crossed our CANCEL: ignore it
        else:
            self._drop(
                peer, DropReason.UNREQUESTED_DATA, f"reply to request {request_id} we did not send", out
            )

    def _limit_ranges(self, peer: PeerState, ranges: RangeSet, out: list[Action]) -> None:
        if len(ranges) > MAX_PEER_RANGES:
            self._drop(peer, DropReason.PROTOCOL, "too many ranges", out)

    # -- peers and requests ----------------------------------------------------------

    def _drop(self, peer: PeerState, reason: DropReason, detail: str, out: list[Action]) -> None:
        if self._peers.get(peer.id) is peer:
            self._forget(peer)
            out.append(DropPeer(peer.id, reason, detail))

    def _forget(self, peer: PeerState) -> None:
        del self._peers[peer.id]
        for request in list(peer.in_flight.values()):
            self._scheduler.release(request)
        # Replies already handed to the driver (STORING) stay until data_stored: verified data
        # is fine to keep whoever relayed it.

    # -- announcing our state ----------------------------------------------------------

    def _authenticated(self) -> list[PeerState]:
        return [p for p in self._peers.values() if p.authenticated]

    def _announce(self, out: list[Action]) -> None:
        """Tell peers what changed since the last announcement: HEAD and new HAVE, or a full resync."""
        shrank = self._local.length < self._announced_length or bool(
            self._announced_have.difference(self._local.have)
        )
        if self._local.fork != self._announced_fork or shrank:
            sync = Sync(self._local.fork, self._local.length, self._local.head).encode()
            haves = encode_range_messages(Have, list(self._local.have))
            for peer in self._authenticated():
                out.append(Send(peer.id, sync))
                out.extend(Send(peer.id, m) for m in haves)
        else:
            if self._local.length > self._announced_length:
                head = Head(self._local.head).encode()
                for peer in self._authenticated():
                    if peer.fork != self._local.fork or peer.length < self._local.length:
                        out.append(Send(peer.id, head))
            new = self._local.have.difference(self._announced_have)
            if new:
                for peer in self._authenticated():
                    for m in encode_range_messages(Have, list(new.intersection(peer.wants))):
                        out.append(Send(peer.id, m))
        self._announced_fork, self._announced_length = self._local.fork, self._local.length
        self._announced_have = self._local.have.copy()

    # -- after every event ---------------------------------------------------------------

    def _finish(self, out: list[Action]) -> list[Action]:
        """Run after every event: the scheduler plans, and the timer follows its next deadline."""
        deadline = self._scheduler.plan(out)
        if deadline != self._timer:
            self._timer = deadline
            out.append(SetTimer(deadline))
        return out


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
