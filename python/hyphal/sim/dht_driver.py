"""The DHT on the simulator's network: :class:`SimDht`, a :class:`~hyphal.dht.udp.UdpDht` without a socket.

It is ``UdpDht`` (every operation, bootstrapping from seeds and the saved
routing table, saving it on exit) with the socket and the clock swapped:
datagrams go through :meth:`StreamNetwork.send_datagram
<hyphal.sim.streams.StreamNetwork.send_datagram>`, arrive as loop callbacks,
and the node's timer is a loop timer, all in virtual time; the node's
clock is :func:`hyphal.clock.wall_time` and its randomness a seeded
``random.Random``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import anyio

from hyphal.clock import wall_time
from hyphal.dht.node import DhtConfig, DhtNode
from hyphal.dht.operation import Operation
from hyphal.dht.record_store import RecordStore
from hyphal.dht.records import Addr
from hyphal.dht.udp import UdpDht
from hyphal.signing import KeyPair
from hyphal.sim.streams import StreamNetwork

T = TypeVar("T")


class SimDht(UdpDht):
    """A DHT node whose datagrams travel the simulated network. See the module docstring."""

    def __init__(
        self,
        network: StreamNetwork,
        keypair: KeyPair,
        *,
        host: str,
        port: int,
        seeds: Sequence[Addr] = (),
        addresses: Sequence[Addr] | None = None,
        state_path: Any = None,
        store: RecordStore | None = None,
        config: DhtConfig | None = None,
        rng: random.Random | None = None,
        bootstrap_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            keypair,
            host=host,
            port=port,
            seeds=seeds,
            addresses=addresses,
            state_path=state_path,
            store=store,
            config=config,
            bootstrap_timeout=bootstrap_timeout,
        )
        self._network = network
        self._rng = rng or random.Random(keypair.public_key)
        self._bound: Addr = (host, port)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._running = False

    async def __aenter__(self) -> SimDht:
        self._node = DhtNode(
            self.keypair,
            self._addresses or [self._bound],
            now=wall_time(),
            config=self._config,
            store=self._store,
            rng=self._rng,
        )
        self._network.datagram_ports[self._bound] = self._received
        self._running = True
        if self._bootstrap and (self.seeds or self._saved_records()):
            with anyio.move_on_after(self._bootstrap_timeout):
                await self.bootstrap()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._node is None:
            return None
        try:
            self.save_state()
        finally:
            self.stop()
            self.node.close()
            self._node = None
        return None

    def stop(self) -> None:
        """Go silent at once: no more receiving, sending or timers."""
        self._running = False
        if self._network.datagram_ports.get(self._bound) == self._received:
            del self._network.datagram_ports[self._bound]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None

    async def _flush(self) -> None:
        self._send()

    def _send(self) -> None:
        if not self._running or self._node is None:
            return
        for addr, data in self._node.datagrams_to_send():
            self._network.send_datagram(self._bound, addr, data)
        deadline = self._node.get_timer()
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            loop = asyncio.get_running_loop()
            self._timer_at = deadline
            self._timer = loop.call_at(loop.time() + max(0.0, deadline - wall_time()), self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        if self._running and self._node is not None:
            self._node.timer_fired(wall_time())
            self._send()

    def _received(self, src: Addr, data: bytes) -> None:
        if self._running and self._node is not None:
            self._node.datagram_received(wall_time(), src, data)
            self._send()

    async def run(self, start: Callable[[DhtNode, float], Operation[T]], timeout: float | None = None) -> T:
        op = start(self.node, wall_time())
        done = anyio.Event()
        op.on_done(lambda _: done.set())
        self._send()
        with anyio.fail_after(timeout):
            await done.wait()
        return op.result()


__all__ = ["SimDht"]
