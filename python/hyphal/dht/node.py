"""The DHT node as a sans-I/O state machine (docs/PROTOCOL.md §11).

:class:`DhtNode` holds no socket, reads no clock and never sleeps. Its
driver (:mod:`hyphal.dht.udp`, or the simulator :mod:`hyphal.sim`) feeds it
events, each with the current time ``now`` (UNIX seconds, as a float):

- :meth:`DhtNode.datagram_received` for every datagram that arrives;
- :meth:`DhtNode.timer_fired` once :meth:`DhtNode.get_timer` has passed;
- API calls (:meth:`DhtNode.find_node`, :meth:`DhtNode.put_mutable`, …)
  that start an :class:`~hyphal.dht.operation.Operation`.

After each, the driver sends :meth:`DhtNode.datagrams_to_send` and re-arms
its timer for :meth:`DhtNode.get_timer` (the h11 / aioquic shape).

Anything malformed, forged, unexpected or over the rate limit is dropped
and counted in :attr:`DhtNode.counters`; it never raises out of an event
method and is never stored. New RPCs plug in with
:meth:`DhtNode.register_handler` (a method id from
:data:`~hyphal.dht.messages.FIRST_EXTENSION_METHOD` up) and
:meth:`DhtNode.request` / :meth:`DhtNode.lookup_nodes`; the replicated
secret store is built that way.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hyphal.dht.holder import RecordHolder
from hyphal.dht.ids import immutable_key
from hyphal.dht.limits import Counters, RateLimiter
from hyphal.dht.lookup import Candidate, Lookup
from hyphal.dht.messages import (
    FIRST_EXTENSION_METHOD,
    MAX_DATAGRAM_SIZE,
    MAX_VALUE_SIZE,
    Method,
    Request,
    Response,
    Status,
    decode_announces,
    decode_message,
    decode_optional_value,
    decode_seq,
    encode_mutable_put,
    encode_request,
    encode_response,
)
from hyphal.dht.operation import LookupResult, Operation, PutResult
from hyphal.dht.records import Addr, AnnounceRecord, NodeRecord
from hyphal.dht.routing import Contact, RoutingTable
from hyphal.dht.rpc import Handler, Reply, ReplyCallback, RequestContext
from hyphal.dht.rtt import RttEstimator
from hyphal.dht.store import MemoryStore, RecordKind, RecordStore, StoredRecord
from hyphal.dht.tokens import TokenIssuer
from hyphal.errors import DecodeError, HyphalError, InvalidInput, SeqConflict, VerificationError
from hyphal.signed_value import SignedValue, value_id
from hyphal.signing import KeyPair

log = logging.getLogger(__name__)
_R = TypeVar("_R")


@dataclass(slots=True)
class DhtConfig:
    """Tunables of a :class:`DhtNode`; times are seconds."""

    k: int = 20
    alpha: int = 3
    disjoint_paths: int = 1
    """Disjoint lookup paths (S/Kademlia); 1 is plain Kademlia."""
    min_timeout: float = 0.05
    max_timeout: float = 2.0
    initial_timeout: float = 1.0
    """Timeout before any RTT sample; afterwards unknown nodes get 2·(SRTT+4·RTTVAR) of all samples."""
    token_rotation: float = 300.0
    rate: float = 200.0
    """Requests per second per source IP (token bucket)."""
    burst: float = 400.0
    maintenance_interval: float = 60.0
    refresh_interval: float = 900.0
    """A bucket untouched this long is refreshed by a lookup of a random id in it."""
    record_ttl: float = 7200.0
    """A holder keeps an immutable or mutable record this long after its last put."""
    republish_interval: float = 3000.0
    """The originator puts its records again this often (announces: also at half their TTL)."""
    replicate_interval: float = 3600.0
    """A holder pushes a record not put for this long to the closest nodes that lack it."""
    max_concurrent_replications: int = 4
    max_records: int = 100_000
    max_announces_per_topic: int = 64
    max_clock_skew: float = 300.0
    client: bool = False
    """A client sends no node record, so nobody adds it to a routing table."""
    refresh_after_bootstrap: bool = True
    repair_on_get: bool = True
    validate_mutable: Callable[[SignedValue], bool] | None = None
    """The application's hook: a holder stores (and a getter accepts) only values it approves."""


class _Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[float], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass(slots=True)
class _Pending:
    addr: Addr
    method: int
    sent_at: float
    expect_id: bytes | None
    on_reply: ReplyCallback
    on_timeout: Callable[[float], None]
    timer: _Timer
    late_ok: bool = False
    """After its timeout, a late reply is still taken until ``max_timeout`` (lookups)."""
    timed_out: bool = False


@dataclass(slots=True)
class _Published:
    next_at: float
    interval: float
    put: Callable[[float], object]


class _LookupRun:
    """One lookup in progress: sends its queries and calls back on each reply and at the end."""

    __slots__ = ("completed", "lookup", "method", "node", "on_done", "on_reply", "payload")

    def __init__(
        self,
        node: DhtNode,
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


class DhtNode:
    """One DHT node's protocol state. See the module docstring for how to drive it."""

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
        self._timers: list[tuple[float, int, _Timer]] = []
        self._timer_seq = itertools.count()
        self._pending: dict[int, _Pending] = {}
        self._pinging: set[bytes] = set()
        self._published: dict[tuple[int, bytes, bytes], _Published] = {}
        self._replication_queue: deque[StoredRecord] = deque()
        self._replications_running = 0
        self.holder = RecordHolder(self)
        self._handlers: dict[int, Handler] = self.holder.handlers()
        self.observed_addresses: dict[Addr, int] = {}
        """How often responders saw us at each address (a node behind NAT learns its public address)."""
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
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def timer_fired(self, now: float) -> None:
        """Run every timer due at ``now``."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, timer = heapq.heappop(timers)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback(now)

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

    # announces

    def announce(
        self,
        now: float,
        keypair: KeyPair,
        topic: bytes,
        addresses: Sequence[Addr],
        ttl: int = 1200,
        *,
        republish: bool = True,
    ) -> Operation[PutResult]:
        """Sign and store "``keypair`` serves ``topic`` at ``addresses``" on the k closest nodes."""
        record = AnnounceRecord.sign(keypair, topic, int(now), ttl, tuple(addresses))
        if republish:
            interval = min(self.config.republish_interval, ttl / 2)
            self._published[(RecordKind.ANNOUNCE, topic, keypair.public_key)] = _Published(
                now + interval,
                interval,
                lambda t: self.announce(t, keypair, topic, addresses, ttl, republish=False),
            )
        return self._put(now, "announce", topic, Method.LOOKUP, Method.ANNOUNCE, lambda: record.encoded)

    def unannounce(self, topic: bytes, public_key: bytes) -> None:
        """Stop republishing an announce (holders drop it when its TTL ends)."""
        self._published.pop((RecordKind.ANNOUNCE, topic, public_key), None)

    def lookup(self, now: float, topic: bytes) -> Operation[LookupResult]:
        """Find the peers announced for ``topic``: the newest valid announce of each, newest first."""
        found: dict[bytes, AnnounceRecord] = {}

        def on_reply(t: float, c: Candidate, resp: Response) -> None:
            try:
                raw = decode_announces(resp.payload)
            except DecodeError:
                self.counters.malformed += 1
                return
            for item in raw:
                a = self.counters.verified(AnnounceRecord.decode, item)
                if a is None or a.topic != topic or a.expires <= t:
                    if a is not None and a.topic != topic:
                        self.counters.forged += 1
                    continue
                old = found.get(a.public_key)
                if old is None or a.issued_at > old.issued_at:
                    found[a.public_key] = a

        op: Operation[LookupResult] = Operation("lookup", now)

        def done(t: float, lk: Lookup) -> None:
            result = self._result(lk)
            result.announces = sorted(found.values(), key=lambda a: -a.issued_at)
            op._finish(t, result)

        self._lookup(now, topic, Method.LOOKUP, on_reply=on_reply, on_done=done)
        return op

    # immutable records

    def put_immutable(self, now: float, value: bytes, *, republish: bool = True) -> Operation[PutResult]:
        """Store ``value`` (at most 1000 bytes) under ``BLAKE3(value)`` on the k closest nodes."""
        if len(value) > MAX_VALUE_SIZE:
            raise InvalidInput(f"an immutable value is at most {MAX_VALUE_SIZE} bytes")
        key = immutable_key(value)
        if republish:
            self._published[(RecordKind.IMMUTABLE, key, b"")] = _Published(
                now + self.config.republish_interval,
                self.config.republish_interval,
                lambda t: self.put_immutable(t, value, republish=False),
            )
        return self._put(now, "put_immutable", key, Method.GET_IMMUTABLE, Method.PUT_IMMUTABLE, lambda: value)

    def get_immutable(self, now: float, key: bytes) -> Operation[LookupResult]:
        """Find the value stored under ``key``; the result's ``value`` is None when nobody had it."""
        op: Operation[LookupResult] = Operation("get_immutable", now)
        found: list[bytes] = []

        def on_reply(t: float, c: Candidate, resp: Response) -> None:
            try:
                value = decode_optional_value(resp.payload)
            except DecodeError:
                self.counters.malformed += 1
                return
            if value is None or found:
                return
            if immutable_key(value) != key:
                self.counters.forged += 1
                return
            found.append(value)
            run.lookup.finish()

        def done(t: float, lk: Lookup) -> None:
            result = self._result(lk)
            result.value = found[0] if found else None
            op._finish(t, result)

        run = self._lookup(now, key, Method.GET_IMMUTABLE, on_reply=on_reply, on_done=done)
        return op

    # mutable records

    def put_mutable(
        self,
        now: float,
        keypair: KeyPair,
        value: bytes,
        *,
        salt: bytes = b"",
        cas: int | None = None,
        republish: bool = True,
    ) -> Operation[PutResult]:
        """Sign ``value`` with the next seq and store it on the k closest nodes (BEP 44).

        The seq is one more than the highest valid seq the closest nodes hold.
        With ``cas`` the put is a compare-and-swap: it ends with
        :class:`~hyphal.errors.SeqConflict` when the highest seq found is not
        ``cas`` (0 for "no value yet") or when every holder reports a mismatch.
        """
        key = value_id(keypair.public_key, salt)
        op: Operation[PutResult] = Operation("put_mutable", now)
        latest = self._collect_mutable(key)

        def after_get(t: float, lk: Lookup) -> None:
            best = latest.best
            current = 0 if best is None else best.seq
            if cas is not None and cas != current:
                op._finish(t, error=SeqConflict(f"compare-and-swap failed: seq is {current}, not {cas}"))
                return
            try:
                signed = SignedValue.sign(keypair, current + 1, value, salt)
            except InvalidInput as e:
                op._finish(t, error=e)
                return
            if republish:
                self._publish_mutable(t, signed)
            result = PutResult(key, seq=signed.seq)
            payload = encode_mutable_put(signed.encode(), cas)
            self._store_on(t, lk.closest_answered(), Method.PUT_MUTABLE, key, payload, op, result, cas=cas)

        self._lookup(now, key, Method.GET_MUTABLE, on_reply=latest.on_reply, on_done=after_get)
        return op

    def put_signed(
        self, now: float, signed: SignedValue, *, cas: int | None = None, republish: bool = True
    ) -> Operation[PutResult]:
        """Store an already signed value (say, from a :class:`SignedValueFeed`) on the k closest nodes."""
        signed.verify()
        if republish:
            self._publish_mutable(now, signed)
        payload = encode_mutable_put(signed.encode(), cas)
        return self._put(
            now, "put_signed", signed.id, Method.GET_MUTABLE, Method.PUT_MUTABLE, lambda: payload, cas=cas
        )

    def get_mutable(self, now: float, public_key: bytes, salt: bytes = b"") -> Operation[LookupResult]:
        """The highest valid seq the closest nodes hold (``signed_value``), repairing stale copies."""
        key = value_id(public_key, salt)
        op: Operation[LookupResult] = Operation("get_mutable", now)
        latest = self._collect_mutable(key)

        def done(t: float, lk: Lookup) -> None:
            result = self._result(lk)
            best = result.signed_value = latest.best
            if best is not None and self.config.repair_on_get:
                result.repaired = self._repair(t, lk, key, best, latest.seqs)
            op._finish(t, result)

        self._lookup(now, key, Method.GET_MUTABLE, on_reply=latest.on_reply, on_done=done)
        return op

    def _publish_mutable(self, now: float, signed: SignedValue) -> None:
        interval = self.config.republish_interval
        self._published[(RecordKind.MUTABLE, signed.id, b"")] = _Published(
            now + interval, interval, lambda t: self.put_signed(t, signed, republish=False)
        )

    def stop_publishing(self, kind: int, key: bytes, sub: bytes = b"") -> None:
        self._published.pop((kind, key, sub), None)

    def _collect_mutable(self, key: bytes) -> _MutableCollector:
        return _MutableCollector(self, key)

    def _repair(self, now: float, lk: Lookup, key: bytes, best: SignedValue, seqs: dict[bytes, int]) -> int:
        payload = encode_mutable_put(best.encode(), None)
        repaired = 0
        for c in lk.closest_answered():
            if seqs.get(c.id, 0) < best.seq and c.token:
                repaired += 1
                self._send_request(
                    now,
                    c.addr,
                    Method.PUT_MUTABLE,
                    target=key,
                    token=c.token,
                    payload=payload,
                    expect_id=c.id,
                    on_reply=lambda t, r, rec: None,
                    on_timeout=lambda t: None,
                )
        return repaired

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

    def _put(
        self,
        now: float,
        kind: str,
        key: bytes,
        get_method: int,
        put_method: int,
        payload: Callable[[], bytes],
        *,
        cas: int | None = None,
    ) -> Operation[PutResult]:
        op: Operation[PutResult] = Operation(kind, now)

        def after_get(t: float, lk: Lookup) -> None:
            self._store_on(t, lk.closest_answered(), put_method, key, payload(), op, PutResult(key), cas=cas)

        self._lookup(now, key, get_method, on_done=after_get)
        return op

    def _store_on(
        self,
        now: float,
        holders: list[Candidate],
        method: int,
        key: bytes,
        payload: bytes,
        op: Operation[PutResult],
        result: PutResult,
        *,
        cas: int | None = None,
    ) -> None:
        waiting = len(holders)
        """Holders that neither answered nor timed out."""
        late = [False] * len(holders)
        """Per holder: its request timed out, but a late answer still counts (until max_timeout)."""

        def finish(t: float) -> None:
            if op.done:
                return
            if cas is not None and result.stored == 0 and result.conflicts:
                op._finish(t, error=SeqConflict(f"compare-and-swap failed: holders have {result.conflicts}"))
            else:
                op._finish(t, result)

        def settle(t: float) -> None:
            # Every holder answered or timed out. If none stored it yet, the put waits for late answers:
            # a busy process (a GC pause, a loaded core) reads replies after their timers fired, and
            # the holders did store the value.
            if waiting == 0 and (result.stored > 0 or not any(late)):
                finish(t)

        def replied(t: float, resp: Response, _responder: NodeRecord, *, i: int) -> None:
            nonlocal waiting
            if op.done:
                return
            if late[i]:
                late[i] = False
                result.timeouts -= 1
            else:
                waiting -= 1
            if resp.status == Status.OK:
                result.stored += 1
            else:
                result.refused[resp.status] = result.refused.get(resp.status, 0) + 1
                if resp.status in (Status.CAS_MISMATCH, Status.SEQ_TOO_OLD):
                    try:
                        result.conflicts.append(decode_seq(resp.payload))
                    except DecodeError:
                        self.counters.malformed += 1
            settle(t)

        def timed_out(t: float, *, i: int) -> None:
            nonlocal waiting
            waiting -= 1
            late[i] = True
            result.timeouts += 1
            settle(t)

        if not holders:
            finish(now)
            return
        for i, c in enumerate(holders):
            self._send_request(
                now,
                c.addr,
                method,
                target=key,
                token=c.token,
                payload=payload,
                expect_id=c.id,
                on_reply=functools.partial(replied, i=i),
                on_timeout=functools.partial(timed_out, i=i),
                late_ok=True,
            )
        # The requests' hard timeout: no late answer is taken after it.
        self._call_at(now + self.config.max_timeout, finish)

    # -- sending and receiving ---------------------------------------------------------------

    def _send(self, addr: Addr, data: bytes) -> None:
        self.counters.sent += 1
        self._outbox.append((addr, data))

    def _call_at(self, when: float, callback: Callable[[float], None]) -> _Timer:
        timer = _Timer(when, callback)
        heapq.heappush(self._timers, (when, next(self._timer_seq), timer))
        return timer

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
        self._call_at(now + self.config.maintenance_interval, self._maintenance)
        self.store.expire(now)
        self._refresh_buckets(now)
        for published in list(self._published.values()):
            if published.next_at <= now:
                published.next_at = now + published.interval
                published.put(now)
        self._queue_replication(now)

    def _refresh_buckets(self, now: float, *, sparse_only: bool = False) -> None:
        if not len(self.table):
            return
        for index in self.table.stale_buckets(now, 0.0 if sparse_only else self.config.refresh_interval):
            sizes = self.table.bucket_sizes()
            if sparse_only and (index >= len(sizes) - 1 or sizes[index] >= self.config.k // 2):
                continue
            self._lookup(now, self.table.refresh_target(index, self._rng), Method.FIND_NODE, on_done=_ignore)

    def _queue_replication(self, now: float) -> None:
        interval = self.config.replicate_interval
        queued = {(r.kind, r.key, r.sub) for r in self._replication_queue}
        last_put: dict[tuple[int, bytes, bytes], float] = {}
        for row in self.store.records():
            ident = (row.kind, row.key, row.sub)
            if row.kind not in _REPLICATED:
                continue
            last = last_put[ident] = self.holder.last_put.get(ident, now)
            if now - last >= interval and ident not in queued:
                self._replication_queue.append(row)
                last_put[ident] = now
        self.holder.last_put = last_put
        self._next_replication(now)

    def _next_replication(self, now: float) -> None:
        while (
            self._replication_queue and self._replications_running < self.config.max_concurrent_replications
        ):
            row = self._replication_queue.popleft()
            self._replications_running += 1
            self._replicate(now, row)

    def _replicate(self, now: float, row: StoredRecord) -> None:
        """Push a held record to the closest nodes that lack it (or hold an older version)."""
        get_method, put_method = _REPLICATED[row.kind]
        has: set[bytes] = set()

        def on_reply(t: float, c: Candidate, resp: Response) -> None:
            try:
                if row.kind == RecordKind.IMMUTABLE:
                    present = decode_optional_value(resp.payload) is not None
                elif row.kind == RecordKind.MUTABLE:
                    present = bool(resp.payload) and SignedValue.decode(resp.payload).seq >= row.seq
                else:
                    present = any(
                        AnnounceRecord.decode(a).public_key == row.sub for a in decode_announces(resp.payload)
                    )
            except (DecodeError, VerificationError):
                present = False
            if present:
                has.add(c.id)

        def done(t: float, lk: Lookup) -> None:
            self._replications_running -= 1
            payload = encode_mutable_put(row.value, None) if row.kind == RecordKind.MUTABLE else row.value
            for c in lk.closest_answered():
                if c.id not in has and c.token:
                    self._send_request(
                        t,
                        c.addr,
                        put_method,
                        target=row.key,
                        token=c.token,
                        payload=payload,
                        expect_id=c.id,
                        on_reply=lambda t2, r, rec: None,
                        on_timeout=_ignore,
                    )
            self._next_replication(t)

        self._lookup(now, row.key, get_method, on_reply=on_reply, on_done=done)

    # -- persistence ------------------------------------------------------------------------------

    def routing_state(self) -> bytes:
        """The routing table, encoded for :meth:`RoutingTable.decode_records` after a restart."""
        return self.table.encode()


class _MutableCollector:
    """Gathers the signed values a GET_MUTABLE lookup sees: the best one and each holder's seq."""

    __slots__ = ("best", "key", "node", "seqs")

    def __init__(self, node: DhtNode, key: bytes) -> None:
        self.node = node
        self.key = key
        self.best: SignedValue | None = None
        self.seqs: dict[bytes, int] = {}

    def on_reply(self, now: float, c: Candidate, resp: Response) -> None:
        if not resp.payload:
            return
        signed = self.node.counters.verified(SignedValue.decode_verified, resp.payload)
        if signed is None:
            return
        if signed.id != self.key:
            self.node.counters.forged += 1
            return
        self.seqs[c.id] = signed.seq
        validate = self.node.config.validate_mutable
        if validate is not None and not validate(signed):
            return
        if self.best is None or signed.seq > self.best.seq:
            self.best = signed


def _ignore(*args: object) -> None:
    return None


_REPLICATED: dict[int, tuple[int, int]] = {
    RecordKind.IMMUTABLE: (Method.GET_IMMUTABLE, Method.PUT_IMMUTABLE),
    RecordKind.MUTABLE: (Method.GET_MUTABLE, Method.PUT_MUTABLE),
    RecordKind.ANNOUNCE: (Method.LOOKUP, Method.ANNOUNCE),
}

__all__ = ["DhtConfig", "DhtNode", "Handler", "Operation", "Reply", "RequestContext"]
