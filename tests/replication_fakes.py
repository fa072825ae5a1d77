"""An in-memory feed and a deterministic network for replication tests.

:class:`FakeFeed` is a feed's storage built on :mod:`hyphal.merkle`: verified
nodes and blocks in dicts, and a small head format of its own (the real one
lives in ``hyphal.feed``). :class:`Sim` wires :class:`Replicator` instances
together: it plays the driver for each one (performs every action against
its fake feed) and delivers messages in virtual time, each link with its own
latency. Nothing here reads a clock or sleeps.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hyphal import _core
from hyphal.errors import DecodeError, HyphalError, ProofError, SignatureError, VerificationError
from hyphal.hashing import blake3
from hyphal.merkle import MerkleTree, TreeNode, create_proof, head_signable, verify_proof
from hyphal.replication import (
    Action,
    DownloadDone,
    DropPeer,
    ForkDetected,
    Message,
    NoDataReason,
    Replicator,
    ReplicatorConfig,
    Request,
    Send,
    Serve,
    SetTimer,
    Store,
    VerifyHead,
    decode_message,
)
from hyphal.signing import KeyPair, verify

# fork, length, byte length (an unsigned hint), tree hash, signature
_HEAD = struct.Struct("<QQQ32s64s")


@dataclass(frozen=True, slots=True)
class FakeHead:
    fork: int
    length: int
    byte_length: int
    tree_hash: bytes
    signature: bytes

    def encode(self) -> bytes:
        return _HEAD.pack(self.fork, self.length, self.byte_length, self.tree_hash, self.signature)

    @classmethod
    def decode(cls, blob: bytes) -> FakeHead:
        if len(blob) != _HEAD.size:
            raise DecodeError("not a fake head")
        return cls(*_HEAD.unpack(blob))


class FakeFeed:
    """One replica of a single-writer feed: the writer holds the keypair, readers only its public key."""

    def __init__(self, public_key: bytes, keypair: KeyPair | None = None) -> None:
        self.public_key = public_key
        self.keypair = keypair
        self.feed_key = blake3(b"fake manifest " + public_key)
        self.nodes: dict[int, TreeNode] = {}
        self.blocks: dict[int, bytes] = {}
        self.length = 0
        self.fork = 0
        self.head = b""
        self.byte_length = 0

    @classmethod
    def writer(cls, seed: int = 1) -> FakeFeed:
        keypair = KeyPair(bytes([seed]) * 32)
        return cls(keypair.public_key, keypair)

    def reader(self) -> FakeFeed:
        """An empty replica of this feed."""
        return FakeFeed(self.public_key)

    def clone(self) -> FakeFeed:
        """A reader holding everything this replica holds."""
        other = self.reader()
        other.nodes, other.blocks = dict(self.nodes), dict(self.blocks)
        other.length, other.fork, other.head, other.byte_length = (
            self.length,
            self.fork,
            self.head,
            self.byte_length,
        )
        return other

    # -- state ---------------------------------------------------------------

    def roots(self, length: int) -> list[TreeNode]:
        return [self.nodes[i] for i in _core.ft_full_roots(length)]

    def have(self) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        for i in sorted(self.blocks):
            if ranges and ranges[-1][1] == i:
                ranges[-1] = (ranges[-1][0], i + 1)
            else:
                ranges.append((i, i + 1))
        return ranges

    def state(self) -> dict[str, object]:
        """Keyword arguments for ``Replicator(...)`` and ``local_changed(...)``."""
        return {
            "length": self.length,
            "fork": self.fork,
            "head": self.head,
            "have": self.have(),
            "byte_length": self.byte_length,
        }

    # -- writing -------------------------------------------------------------

    def append(self, blocks: Sequence[bytes]) -> None:
        assert self.keypair is not None, "only the writer appends"
        tree = MerkleTree(self.roots(self.length))
        for node in tree.append(blocks):
            self.nodes[node.index] = node
        for i, block in enumerate(blocks):
            self.blocks[self.length + i] = block
        self.length = tree.length
        self.byte_length = tree.byte_length
        self._sign()

    def truncate_and_fork(self, length: int) -> None:
        """The writer drops blocks from ``length`` on and starts a new fork."""
        kept = [self.blocks[i] for i in range(length)]
        self.nodes, self.blocks, self.length = {}, {}, 0
        self.fork += 1
        if kept:
            self.append(kept)
        else:
            self._sign()

    def _sign(self) -> None:
        assert self.keypair is not None
        tree_hash = _core.tree_hash(self.roots(self.length))
        signature = self.keypair.sign(head_signable(self.feed_key, tree_hash, self.length, self.fork))
        self.head = FakeHead(self.fork, self.length, self.byte_length, tree_hash, signature).encode()

    # -- the driver side ---------------------------------------------------------

    def verify_head(self, blob: bytes) -> FakeHead | None:
        try:
            head = FakeHead.decode(blob)
        except DecodeError:
            return None
        signable = head_signable(self.feed_key, head.tree_hash, head.length, head.fork)
        return head if verify(self.public_key, signable, head.signature) else None

    def serve(self, action: Serve) -> tuple[bytes, list[bytes]]:
        """Proof and blocks for a Serve; KeyError when something is missing."""
        proof = create_proof(
            self.nodes.__getitem__, action.length, action.start, action.end, action.upgrade_from
        )
        return proof.encode(), [self.blocks[i] for i in range(action.start, action.end)]

    def store(self, action: Store) -> None:
        """Verify everything first, then commit; raises on anything wrong and changes nothing."""
        if action.fork != self.fork:
            raise VerificationError("fork changed")
        if action.length > self.length and action.upgrade_from != self.length:
            # As hyphal.feed.Feed.apply_remote: an upgrade must start at our current length.
            raise ProofError(f"an upgrade past our length {self.length} must upgrade from it")
        if action.head:
            head = self.verify_head(action.head)
            if head is None:
                raise SignatureError("head does not verify")
            if (head.fork, head.length) != (action.fork, action.length):
                raise VerificationError("head is for another fork or length")
            tree_hash = head.tree_hash
        else:
            try:
                tree_hash = _core.tree_hash(self.roots(action.length))
            except KeyError as exc:
                raise ProofError("no local tree at that length") from exc
        try:
            known = self.roots(action.upgrade_from)
        except KeyError as exc:
            raise ProofError("no local roots at upgrade_from") from exc
        nodes = verify_proof(action.proof, list(action.blocks), tree_hash, known)
        for node in nodes:
            self.nodes[node.index] = node
        for i, block in enumerate(action.blocks):
            self.blocks[action.start + i] = bytes(block)
        if action.length > self.length:
            assert head is not None  # only upgrades get longer, and they carry a head
            self.length, self.head, self.byte_length = action.length, action.head, head.byte_length

    def apply_fork(self, action: ForkDetected) -> None:
        """Adopt a later fork, keeping our tree up to ``upgrade_from`` if the proof shows it still holds."""
        head = self.verify_head(action.head)
        if head is None:
            raise SignatureError("head does not verify")
        if (head.fork, head.length) != (action.fork, action.length) or head.fork <= self.fork:
            raise VerificationError("not a later fork")
        keep = action.upgrade_from
        try:
            known = self.roots(keep)
        except KeyError as exc:
            raise ProofError("no local roots at upgrade_from") from exc
        nodes = verify_proof(action.proof, [], head.tree_hash, known)
        self.nodes = {i: n for i, n in self.nodes.items() if _core.ft_block_range(i)[1] <= keep}
        self.nodes.update((n.index, n) for n in nodes)
        self.blocks = {i: b for i, b in self.blocks.items() if i < keep}
        self.length, self.fork, self.head, self.byte_length = (
            head.length,
            head.fork,
            action.head,
            head.byte_length,
        )


def blocks_for(count: int, size: int = 1000, salt: int = 0) -> list[bytes]:
    """Deterministic, distinct blocks."""
    return [blake3(f"{salt}/{i}".encode()) * (size // 32) + bytes(size % 32) for i in range(count)]


# -- the network ----------------------------------------------------------------------


Filter = Callable[[str, bytes], list[bytes]]
"""What a misbehaving site sends instead of a message to a peer."""


@dataclass
class Site:
    """One replicator, its feed, and what its driver saw."""

    name: str
    feed: FakeFeed
    replicator: Replicator
    serving: bool = True
    """False: the driver never answers Serve actions (a mute peer)."""
    outgoing: Filter | None = None
    drops: list[DropPeer] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    forks: list[ForkDetected] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    serves: list[Serve] = field(default_factory=list)
    timer: float | None = None
    window_checks: list[tuple[int, int]] = field(default_factory=list)
    """(requests in flight, window) to the peer as each REQUEST was sent."""


@dataclass(frozen=True)
class Wire:
    time: float
    src: str
    dst: str
    message: Message | None
    raw: bytes


class Sim:
    def __init__(self) -> None:
        self.now = 0.0
        self.sites: dict[str, Site] = {}
        self.latency: dict[tuple[str, str], float] = {}
        self.wire: list[Wire] = []
        self._queue: list[tuple[float, int, str, str, bytes]] = []
        self._seq = 0

    def add(self, name: str, feed: FakeFeed, config: ReplicatorConfig | None = None) -> Site:
        state = feed.state()
        replicator = Replicator(
            feed.feed_key,
            length=feed.length,
            fork=feed.fork,
            head=feed.head,
            have=feed.have(),
            byte_length=feed.byte_length,
            config=config,
        )
        assert state["length"] == replicator.length
        site = Site(name, feed, replicator)
        self.sites[name] = site
        return site

    def connect(self, a: str, b: str, latency: float = 0.01) -> None:
        self.latency[(a, b)] = self.latency[(b, a)] = latency
        handshake_hash = blake3(f"handshake {a} {b} {self._seq}".encode())
        self.perform(self.sites[a], self.sites[a].replicator.add_peer(b, handshake_hash, True))
        self.perform(self.sites[b], self.sites[b].replicator.add_peer(a, handshake_hash, False))

    def disconnect(self, a: str, b: str) -> None:
        if (a, b) not in self.latency:
            return
        del self.latency[(a, b)], self.latency[(b, a)]
        self.perform(self.sites[a], self.sites[a].replicator.remove_peer(b))
        self.perform(self.sites[b], self.sites[b].replicator.remove_peer(a))

    def local_changed(self, name: str) -> None:
        site = self.sites[name]
        feed = site.feed
        self.perform(
            site,
            site.replicator.local_changed(feed.length, feed.fork, feed.head, feed.have(), feed.byte_length),
        )

    # -- the driver ----------------------------------------------------------------

    def perform(self, site: Site, actions: list[Action]) -> None:
        work = list(actions)
        r = site.replicator
        while work:
            action = work.pop(0)
            more: list[Action] = []
            match action:
                case Send(peer, data):
                    self._send(site, str(peer), data if isinstance(data, bytes) else b"".join(data))
                case VerifyHead(peer, blob):
                    head = site.feed.verify_head(blob)
                    if head is None:
                        more = r.head_verified(peer, blob, False)
                    else:
                        more = r.head_verified(peer, blob, True, head.length, head.fork, head.byte_length)
                case Serve():
                    site.serves.append(action)
                    if site.serving:
                        try:
                            proof, blocks = site.feed.serve(action)
                        except (KeyError, HyphalError):
                            more = r.serve_failed(
                                action.peer_id, action.request_id, NoDataReason.NOT_AVAILABLE
                            )
                        else:
                            more = r.served(action.peer_id, action.request_id, proof, blocks)
                case Store():
                    site.stores.append(action)
                    try:
                        site.feed.store(action)
                    except HyphalError as exc:
                        more = r.data_stored(action.peer_id, action.request_id, False, str(exc))
                    else:
                        more = r.data_stored(action.peer_id, action.request_id, True)
                        f = site.feed
                        more += r.local_changed(f.length, f.fork, f.head, f.have(), f.byte_length)
                case DropPeer(peer):
                    site.drops.append(action)
                    # The connection closes: the other side notices.
                    if (site.name, str(peer)) in self.latency:
                        del self.latency[(site.name, str(peer))], self.latency[(str(peer), site.name)]
                        other = self.sites[str(peer)]
                        self.perform(other, other.replicator.remove_peer(site.name))
                case ForkDetected():
                    site.forks.append(action)
                    try:
                        site.feed.apply_fork(action)
                    except HyphalError as exc:
                        more = r.data_stored(action.peer_id, action.request_id, False, str(exc))
                    else:
                        more = r.data_stored(action.peer_id, action.request_id, True)
                        f = site.feed
                        more += r.local_changed(f.length, f.fork, f.head, f.have(), f.byte_length)
                case DownloadDone(handle):
                    site.done.append(handle)
                case SetTimer(deadline):
                    site.timer = deadline
            work.extend(more)

    def _send(self, site: Site, dst: str, data: bytes) -> None:
        if (site.name, dst) not in self.latency:
            return  # the connection is gone
        try:
            message: Message | None = decode_message(data)
        except DecodeError:
            message = None
        if isinstance(message, Request):
            r = site.replicator
            site.window_checks.append((r.in_flight(dst), r.window(dst)))
        outgoing = site.outgoing(dst, data) if site.outgoing else [data]
        for raw in outgoing:
            try:
                sent: Message | None = decode_message(raw)
            except DecodeError:
                sent = None
            self.wire.append(Wire(self.now, site.name, dst, sent, raw))
            self._seq += 1
            heapq.heappush(
                self._queue, (self.now + self.latency[(site.name, dst)], self._seq, site.name, dst, raw)
            )

    def run(self, until: float = 1e9, max_events: int = 50_000) -> None:
        """Deliver messages and fire timers in time order until nothing is left (or ``until``)."""
        for _ in range(max_events):
            timers = [(s.timer, s.name) for s in self.sites.values() if s.timer is not None]
            next_timer = min(timers) if timers else None
            if self._queue and (next_timer is None or self._queue[0][0] <= next_timer[0]):
                when, seq, src, dst, raw = heapq.heappop(self._queue)
                if when > until:
                    heapq.heappush(self._queue, (when, seq, src, dst, raw))
                    self.now = until
                    return
                self.now = max(self.now, when)
                site = self.sites[dst]
                self.perform(site, site.replicator.tick(self.now))
                if (src, dst) in self.latency:
                    self.perform(site, site.replicator.receive(src, raw))
            elif next_timer is not None:
                if next_timer[0] > until:
                    self.now = until
                    return
                self.now = max(self.now, next_timer[0])
                site = self.sites[next_timer[1]]
                site.timer = None
                self.perform(site, site.replicator.tick(self.now))
            else:
                return
        raise AssertionError("simulation did not settle")

    # -- what happened -----------------------------------------------------------------

    def messages(self, src: str, dst: str, kind: type[Message] | None = None) -> list[Message]:
        return [
            w.message
            for w in self.wire
            if w.src == src
            and w.dst == dst
            and w.message is not None
            and (kind is None or isinstance(w.message, kind))
        ]
