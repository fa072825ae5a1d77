"""The feed-wide side of the replication machine: which blocks to ask which peer for.

The :class:`Scheduler` owns everything about requests we send: the
downloads and explicit wants the user asked for (and the WANT/UNWANT they
imply), the requests in flight with the blocks they reserve, request ids,
timeouts, and the policy of docs/PROTOCOL.md §10.5 ("Request policy"):
spread block requests over peers by free window, follow the head live with
lone upgrades, and move to a later fork a peer proved. It reads our feed's
state and each peer's (:mod:`~hyphal.replication.state`), which the
:class:`~hyphal.replication.replicator.Replicator` keeps current, and
appends the messages it decides on to the caller's action list.
"""

from __future__ import annotations

from hyphal.errors import HyphalError
from hyphal.merkle import Proof
from hyphal.replication.actions import Action, DownloadDone, PeerId, Send
from hyphal.replication.messages import Cancel, Data, Request, Unwant, Want, encode_range_messages
from hyphal.replication.ranges import OPEN_END, RangeSet
from hyphal.replication.state import (
    LocalState,
    Outgoing,
    PeerState,
    ReplicatorConfig,
    RequestState,
    block_size,
)


class Scheduler:
    """Plans the requests of one feed's replication; the replicator calls it after every event."""

    def __init__(self, config: ReplicatorConfig, local: LocalState, peers: dict[PeerId, PeerState]) -> None:
        self._config = config
        self._local = local
        self._peers = peers  # the replicator's own dict: peers come and go there
        self._requests: dict[int, Outgoing] = {}
        self._reserved = RangeSet()
        self._next_request_id = 1
        self._downloads: dict[int, tuple[int, int]] = {}
        self._next_handle = 1
        self._explicit_wants = RangeSet()
        self.announced_wants = RangeSet()
        """What every authenticated peer has been told we want (a new peer hears it after AUTH)."""
        self.keep_failed: tuple[int, int] | None = None
        """(fork, length): keeping our tree at that length failed to verify under that fork."""

    # -- what the user asked for -------------------------------------------------------

    def want(self, interval: tuple[int, int]) -> None:
        self._explicit_wants.add(*interval)

    def unwant(self, interval: tuple[int, int]) -> None:
        self._explicit_wants.remove(*interval)

    def add_download(self, interval: tuple[int, int]) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self._downloads[handle] = interval
        return handle

    def cancel_download(self, handle: int, out: list[Action]) -> None:
        """Stop a download; requests nobody needs any more are cancelled."""
        if self._downloads.pop(handle, None) is not None:
            targets = self._download_targets()
            for request in self._sent():
                start, end = request.blocks
                if start < end and not targets.clip(start, end):
                    self.cancel_request(request, out)

    def _download_targets(self) -> RangeSet:
        return RangeSet(self._downloads.values())

    # -- requests in flight ------------------------------------------------------------

    def get(self, request_id: int) -> Outgoing | None:
        return self._requests.get(request_id)

    def _sent(self) -> list[Outgoing]:
        return [r for r in self._requests.values() if r.state is RequestState.SENT]

    def cancel_sent(self, out: list[Action]) -> None:
        """Cancel every request on the wire (our fork changed: their replies are useless now)."""
        for request in self._sent():
            self.cancel_request(request, out)

    def expire(self, out: list[Action]) -> None:
        """Cancel requests past their deadline, halving their peer's window; others will be asked."""
        for request in self._sent():
            if request.deadline <= self._local.now:
                peer = self._peers[request.peer_id]
                peer.window = max(1, peer.window // 2)
                self.cancel_request(request, out)

    def release(self, request: Outgoing) -> None:
        """Forget a request: its blocks may be requested again."""
        self._requests.pop(request.message.id, None)
        peer = self._peers.get(request.peer_id)
        if peer is not None and peer.in_flight.pop(request.message.id, None) is not None:
            peer.in_flight_bytes -= request.estimated_bytes
        self._reserved.remove(*request.blocks)

    def cancel_request(self, request: Outgoing, out: list[Action]) -> None:
        peer = self._peers.get(request.peer_id)
        if peer is not None:
            out.append(Send(peer.id, Cancel(request.message.id).encode()))
            peer.cancelled[request.message.id] = None
            while len(peer.cancelled) > self._config.max_cancelled_ids:
                del peer.cancelled[next(iter(peer.cancelled))]
        self.release(request)

    def _new_request_id(self, peer: PeerState) -> int:
        while True:
            request_id = self._next_request_id
            self._next_request_id = request_id % 0xFFFFFFFF + 1  # u32, never 0
            if request_id not in self._requests and request_id not in peer.cancelled:
                return request_id

    # -- planning --------------------------------------------------------------------------

    def plan(self, out: list[Action]) -> float | None:
        """After every event: finished downloads, WANT changes, new requests; returns the next deadline."""
        for handle, (start, end) in list(self._downloads.items()):
            if end != OPEN_END and self._local.have.covers(start, end):
                del self._downloads[handle]
                out.append(DownloadDone(handle))
        self._sync_wants(out)
        self._schedule(out)
        return min((r.deadline for r in self._sent()), default=None)

    def _sync_wants(self, out: list[Action]) -> None:
        wants = self._explicit_wants.union(self._download_targets())
        added = wants.difference(self.announced_wants)
        removed = self.announced_wants.difference(wants)
        if not added and not removed:
            return
        messages = encode_range_messages(Want, list(added)) + encode_range_messages(Unwant, list(removed))
        for peer in self._peers.values():
            if peer.authenticated:
                out.extend(Send(peer.id, m) for m in messages)
        self.announced_wants = wants

    def _sources(self) -> list[PeerState]:
        """Peers we may ask: authenticated, with a verified head on our fork that their SYNC agrees with."""
        return [
            p
            for p in self._peers.values()
            if p.authenticated and p.fork == self._local.fork and p.synced_fork == p.fork and not p.stale
        ]

    def _schedule(self, out: list[Action]) -> None:
        self._schedule_fork(out)
        sources = self._sources()
        if not sources:
            return
        reach = max(self._local.length, max(p.length for p in sources))
        needed = RangeSet((s, min(e, reach)) for s, e in self._downloads.values() if s < min(e, reach))
        needed.difference_update(self._local.have)
        needed.difference_update(self._reserved)
        # Hand out one request at a time to the peer with the most free window, so work
        # spreads across peers and those that answer faster (freeing slots) get more.
        candidates = [p for p in sources if p.length >= self._local.length]
        while needed and candidates:
            peer = max(candidates, key=lambda p: p.window - len(p.in_flight))
            request = self._plan_blocks(peer, needed)
            if request is None:
                candidates.remove(peer)
                continue
            self._send(peer, request, out)
            needed.remove(request.start, request.end)
        self._schedule_upgrade(sources, out)

    def _plan_blocks(self, peer: PeerState, needed: RangeSet) -> Request | None:
        if len(peer.in_flight) >= peer.window:
            return None
        # One upgrade at a time: the storage layer applies an upgrade only from its current
        # length, so blocks past our length wait until the upgrade in flight is stored.
        reach = self._local.length if self.upgrade_in_flight() else peer.length
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
        if end <= self._local.length:
            # Inside our verified tree: the proof needs only our own roots, no head.
            return Request(0, self._local.fork, self._local.length, start, end, self._local.length)
        # Beyond it: the same proof upgrades us from our length, so it carries only what we lack.
        return Request(0, self._local.fork, peer.length, start, end, self._local.length)

    def _schedule_upgrade(self, sources: list[PeerState], out: list[Action]) -> None:
        """Follow the head live: upgrade alone when no block request is carrying the upgrade.

        Finite downloads never upgrade alone: their block requests carry the upgrade they need.
        """
        live = self._explicit_wants.last_end() == OPEN_END
        if not (live or any(end == OPEN_END for _, end in self._downloads.values())):
            return
        best = max((p.length for p in sources), default=0)
        if best <= self._local.length or self.upgrade_in_flight():
            return
        for peer in sources:
            if peer.length == best and peer.upgrade_refused_at != best and len(peer.in_flight) < peer.window:
                a = self._local.length
                self._send(peer, Request(0, self._local.fork, best, a, a, a), out)
                return

    def upgrade_in_flight(self) -> bool:
        return any(r.upgrades and r.message.fork == self._local.fork for r in self._requests.values())

    def _schedule_fork(self, out: list[Action]) -> None:
        """Fetch the proof that moves us to a later fork some peer has shown a signed head for."""
        if any(r.message.fork > self._local.fork for r in self._requests.values()):
            return  # one at a time
        later = [
            p
            for p in self._peers.values()
            if p.authenticated
            and p.fork is not None
            and p.fork > self._local.fork
            and p.synced_fork == p.fork
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
        keep = (
            self._local.length
            if 0 < self._local.length < n and self.keep_failed != (fork, self._local.length)
            else 0
        )
        self._send(peer, Request(0, fork, n, keep, keep, keep), out)

    def _send(self, peer: PeerState, template: Request, out: list[Action]) -> None:
        request_id = self._new_request_id(peer)
        message = Request(
            request_id, template.fork, template.length, template.start, template.end, template.upgrade_from
        )
        estimated = (message.end - message.start) * self._average_block_size()
        request = Outgoing(message, peer.id, self._local.now + self._config.request_timeout, estimated)
        self._requests[request_id] = request
        peer.in_flight[request_id] = request
        peer.in_flight_bytes += estimated
        self._reserved.add(message.start, message.end)
        out.append(Send(peer.id, message.encode()))

    def _average_block_size(self) -> int:
        """From our own byte length, else the longest peer head that came with one, else the default."""
        if self._local.block_size_hint:
            return self._local.block_size_hint
        known = [
            (p.length, size) for p in self._peers.values() if (size := block_size(p.length, p.byte_length))
        ]
        return max(known)[1] if known else self._config.default_block_size

    def _blocks_per_request(self, peer: PeerState, block_size: int) -> int:
        count = max(1, self._config.target_reply_bytes // block_size)
        count = min(count, self._config.max_blocks_per_request)
        return min(count, peer.block_cap) if peer.block_cap else count


def check_reply(request: Request, data: Data) -> int | str:
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


__all__ = ["Scheduler", "check_reply"]
