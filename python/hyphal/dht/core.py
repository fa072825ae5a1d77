"""The routing-and-lookup core of a DHT node, as a sans-I/O state machine (docs/PROTOCOL.md §11).

:class:`DhtCore` holds no socket, reads no clock and never sleeps. Its
driver (:mod:`hyphal.dht.udp`, or the simulator :mod:`hyphal.sim`) feeds it
events, each with the current time ``now`` (UNIX seconds, as a float):

- :meth:`DhtCore.datagram_received` for every datagram that arrives;
- :meth:`DhtCore.timer_fired` once :meth:`DhtCore.get_timer` has passed;
- API calls (:meth:`DhtCore.find_node`, ``put_mutable``, …) that start an
  :class:`~hyphal.dht.operation.Operation`.

After each, the driver sends :meth:`DhtCore.datagrams_to_send` and re-arms
its timer for :meth:`DhtCore.get_timer` (the h11 / aioquic shape).

The core is Kademlia itself: requests and their timeouts, responses,
routing-table upkeep (pings, evictions, bucket refreshes) and iterative
lookups, and the PING and FIND_NODE methods. Records are layered on top:
:mod:`hyphal.dht.record_client` puts and gets them, :mod:`hyphal.dht.holder`
stores and re-replicates them for others, and :mod:`hyphal.dht.node`
assembles the three into :class:`~hyphal.dht.node.DhtNode`.

Anything malformed, forged, unexpected or over the rate limit is dropped
and counted in :attr:`DhtCore.counters`; it never raises out of an event
method and is never stored. New RPCs plug in with
:meth:`DhtCore.register_handler` (a method id from
:data:`~hyphal.dht.messages.FIRST_EXTENSION_METHOD` up) and
:meth:`DhtCore.request` / :meth:`DhtCore.lookup_nodes`; the replicated
secret store is built that way.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hyphal.dht.config import DhtConfig
from hyphal.dht.limits import Counters, RateLimiter
from hyphal.dht.lookup import Candidate, Lookup
from hyphal.dht.messages import (
    FIRST_EXTENSION_METHOD,
    MAX_DATAGRAM_SIZE,
    Method,
    Request,
    Response,
    Status,
    decode_message,
    encode_request,
    encode_response,
)
from hyphal.dht.operation import LookupResult, Operation
from hyphal.dht.record_store import MemoryStore, RecordStore
from hyphal.dht.records import Addr, NodeRecord
from hyphal.dht.routing import Contact, RoutingTable
from hyphal.dht.rpc import Handler, Reply, ReplyCallback, RequestContext
from hyphal.dht.rtt import RttEstimator
from hyphal.dht.timers import Timer, Timers
from hyphal.dht.tokens import TokenIssuer
from hyphal.errors import DecodeError, HyphalError, InvalidInput, VerificationError
from hyphal.signing import KeyPair

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    addr: Addr
    method: int
    sent_at: float
    expect_id: bytes | None
    on_reply: ReplyCallback
    on_timeout: Callable[[float], None]
    timer: Timer
    late_ok: bool = False
    """After its timeout, a late reply is still taken until ``max_timeout`` (lookups)."""
    timed_out: bool = False


class _LookupRun:
    """One lookup in progress: sends its queries and calls back on each reply and at the end."""

    __slots__ = ("completed", "lookup", "method", "node", "on_done", "on_reply", "payload")

    def __init__(
        self,
        node: DhtCore,
        lookup: Lookup,
        method: int,
        payload: bytes,
        on_reply: Callable[[float, Candidate, Response], None] | None,
        on_done: Callable[[float, Lookup], None],
    ) -> None:
        self.node = node
        self.lookup = lookup
        self.method = method
        self.payload = payload
        self.on_reply = on_reply
        self.on_done = on_done
        self.completed = False

    def pump(self, now: float) -> None:
        if self.completed:
            return
        lk = self.lookup
        for c in lk.next_queries():
            self._query(now, c)
        if lk.done:
            self.completed = True
            self.on_done(now, lk)

    def _query(self, now: float, c: Candidate) -> None:
        self.node._send_request(
            now,
            c.addr,
            self.method,
            target=self.lookup.target,
            payload=self.payload,
            expect_id=c.id,
            on_reply=lambda t, resp, rec: self.replied(t, c, resp),
            on_timeout=lambda t: self.timed_out(t, c),
            late_ok=True,
        )

    def replied(self, now: float, c: Candidate, resp: Response) -> None:
        if self.completed:
            return
        lk = self.lookup
        lk.learned(c, self.node._records_of(resp))
        lk.answered(c, resp.token)
        if self.on_reply is not None and resp.status == Status.OK:
            self.on_reply(now, c, resp)
        self.pump(now)

    def timed_out(self, now: float, c: Candidate) -> None:
        if self.completed:
            return
        self.lookup.failed(c)
        self.pump(now)


class DhtCore:
    """One DHT node's routing and lookups. See the module docstring for how to drive it."""

    def __init__(
        self,
        keypair: KeyPair,
        addresses: Sequence[Addr],
        *,
        now: float,
        config: DhtConfig | None = None,
        store: RecordStore | None = None,
        rng: random.Random | None = None,
        record_seq: int | None = None,
    ) -> None:
        self.config = config or DhtConfig()
        self.keypair = keypair
        self._rng = rng if rng is not None else random.SystemRandom()
        # The record's seq grows across restarts without being persisted: milliseconds since the epoch.
        seq = record_seq if record_seq is not None else max(1, int(now * 1000))
        self.record = NodeRecord.sign(keypair, seq, tuple(addresses))
        self.id = self.record.id
        cfg = self.config
        self.table = RoutingTable(self.id, k=cfg.k, now=now)
        self.rtt = RttEstimator(
            min_timeout=cfg.min_timeout, max_timeout=cfg.max_timeout, initial_timeout=cfg.initial_timeout
        )
        self.tokens = TokenIssuer(self._rng.randbytes(32), cfg.token_rotation)
        self.limiter = RateLimiter(cfg.rate, cfg.burst)
        self.counters = Counters()
        self.store: RecordStore = store if store is not None else MemoryStore()
        self._outbox: list[tuple[Addr, bytes]] = []
        self._timers = Timers()
        self._pending: dict[int, _Pending] = {}
        self._pinging: set[bytes] = set()
        self._handlers: dict[int, Handler] = {Method.PING: _answer_ping, Method.FIND_NODE: _answer_find_node}
        self.observed_addresses: dict[Addr, int] = {}
        """How often responders saw us at each address: counted for diagnostics; nothing acts on it yet."""
        self.on_new_contact: list[Callable[[float, Contact], None]] = []
        """Called with each node that enters the routing table (extensions rebalance on it)."""
        self.closed = False
        self._call_at(now + cfg.maintenance_interval, self._maintenance)

    # -- driver interface ------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[Addr, bytes]]:
        """The datagrams queued since the last call, in order: ``(address, bytes)``."""
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        """When :meth:`timer_fired` is next due, or None."""
        return self._timers.next_due()

    def timer_fired(self, now: float) -> None:
        """Run every timer due at ``now``."""
        self._timers.fire(now)

    def datagram_received(self, now: float, addr: Addr, data: bytes) -> None:
        """A datagram from ``addr``. Never raises for bad input: it is dropped and counted."""
        c = self.counters
        c.received += 1
        if len(data) > MAX_DATAGRAM_SIZE:
            c.oversized += 1
            return
        try:
            message = decode_message(bytes(data))
        except DecodeError as e:
            c.malformed += 1
            log.debug("dropped a malformed datagram from %s: %s", addr, e)
            return
        if isinstance(message, Response):
            self._on_response(now, addr, message)
        elif not self.limiter.allow(addr[0], now):
            c.rate_limited += 1
        else:
            self._on_request(now, addr, message)

    def close(self) -> None:
        """Forget pending requests and timers (the store is the caller's to close)."""
        self.closed = True
        self._pending.clear()
        self._timers.clear()

    # -- extension points --------------------------------------------------------------

    def register_handler(self, method: int, handler: Handler) -> None:
        """Answer requests of ``method`` (an id from FIRST_EXTENSION_METHOD up) with ``handler``."""
        if not FIRST_EXTENSION_METHOD <= method <= 0xFF or method in self._handlers:
            raise InvalidInput(f"method {method} is taken or reserved")
        self._handlers[method] = handler

    def random_bytes(self, size: int) -> bytes:
        """Bytes from the node's random source (the OS CSPRNG unless a seeded one was given)."""
        return self._rng.randbytes(size)

    def call_at(self, when: float, callback: Callable[[float], None]) -> Callable[[], None]:
        """Run ``callback(now)`` from :meth:`timer_fired` at ``when``; returns a cancel function."""
        return self._call_at(when, callback).cancel

    def request(
        self,
        now: float,
        addr: Addr,
        method: int,
        *,
        target: bytes | None = None,
        token: bytes = b"",
        payload: bytes = b"",
        expect_id: bytes | None = None,
    ) -> Operation[tuple[Response, NodeRecord] | None]:
        """Send one request; the operation ends with (response, responder) or None on timeout."""
        op: Operation[tuple[Response, NodeRecord] | None] = Operation(f"request {method}", now)
        self._send_request(
            now,
            addr,
            method,
            target=target,
            token=token,
            payload=payload,
            expect_id=expect_id,
            on_reply=lambda t, resp, rec: op._finish(t, (resp, rec)),
            on_timeout=lambda t: op._finish(t, None),
        )
        return op

    def lookup_nodes(
        self,
        now: float,
        target: bytes,
        method: int = Method.FIND_NODE,
        *,
        payload: bytes = b"",
        on_reply: Callable[[float, Candidate, Response], None] | None = None,
    ) -> Operation[LookupResult]:
        """An iterative lookup of ``target`` asking ``method`` (whose replies carry closer nodes).

        ``on_reply`` sees every OK reply (and may call ``lookup.finish()`` on
        the candidate's lookup to stop early via the returned result's fields).
        The result lists the k closest nodes that answered, with the address
        each answered from and the token it gave (``contacts``).
        """
        op: Operation[LookupResult] = Operation(f"lookup {method}", now)
        self._lookup(
            now,
            target,
            method,
            payload=payload,
            on_reply=on_reply,
            on_done=lambda t, lk: op._finish(t, self._result(lk)),
        )
        return op

    # -- operations ----------------------------------------------------------------------

    def bootstrap(
        self, now: float, seeds: Sequence[Addr] = (), records: Sequence[NodeRecord] = ()
    ) -> Operation[LookupResult]:
        """Join: ping the seed addresses and the known ``records``, then look up our own id."""
        op: Operation[LookupResult] = Operation("bootstrap", now)
        targets: list[tuple[Addr, bytes | None]] = [(a, None) for a in seeds]
        targets += [(r.addresses[0], r.id) for r in records if r.id != self.id]
        remaining = len(targets)

        def self_lookup(t: float) -> None:
            def done(t2: float, lk: Lookup) -> None:
                op._finish(t2, self._result(lk))
                if self.config.refresh_after_bootstrap:
                    self._refresh_buckets(t2, sparse_only=True)

            self._lookup(t, self.id, Method.FIND_NODE, on_done=done)

        def one_done(t: float) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                self_lookup(t)

        if not targets:
            self_lookup(now)
        for addr, expect in targets:
            self._send_request(
                now,
                addr,
                Method.PING,
                expect_id=expect,
                on_reply=lambda t, resp, rec: one_done(t),
                on_timeout=one_done,
            )
        return op

    def ping(self, now: float, addr: Addr) -> Operation[tuple[Response, NodeRecord] | None]:
        return self.request(now, addr, Method.PING)

    def find_node(self, now: float, target: bytes) -> Operation[LookupResult]:
        return self.lookup_nodes(now, target)

    # -- generic flows ---------------------------------------------------------------------

    def _lookup(
        self,
        now: float,
        target: bytes,
        method: int,
        *,
        payload: bytes = b"",
        on_reply: Callable[[float, Candidate, Response], None] | None = None,
        on_done: Callable[[float, Lookup], None],
    ) -> _LookupRun:
        cfg = self.config
        lk = Lookup(target, k=cfg.k, alpha=cfg.alpha, paths=cfg.disjoint_paths, exclude=self.id)
        lk.seed((c.record, c.addr) for c in self.table.closest(target, cfg.k))
        self.table.touch(target, now)
        run = _LookupRun(self, lk, method, payload, on_reply, on_done)
        run.pump(now)
        return run

    def _result(self, lk: Lookup) -> LookupResult:
        closest = lk.closest_answered()
        return LookupResult(
            lk.target,
            [c.record for c in closest],
            contacts=[(c.record, c.addr, c.token) for c in closest],
            hops=closest[0].hop if closest else 0,
            queries=lk.queries,
            timeouts=lk.timeouts,
        )

    # -- sending and receiving ---------------------------------------------------------------

    def _send(self, addr: Addr, data: bytes) -> None:
        self.counters.sent += 1
        self._outbox.append((addr, data))

    def _call_at(self, when: float, callback: Callable[[float], None]) -> Timer:
        return self._timers.call_at(when, callback)

    def _send_request(
        self,
        now: float,
        addr: Addr,
        method: int,
        *,
        target: bytes | None = None,
        token: bytes = b"",
        payload: bytes = b"",
        expect_id: bytes | None = None,
        on_reply: ReplyCallback,
        on_timeout: Callable[[float], None],
        late_ok: bool = False,
    ) -> None:
        txid = self._rng.getrandbits(64)
        while txid in self._pending:
            txid = self._rng.getrandbits(64)
        sender = None if self.config.client else self.record.encoded
        data = encode_request(method, txid, target, token, payload, sender)
        timer = self._call_at(now + self.rtt.timeout(addr), lambda t: self._expired(t, txid))
        self._pending[txid] = _Pending(addr, method, now, expect_id, on_reply, on_timeout, timer, late_ok)
        self._send(addr, data)

    def _expired(self, now: float, txid: int) -> None:
        pending = self._pending.get(txid)
        if pending is None:
            return
        hard = pending.sent_at + self.config.max_timeout
        if pending.timed_out or not pending.late_ok or hard <= now:
            del self._pending[txid]
            if pending.expect_id is not None:
                self.table.failed(pending.expect_id)
        else:  # a soft timeout: the caller moves on, a late reply still counts
            pending.timer = self._call_at(hard, lambda t: self._expired(t, txid))
        if not pending.timed_out:
            pending.timed_out = True
            self.counters.timeouts += 1
            self.rtt.timed_out(pending.addr)
            pending.on_timeout(now)

    def _on_response(self, now: float, addr: Addr, msg: Response) -> None:
        pending = self._pending.get(msg.txid)
        if pending is None or pending.addr != addr or pending.method != msg.method:
            self.counters.unexpected += 1
            log.debug("dropped an unexpected response from %s (txid %x)", addr, msg.txid)
            return
        responder = self.counters.verified(NodeRecord.decode, msg.responder)
        if responder is None:
            return
        if pending.expect_id is not None and responder.id != pending.expect_id:
            self.counters.forged += 1
            return
        del self._pending[msg.txid]
        pending.timer.cancel()
        self.rtt.sample(addr, now - pending.sent_at)
        self._observed(msg.observed)
        if addr in responder.addresses:
            self._learned(now, responder, addr)
        pending.on_reply(now, msg, responder)

    def _observed(self, addr: Addr) -> None:
        seen = self.observed_addresses
        seen[addr] = seen.pop(addr, 0) + 1
        if len(seen) > 16:
            del seen[min(seen, key=seen.__getitem__)]

    def _learned(self, now: float, record: NodeRecord, addr: Addr) -> None:
        """``record``'s node answered us from ``addr``, an address it signed."""
        known = record.id in self.table
        oldest = self.table.seen(record, addr, now)
        if not known and self.on_new_contact:
            contact = self.table.get(record.id)
            if contact is not None:
                for listener in self.on_new_contact:
                    listener(now, contact)
        if oldest is not None:
            self._ping_or_evict(now, oldest)

    def _ping_or_evict(self, now: float, contact: Contact) -> None:
        """Ping a table entry; if it does not answer, evict it (its answer refreshes it and its bucket)."""
        old_id = contact.id
        if old_id in self._pinging:
            return
        self._pinging.add(old_id)

        def alive(t: float, resp: Response, rec: NodeRecord) -> None:
            self._pinging.discard(old_id)

        def dead(t: float) -> None:
            self._pinging.discard(old_id)
            self.table.evict(old_id)

        self._send_request(now, contact.addr, Method.PING, expect_id=old_id, on_reply=alive, on_timeout=dead)

    def _maybe_learn(self, now: float, record: NodeRecord, addr: Addr) -> None:
        """A node asked us something: ping it back if it could enter our table (it must answer us).

        If its bucket is full and none of its entries answered us for half the
        refresh interval, ping the least recently seen entry instead (as BEP 5
        does with questionable nodes): an answer makes the bucket fresh, which
        spares it a refresh lookup; a timeout evicts the entry.
        """
        node = record.id
        if (
            node == self.id
            or node in self._pinging
            or addr not in record.addresses
            or self.table.get(node) is not None
        ):
            return
        if not self.table.has_room(node):
            oldest = self.table.quiet_bucket_oldest(node, now - self.config.refresh_interval / 2)
            if oldest is not None:
                self._ping_or_evict(now, oldest)
            return
        self._pinging.add(node)
        self._send_request(
            now,
            addr,
            Method.PING,
            expect_id=node,
            on_reply=lambda t, r, rec: self._pinging.discard(node),
            on_timeout=lambda t: self._pinging.discard(node),
        )

    def _records_of(self, resp: Response) -> list[tuple[NodeRecord, Addr]]:
        try:  # the common case, every record good (and most already verified, see NodeRecord.decode)
            return [(r, r.addresses[0]) for r in map(NodeRecord.decode, resp.nodes)]
        except (DecodeError, VerificationError):
            pass
        out = []
        for raw in resp.nodes:
            record = self.counters.verified(NodeRecord.decode, raw)
            if record is not None:
                out.append((record, record.addresses[0]))
        return out

    def _on_request(self, now: float, addr: Addr, msg: Request) -> None:
        sender = None
        if msg.sender is not None:
            sender = self.counters.verified(NodeRecord.decode, msg.sender)
            if sender is None:
                return
            self.table.heard(sender.id, addr, now)
        handler = self._handlers.get(msg.method)
        if handler is None:
            reply = Reply(Status.UNKNOWN_METHOD)
        else:
            try:
                reply = handler(RequestContext(self, now, addr, msg, sender))
            except HyphalError as e:
                log.debug("request %d from %s refused: %s", msg.method, addr, e)
                reply = Reply(Status.ERROR)
            except Exception:  # an extension's bug must not take the node down
                log.exception("handler for method %d failed", msg.method)
                reply = Reply(Status.ERROR)
        if reply.status != Status.OK:
            self.counters.refused += 1
        target = msg.target
        nodes: tuple[bytes, ...] = ()
        if reply.nodes and target is not None:
            exclude = None if sender is None else sender.id
            k = self.config.k
            closest = self.table.closest(target, k + 1)
            nodes = tuple([c.record.encoded for c in closest if c.record.id != exclude][:k])
        token = self.tokens.issue(addr, target, now) if reply.token and target is not None else b""
        try:
            data = encode_response(
                msg.method, msg.txid, self.record.encoded, addr, reply.status, token, nodes, reply.payload
            )
        except InvalidInput:
            data = encode_response(msg.method, msg.txid, self.record.encoded, addr, Status.TOO_LARGE)
        self._send(addr, data)
        if sender is not None:
            self._maybe_learn(now, sender, addr)

    # -- maintenance ----------------------------------------------------------------------------

    def _maintenance(self, now: float) -> None:
        """Periodic upkeep; the layers above extend it (republishing, re-replication) after this runs."""
        self._call_at(now + self.config.maintenance_interval, self._maintenance)
        self.store.expire(now)
        self._refresh_buckets(now)

    def _refresh_buckets(self, now: float, *, sparse_only: bool = False) -> None:
        if not len(self.table):
            return
        for index in self.table.stale_buckets(now, 0.0 if sparse_only else self.config.refresh_interval):
            sizes = self.table.bucket_sizes()
            if sparse_only and (index >= len(sizes) - 1 or sizes[index] >= self.config.k // 2):
                continue
            self._lookup(now, self.table.refresh_target(index, self._rng), Method.FIND_NODE, on_done=_ignore)

    # -- persistence ------------------------------------------------------------------------------

    def routing_state(self) -> bytes:
        """The routing table, encoded for :meth:`RoutingTable.decode_records` after a restart."""
        return self.table.encode()


def _ignore(*args: object) -> None:
    return None


def _answer_ping(ctx: RequestContext) -> Reply:
    return Reply()


def _answer_find_node(ctx: RequestContext) -> Reply:
    if ctx.request.target is None:
        return Reply(Status.ERROR)
    return Reply(nodes=True)


__all__ = ["DhtConfig", "DhtCore"]
