"""A deterministic network simulator for sans-I/O DHT nodes.

The :class:`Simulator` runs unmodified :class:`~hyphal.dht.node.DhtNode`
state machines over a simulated network in virtual time:

- one event heap ordered by (time, sequence number), so equal times keep
  their order and nothing depends on the host's clock or hash seeds;
- per-link one-way latency from each host's position on a plane (plus a
  small jitter), independent loss, and partitions;
- hosts that join, leave (crash: they stop answering, with no goodbye) and
  come back, or leave for good (remove: a crash whose state is freed, so a
  long churn run does not keep every departed node in memory);
- one seeded ``random.Random`` for the network, and a seeded one per node:
  the same seed gives the same run, which :attr:`Simulator.trace_digest`
  (a BLAKE3 of every delivered datagram and its time) makes checkable.

Keys come from the seed (``derive_key(seed, index)``), so building ten
thousand nodes costs ten thousand ed25519 key derivations and nothing else.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hyphal import _core
from hyphal.dht.node import DhtConfig, DhtNode
from hyphal.dht.operation import Operation
from hyphal.dht.record_store import RecordStore
from hyphal.dht.records import Addr
from hyphal.signing import KeyPair

T = TypeVar("T")

EPOCH = 1_800_000_000.0
"""Virtual time starts here (UNIX seconds), so signed timestamps look like real ones."""
PORT = 7400

_DELIVER, _TIMER, _CALL = range(3)
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")


@dataclass(slots=True)
class SimHost:
    """One simulated machine running a :class:`DhtNode`."""

    index: int
    addr: Addr
    node: DhtNode
    x: float
    y: float
    alive: bool = True
    timer_at: float | None = None
    group: int = 0
    """Partition group; hosts in different groups cannot reach each other."""


def host_address(index: int) -> Addr:
    """``10.a.b.c:7400`` for host ``index`` (up to 2^24 hosts)."""
    return (f"10.{(index >> 16) & 0xFF}.{(index >> 8) & 0xFF}.{index & 0xFF}", PORT)


def keypair_for(seed: int, index: int) -> KeyPair:
    return KeyPair(_core.derive_key("hyphal sim node key", _U64.pack(seed) + _U64.pack(index)))


class Simulator:
    """Virtual time, a simulated network, and the nodes on it. See the module docstring."""

    def __init__(
        self,
        seed: int,
        *,
        config: DhtConfig | None = None,
        base_latency: float = 0.005,
        spread_latency: float = 0.1,
        jitter: float = 0.002,
        loss: float = 0.0,
        store_factory: Callable[[int], RecordStore] | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.config = config or DhtConfig()
        self.base_latency = base_latency
        self.spread_latency = spread_latency
        self.jitter = jitter
        self.loss = loss
        self.store_factory = store_factory
        self.now = EPOCH
        self.hosts: list[SimHost] = []
        self.by_addr: dict[Addr, SimHost] = {}
        self._events: list[tuple[float, int, int, Any]] = []
        self._seq = itertools.count()
        self._hasher = _core.Hasher()
        self._ips: dict[Addr, bytes] = {}
        self.delivered = 0
        self.dropped = 0
        self.on_node: list[Callable[[SimHost], None]] = []
        """Called with every new or restarted host (attach extensions such as the secret store here)."""
        self._stores: dict[int, RecordStore | None] = {}
        self._next_index = 0

    # -- building the network ------------------------------------------------------

    def _node(self, index: int, config: DhtConfig | None, seq: int) -> DhtNode:
        return DhtNode(
            keypair_for(self.seed, index),
            [host_address(index)],
            now=self.now,
            config=config or self.config,
            store=self._stores[index],
            rng=random.Random(self.seed * 1_000_003 + index * 7 + seq),
            record_seq=seq,
        )

    def add_node(self, config: DhtConfig | None = None) -> SimHost:
        """A new host with a fresh node (not yet joined)."""
        index = self._next_index
        self._next_index += 1
        self._stores[index] = None if self.store_factory is None else self.store_factory(index)
        host = SimHost(
            index, host_address(index), self._node(index, config, 1), self.rng.random(), self.rng.random()
        )
        self.hosts.append(host)
        self.by_addr[host.addr] = host
        for hook in self.on_node:
            hook(host)
        self._flush(host)
        return host

    def restart(self, host: SimHost, via: Sequence[SimHost] = ()) -> Operation[Any]:
        """The host's process restarts: a new node with the same key, address and record store.

        Everything in memory is lost (routing table, pending requests); the
        store (from ``store_factory``) is kept. It rejoins through ``via``.
        """
        host.node.close()
        host.node = self._node(host.index, host.node.config, host.node.record.seq + 1)
        host.alive = True
        host.timer_at = None
        for hook in self.on_node:
            hook(host)
        return self.join(host, via)

    def add_nodes(self, count: int) -> list[SimHost]:
        return [self.add_node() for _ in range(count)]

    def join(self, host: SimHost, via: Sequence[SimHost]) -> Operation[Any]:
        """Bootstrap ``host`` from the addresses of ``via`` (the protocol's own join)."""
        op = host.node.bootstrap(self.now, [v.addr for v in via])
        self._flush(host)
        return op

    def join_all(
        self, hosts: Sequence[SimHost], *, seeds: int = 3, timeout: float = 60.0, parallel: int = 1
    ) -> None:
        """Join ``hosts``, each through up to ``seeds`` random already-joined hosts.

        ``parallel`` hosts join at once (in batches), which keeps the virtual
        time of a big join short: nodes that wait long run their periodic
        maintenance (bucket refreshes) meanwhile, as they would.
        """
        joined: list[SimHost] = [h for h in self.hosts if h.alive and len(h.node.table)]
        pending = list(hosts)
        if not joined and pending:
            joined.append(pending.pop(0))
        while pending:
            batch, pending = pending[: min(parallel, len(joined))], pending[min(parallel, len(joined)) :]
            ops = [self.join(host, self.rng.sample(joined, min(seeds, len(joined)))) for host in batch]
            self.run_all(ops, timeout=timeout)
            joined.extend(batch)

    def fill_tables(self, hosts: Sequence[SimHost] | None = None) -> None:
        """Fill every routing table as if the network had run for long (a shortcut for big runs).

        Each bucket of each node gets up to k random live nodes of its
        prefix, through the table's own :meth:`~RoutingTable.seen`. It skips
        the protocol's rule that a node enters a table only after answering;
        use :meth:`join_all` where that matters.
        """
        live = [h for h in (self.hosts if hosts is None else hosts) if h.alive]
        ranked = sorted(live, key=lambda h: h.node.id)
        ints = [int.from_bytes(h.node.id, "big") for h in ranked]
        k = self.config.k
        for host in live:
            own = int.from_bytes(host.node.id, "big")
            table = host.node.table
            for shared in range(256):
                low_bits = 255 - shared
                start = ((own >> low_bits) ^ 1) << low_bits
                lo = bisect.bisect_left(ints, start)
                hi = bisect.bisect_left(ints, start + (1 << low_bits))
                span = range(lo, hi)
                for i in self.rng.sample(span, min(k, len(span))):
                    other = ranked[i]
                    table.seen(other.node.record, other.addr, self.now)
                # Stop once no other node shares the next prefix bit with us.
                near = own >> low_bits << low_bits
                if bisect.bisect_left(ints, near + (1 << low_bits)) - bisect.bisect_left(ints, near) <= 1:
                    break

    # -- churn and faults ------------------------------------------------------------

    def crash(self, host: SimHost) -> None:
        """The host stops: it neither answers nor sends (its state is kept for :meth:`revive`)."""
        host.alive = False

    def remove(self, host: SimHost) -> None:
        """The host crashes and never comes back: it leaves :attr:`hosts` and its state is freed.

        Its address is never reused, so datagrams still on their way to it are
        dropped like those to a crashed host.
        """
        host.alive = False
        host.node.close()
        self.hosts = [h for h in self.hosts if h is not host]
        self.by_addr.pop(host.addr, None)
        self._stores.pop(host.index, None)

    def revive(self, host: SimHost) -> None:
        host.alive = True
        host.timer_at = None
        self._flush(host)

    def partition(self, groups: Iterable[Iterable[SimHost]]) -> None:
        """Split the network: hosts of different groups cannot reach each other."""
        for number, group in enumerate(groups, start=1):
            for host in group:
                host.group = number

    def heal(self) -> None:
        for host in self.hosts:
            host.group = 0

    # -- running ------------------------------------------------------------------------

    def latency(self, a: SimHost, b: SimHost) -> float:
        distance = math.hypot(a.x - b.x, a.y - b.y)
        return self.base_latency + self.spread_latency * distance + self.rng.random() * self.jitter

    def call(self, when: float, fn: Callable[[], object], host: SimHost | None = None) -> None:
        """Run ``fn()`` at virtual time ``when``, then send what ``host`` (if given) queued meanwhile."""
        if host is not None:
            inner = fn

            def fn() -> None:
                inner()
                self._flush(host)

        heapq.heappush(self._events, (when, next(self._seq), _CALL, fn))

    def start(self, host: SimHost, fn: Callable[[DhtNode, float], Operation[T]]) -> Operation[T]:
        """Start an operation on ``host`` now: ``fn(node, now)``; its datagrams go out at once."""
        op = fn(host.node, self.now)
        self._flush(host)
        return op

    def step(self) -> bool:
        """Process one event; False when there are none."""
        if not self._events:
            return False
        when, _, kind, item = heapq.heappop(self._events)
        self.now = max(self.now, when)
        if kind == _DELIVER:
            src, dst, data = item
            host = self.by_addr.get(dst)
            if host is None or not host.alive:
                self.dropped += 1
                return True
            self.delivered += 1
            self._hasher.update(_F64.pack(when) + self._ip(src) + self._ip(dst) + data)
            host.node.datagram_received(self.now, src, data)
            self._flush(host)
        elif kind == _TIMER:
            host, deadline = item
            if host.alive and host.timer_at == deadline:
                host.timer_at = None
                host.node.timer_fired(self.now)
                self._flush(host)
        else:
            item()
        return True

    def run_until(self, when: float) -> None:
        while self._events and self._events[0][0] <= when:
            self.step()
        self.now = max(self.now, when)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until_done(self, op: Operation[T], *, timeout: float = 600.0) -> Operation[T]:
        """Run until ``op`` is done (TimeoutError after ``timeout`` virtual seconds)."""
        deadline = self.now + timeout
        while not op.done:
            if not self._events or self._events[0][0] > deadline:
                raise TimeoutError(f"{op.kind} not done after {timeout} virtual seconds")
            self.step()
        return op

    def run_all(self, ops: Sequence[Operation[Any]], *, timeout: float = 600.0) -> None:
        for op in ops:
            self.run_until_done(op, timeout=timeout)

    def _ip(self, addr: Addr) -> bytes:
        ip = self._ips.get(addr)
        if ip is None:
            ip = self._ips[addr] = addr[0].encode()
        return ip

    @property
    def trace_digest(self) -> str:
        """BLAKE3 over every delivered datagram with its time, source and destination."""
        return self._hasher.finalize().hex()

    def _flush(self, host: SimHost) -> None:
        node = host.node
        for dst, data in node.datagrams_to_send():
            target = self.by_addr.get(dst)
            if target is None or not host.alive:
                self.dropped += 1
                continue
            if host.group != target.group or (self.loss and self.rng.random() < self.loss):
                self.dropped += 1
                continue
            # self.latency(host, target), inlined: this runs for every datagram.
            distance = math.hypot(host.x - target.x, host.y - target.y)
            when = self.now + (
                self.base_latency + self.spread_latency * distance + self.rng.random() * self.jitter
            )
            heapq.heappush(self._events, (when, next(self._seq), _DELIVER, (host.addr, dst, data)))
        deadline = node.get_timer()
        if deadline is not None and deadline != host.timer_at and host.alive:
            host.timer_at = deadline
            heapq.heappush(self._events, (max(deadline, self.now), next(self._seq), _TIMER, (host, deadline)))


__all__ = ["EPOCH", "SimHost", "Simulator", "host_address", "keypair_for"]
