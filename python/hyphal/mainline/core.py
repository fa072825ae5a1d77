"""The KRPC core of a mainline node, sans-I/O: queries and their timeouts, answering, lookups, upkeep.

:class:`KrpcCore` holds no socket, reads no clock and never sleeps. Its
driver (:mod:`hyphal.mainline.udp`) feeds it events with the time ``now``:

- :meth:`KrpcCore.datagram_received` for every datagram;
- :meth:`KrpcCore.timer_fired` once :meth:`KrpcCore.get_timer` has passed;
- operations (in :class:`~hyphal.mainline.node.MainlineNode`) that return an
  :class:`~hyphal.dht.operation.Operation`;

and after each sends :meth:`KrpcCore.datagrams_to_send`. This is someone
else's network, so our own queries go through a token bucket (excess waits
in a bounded queue), a node that stops answering is left alone for a
growing back-off, and in BEP 43 read-only mode we answer nobody and ask
with ``ro=1``. Whatever is malformed, forged, unexpected or over a limit is
dropped, counted in :attr:`KrpcCore.counters` and logged at debug level; no
event method raises for bad input.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hyphal.dht.limits import RateLimiter
from hyphal.dht.operation import Operation
from hyphal.dht.timers import Timers
from hyphal.dht.tokens import TokenIssuer
from hyphal.errors import DecodeError, InvalidInput
from hyphal.mainline.config import KrpcConfig
from hyphal.mainline.lookup import Candidate, Lookup
from hyphal.mainline.messages import (
    MAX_DATAGRAM_SIZE,
    METHODS,
    SERVER_ERROR,
    Addr,
    KrpcError,
    Query,
    Response,
    decode_message,
    decode_nodes,
    encode_error,
    encode_query,
    encode_response,
)
from hyphal.mainline.routing import RoutingTable
from hyphal.mainline.server import QueryRefused, answer
from hyphal.mainline.store import ItemStore

log = logging.getLogger("hyphal.mainline")

OnReply = Callable[[float, Response], None]
OnFail = Callable[[float, int | None], None]
"""Called with the KRPC error code the node answered, or None for a timeout (or a refusal to send)."""
MAX_BACKOFF = 3600.0
MAX_TRACKED = 4096


@dataclass(slots=True)
class Counters:
    """What a mainline node dropped, refused and sent. Nothing dropped is stored or returned."""

    received: int = 0
    sent: int = 0
    oversized: int = 0
    malformed: int = 0
    forged: int = 0
    """A signature, a value hash or a responder id did not check out."""
    rolled_back: int = 0
    """Mutable items older than one already seen for the same target."""
    oversized_items: int = 0
    rate_limited: int = 0
    unexpected: int = 0
    """Responses to no query of ours."""
    errors: int = 0
    """KRPC error replies to our queries."""
    refused: int = 0
    """Queries we answered with an error."""
    timeouts: int = 0
    ignored_read_only: int = 0
    """Queries we did not answer because we are read-only (BEP 43)."""
    backed_off: int = 0
    """Queries not sent: the node is in back-off, or our queue was full."""
    queued: int = 0
    """Queries that waited for the outgoing rate limit."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Outgoing:
    addr: Addr
    method: str
    args: dict[bytes, Any]
    expect_id: bytes | None
    on_reply: OnReply
    on_fail: OnFail
    tid: bytes = b""
    cancel: Callable[[], None] | None = None


@dataclass(slots=True)
class LookupResult:
    target: bytes
    nodes: list[Candidate] = field(default_factory=list)
    """The closest nodes that answered, nearest first, each with the token it gave."""
    queries: int = 0
    timeouts: int = 0


class KrpcCore:
    def __init__(
        self,
        node_id: bytes,
        *,
        now: float,
        config: KrpcConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if len(node_id) != 20:
            raise InvalidInput("a mainline node id is 20 bytes")
        self.config = cfg = config or KrpcConfig()
        self.id = node_id
        self._rng = rng if rng is not None else random.SystemRandom()
        self.table = RoutingTable(node_id, k=cfg.k, max_failures=cfg.max_failures)
        self.tokens = TokenIssuer(self._rng.randbytes(32), cfg.token_rotation)
        self.store = ItemStore(
            item_ttl=cfg.item_ttl,
            peer_ttl=cfg.peer_ttl,
            max_items=cfg.max_items,
            max_hashes=cfg.max_hashes,
            max_peers=cfg.max_peers_per_hash,
        )
        self.counters = Counters()
        self.observed: Addr | None = None
        """Our address as the last responder saw it (BEP 42's ``ip``)."""
        self.routers: list[Addr] = []
        self._limiter = RateLimiter(cfg.request_rate, cfg.request_burst)
        self._budget = cfg.query_burst
        self._budget_at = now
        self._queue: deque[_Outgoing] = deque()
        self._drain_armed = False
        self._pending: dict[bytes, _Outgoing] = {}
        self._failures: dict[Addr, int] = {}
        self._backoff: dict[Addr, float] = {}
        self._outbox: list[tuple[Addr, bytes]] = []
        self._timers = Timers()
        self.closed = False
        self._timers.call_at(now + cfg.maintenance_interval, self._maintenance)

    @property
    def k(self) -> int:
        return self.config.k

    @property
    def read_only(self) -> bool:
        return self.config.read_only

    # -- driver interface ------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[Addr, bytes]]:
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        return self._timers.next_due()

    def timer_fired(self, now: float) -> None:
        self._timers.fire(now)

    def close(self) -> None:
        self.closed = True
        self._timers.clear()
        self._pending.clear()
        self._queue.clear()

    def call_at(self, when: float, callback: Callable[[float], None]) -> Callable[[], None]:
        return self._timers.call_at(when, callback).cancel

    def datagram_received(self, now: float, addr: Addr, data: bytes) -> None:
        """One datagram from ``addr``; bad ones are dropped and counted, never raised."""
        c = self.counters
        c.received += 1
        if len(data) > MAX_DATAGRAM_SIZE:
            c.oversized += 1
            log.debug("dropped an oversized datagram (%d bytes) from %s", len(data), addr)
            return
        try:
            msg = decode_message(bytes(data))
        except DecodeError as e:
            c.malformed += 1
            log.debug("dropped a malformed datagram from %s: %s", addr, e)
            return
        if isinstance(msg, Query):
            self._on_query(now, addr, msg)
        else:
            self._on_reply(now, addr, msg)

    # -- our queries ---------------------------------------------------------------------------

    def query(
        self,
        now: float,
        addr: Addr,
        method: str,
        args: dict[bytes, Any],
        *,
        on_reply: OnReply,
        on_fail: OnFail,
        expect_id: bytes | None = None,
    ) -> None:
        """Send ``method`` to ``addr`` when the rate limit allows; exactly one callback follows."""
        out = _Outgoing(addr, method, {b"id": self.id, **args}, expect_id, on_reply, on_fail)
        if self._backoff.get(addr, 0.0) > now or len(self._queue) >= self.config.max_queued_queries:
            self.counters.backed_off += 1
            self._timers.call_at(now, lambda t: on_fail(t, None))  # never re-enter the caller
            return
        self._refill(now)
        if self._budget >= 1.0 and not self._queue:
            self._budget -= 1.0
            self._send_query(now, out)
        else:
            self.counters.queued += 1
            self._queue.append(out)
            self._arm_drain(now)

    def _refill(self, now: float) -> None:
        cfg = self.config
        self._budget = min(cfg.query_burst, self._budget + (now - self._budget_at) * cfg.query_rate)
        self._budget_at = now

    def _arm_drain(self, now: float) -> None:
        if not self._drain_armed:
            self._drain_armed = True
            # At least a millisecond: a wait that rounds away in ``now + wait`` would fire at once, forever.
            wait = max(0.001, (1.0 - self._budget) / self.config.query_rate)
            self._timers.call_at(now + wait, self._drain)

    def _drain(self, now: float) -> None:
        self._drain_armed = False
        self._refill(now)
        while self._queue and self._budget >= 1.0 - 1e-9:
            self._budget -= 1.0
            self._send_query(now, self._queue.popleft())
        if self._queue:
            self._arm_drain(now)

    def _send_query(self, now: float, out: _Outgoing) -> None:
        tid = self._rng.randbytes(4)
        while tid in self._pending:
            tid = self._rng.randbytes(4)
        out.tid = tid
        try:
            data = encode_query(tid, out.method, out.args, read_only=self.read_only)
        except InvalidInput as e:
            log.debug("not sending %s: %s", out.method, e)
            self._timers.call_at(now, lambda t: out.on_fail(t, None))
            return
        if len(data) > MAX_DATAGRAM_SIZE:
            self._timers.call_at(now, lambda t: out.on_fail(t, None))
            return
        self._pending[tid] = out
        out.cancel = self.call_at(now + self.config.query_timeout, lambda t: self._timed_out(t, tid))
        self._send(out.addr, data)

    def _send(self, addr: Addr, data: bytes) -> None:
        self.counters.sent += 1
        self._outbox.append((addr, data))

    def _timed_out(self, now: float, tid: bytes) -> None:
        out = self._pending.pop(tid, None)
        if out is None:
            return
        self.counters.timeouts += 1
        if out.expect_id is not None:
            self.table.failed(out.expect_id)
        n = self._failures.get(out.addr, 0) + 1
        self._failures[out.addr] = n
        if n >= self.config.max_failures:
            self._backoff[out.addr] = now + min(
                MAX_BACKOFF, self.config.backoff * 2 ** (n - self.config.max_failures)
            )
            if len(self._backoff) > MAX_TRACKED:
                self._prune(now)
        out.on_fail(now, None)

    def _prune(self, now: float) -> None:
        for addr in [a for a, until in self._backoff.items() if until <= now]:
            del self._backoff[addr]
            self._failures.pop(addr, None)
        while len(self._failures) > MAX_TRACKED:
            del self._failures[next(iter(self._failures))]

    def _on_reply(self, now: float, addr: Addr, msg: Response | KrpcError) -> None:
        out = self._pending.get(msg.tid)
        if out is None or out.addr != addr:
            self.counters.unexpected += 1
            log.debug("dropped a reply to no query of ours from %s", addr)
            return
        if isinstance(msg, Response) and out.expect_id is not None and msg.sender != out.expect_id:
            self.counters.forged += 1
            log.debug("dropped a reply from %s under another node's id", addr)
            return
        del self._pending[msg.tid]
        if out.cancel is not None:
            out.cancel()
        self._failures.pop(addr, None)
        self._backoff.pop(addr, None)
        if isinstance(msg, KrpcError):
            self.counters.errors += 1
            log.debug("%s answered %s with error %d %s", addr, out.method, msg.code, msg.message)
            out.on_fail(now, msg.code)
            return
        if msg.observed is not None:
            self.observed = msg.observed
        self.table.seen(msg.sender, addr, now)
        out.on_reply(now, msg)

    # -- answering -------------------------------------------------------------------------------

    def _on_query(self, now: float, addr: Addr, q: Query) -> None:
        c = self.counters
        if self.read_only:
            c.ignored_read_only += 1
            return
        if not self._limiter.allow(addr[0], now):
            c.rate_limited += 1
            return
        if not q.read_only and q.method in METHODS:
            self.table.seen(q.sender, addr, now)
        try:
            data = encode_response(q.tid, answer(self, q, addr, now), observed=addr)
        except QueryRefused as e:
            c.refused += 1
            log.debug("refused %s from %s: %s", q.method, addr, e)
            data = encode_error(q.tid, e.code, e.message)
        except Exception:  # a bug of ours must not take the node down; the peer learns nothing
            log.exception("answering %s from %s failed", q.method, addr)
            data = encode_error(q.tid, SERVER_ERROR, "server error")
        self._send(addr, data)

    # -- lookups ------------------------------------------------------------------------------------

    def lookup(
        self,
        now: float,
        target: bytes,
        method: str,
        args: dict[bytes, Any],
        *,
        on_reply: Callable[[float, Candidate, Response, Lookup], None] | None = None,
        seeds: Iterable[tuple[bytes, Addr]] = (),
    ) -> Operation[LookupResult]:
        """An iterative lookup of ``target`` asking ``method`` with ``args`` (replies carry ``nodes``)."""
        cfg = self.config
        op: Operation[LookupResult] = Operation(f"mainline {method}", now)
        lk = Lookup(target, k=cfg.k, alpha=cfg.alpha, max_queries=cfg.max_queries_per_lookup, exclude=self.id)
        lk.add((c.id, c.addr) for c in self.table.closest(target, 2 * cfg.k))
        lk.add(seeds)

        def pump(t: float) -> None:
            if op.done:
                return
            for c in lk.next_queries():
                self.query(
                    t,
                    c.addr,
                    method,
                    args,
                    expect_id=c.id,
                    on_reply=lambda t2, r, c=c: replied(t2, c, r),  # type: ignore[misc]
                    on_fail=lambda t2, code, c=c: failed(t2, c),  # type: ignore[misc]
                )
            if lk.done:
                op._finish(t, LookupResult(target, lk.closest_answered(), lk.queries, lk.timeouts))

        def replied(t: float, c: Candidate, r: Response) -> None:
            if op.done:
                return
            raw = r.values.get(b"nodes")
            if raw is not None:
                try:
                    lk.add(decode_nodes(raw))
                except DecodeError as e:
                    self.counters.malformed += 1
                    log.debug("malformed nodes from %s: %s", c.addr, e)
            token = r.values.get(b"token")
            lk.answered(c, token if isinstance(token, bytes) and len(token) <= 64 else None)
            if on_reply is not None:
                on_reply(t, c, r, lk)
            pump(t)

        def failed(t: float, c: Candidate) -> None:
            if not op.done:
                lk.failed(c)
                pump(t)

        pump(now)
        return op

    def bootstrap(self, now: float, routers: Sequence[Addr]) -> Operation[int]:
        """Ask each router for nodes near our id, then look our id up; ends with the table's size."""
        op: Operation[int] = Operation("mainline bootstrap", now)
        self.routers = [r for r in routers if r not in self.routers] + self.routers
        seeds: list[tuple[bytes, Addr]] = []
        remaining = len(routers)

        def one_done(t: float) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining <= 0:
                lk = self.lookup(t, self.id, "find_node", {b"target": self.id}, seeds=seeds)
                lk.on_done(lambda o: op._finish(o.finished_at or t, len(self.table)))

        def replied(t: float, addr: Addr, r: Response) -> None:
            seeds.append((r.sender, addr))
            try:
                seeds.extend(decode_nodes(r.values.get(b"nodes", b"")))
            except DecodeError:
                self.counters.malformed += 1
            one_done(t)

        if not routers:
            one_done(now)
        for addr in routers:
            self.query(
                now,
                addr,
                "find_node",
                {b"target": self.id},
                on_reply=lambda t, r, addr=addr: replied(t, addr, r),  # type: ignore[misc]
                on_fail=lambda t, code: one_done(t),
            )
        return op

    # -- upkeep -----------------------------------------------------------------------------------

    def _maintenance(self, now: float) -> None:
        cfg = self.config
        self._timers.call_at(now + cfg.maintenance_interval, self._maintenance)
        self.store.expire(now)
        self._prune(now)
        for contact in self.table.stale(now, cfg.ping_after)[: cfg.k]:
            self.query(now, contact.addr, "ping", {}, expect_id=contact.id, on_reply=_ignore, on_fail=_ignore)
        if len(self.table) < cfg.k and self.routers:
            self.bootstrap(now, self.routers)
        elif len(self.table):
            target = self.table.refresh_target(self._rng)
            self.lookup(now, target, "find_node", {b"target": target})


def _ignore(*args: object) -> None:
    return None


__all__ = ["Counters", "KrpcCore", "LookupResult"]
