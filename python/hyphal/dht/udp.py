"""Run a :class:`~hyphal.dht.node.DhtNode` on a real UDP socket, with anyio.

``async with UdpDht(keypair, host="0.0.0.0", port=7400, seeds=[...]) as dht``
binds the socket, starts the receive and timer tasks, and bootstraps from
the routing table saved at ``state_path`` (if any) and the seed list. On
exit it saves the routing table again. Every operation of the node is an
``async`` method here that waits for the node's
:class:`~hyphal.dht.operation.Operation` to end.

The node's clock is ``time.time()``; the driver is the only place that
reads it.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc

from hyphal.dht.messages import MAX_DATAGRAM_SIZE
from hyphal.dht.node import DhtConfig, DhtNode
from hyphal.dht.operation import LookupResult, Operation, PutResult
from hyphal.dht.record_store import RecordStore
from hyphal.dht.records import Addr, NodeRecord
from hyphal.dht.routing import RoutingTable
from hyphal.errors import DecodeError, InvalidInput
from hyphal.files import write_atomically
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair

log = logging.getLogger(__name__)
T = TypeVar("T")
SAVE_INTERVAL = 600.0
"""The routing table is saved this often (seconds), after bootstrapping and on exit."""
RECEIVE_BATCH = 64
"""Datagrams read per wake-up of the receive task at most."""


class UdpDht:
    """A DHT node on a UDP socket. See the module docstring."""

    def __init__(
        self,
        keypair: KeyPair,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seeds: Sequence[Addr] = (),
        addresses: Sequence[Addr] | None = None,
        state_path: str | os.PathLike[str] | None = None,
        store: RecordStore | None = None,
        config: DhtConfig | None = None,
        bootstrap: bool = True,
        bootstrap_timeout: float = 30.0,
    ) -> None:
        self.keypair = keypair
        self._host = host
        self._port = port
        self.seeds = list(seeds)
        self._addresses = None if addresses is None else list(addresses)
        self.state_path = None if state_path is None else Path(state_path)
        self._store = store
        self._config = config
        self._bootstrap = bootstrap
        self._bootstrap_timeout = bootstrap_timeout
        self._node: DhtNode | None = None
        self._sock: socket.socket | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._wake = anyio.Event()
        self._send_wait = anyio.Lock()
        self._scopes: list[anyio.CancelScope] = []
        self._sleeping_until: float | None = None
        self._saved_at = time.time()
        self.send_errors = 0

    @property
    def _raw(self) -> socket.socket:
        assert self._sock is not None
        return self._sock

    @property
    def node(self) -> DhtNode:
        if self._node is None:
            raise RuntimeError("UdpDht is not running")
        return self._node

    @property
    def address(self) -> Addr:
        """The address peers reach us at (the first one in our node record)."""
        return self.node.record.addresses[0]

    async def __aenter__(self) -> UdpDht:
        self._sock = await _bind_udp(self._host, self._port)
        local = self._sock.getsockname()
        bound: Addr = (str(local[0]), int(local[1]))
        if self._addresses is None and bound[0] in ("0.0.0.0", "::"):
            self._sock.close()
            raise InvalidInput("bound to a wildcard address: pass the addresses peers reach us at")
        addresses = self._addresses or [bound]
        self._node = DhtNode(
            self.keypair,
            addresses,
            now=time.time(),
            config=self._config,
            store=self._store,
            rng=random.SystemRandom(),
        )
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._stoppable, self._receive_loop)
        self._tg.start_soon(self._stoppable, self._timer_loop)
        if self._bootstrap and (self.seeds or self._saved_records()):
            try:
                with anyio.move_on_after(self._bootstrap_timeout):
                    await self.bootstrap()
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._tg is None:
            return None  # already closed
        try:
            self.save_state()
        finally:
            assert self._tg is not None
            assert self._sock is not None
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._sock.close()
            self.node.close()
            self._tg = None
        return None

    # -- persistence ------------------------------------------------------------------------

    def _saved_records(self) -> list[NodeRecord]:
        if self.state_path is None or not self.state_path.exists():
            return []
        try:
            return RoutingTable.decode_records(self.state_path.read_bytes())
        except (OSError, DecodeError) as e:
            log.warning("ignoring the saved routing table %s: %s", self.state_path, e)
            return []

    def save_state(self) -> None:
        """Write the routing table to ``state_path`` (atomically)."""
        if self.state_path is None or self._node is None:
            return
        write_atomically(self.state_path, self._node.routing_state())

    # -- the loops ---------------------------------------------------------------------------

    async def _flush(self) -> None:
        # Straight to the non-blocking socket: a UDP send completes at once unless the kernel's
        # buffer is full, and then we wait until it drains. (Through anyio's socket each datagram
        # cost a lock and two checkpoints, most of a small swarm's CPU in one process.)
        raw = self._raw
        for addr, data in self.node.datagrams_to_send():
            while True:
                try:
                    raw.sendto(data, addr)
                    break
                except BlockingIOError:
                    async with self._send_wait:  # anyio lets one task at a time wait on a socket
                        await anyio.wait_writable(raw)
                except OSError as e:
                    self.send_errors += 1
                    log.debug("send to %s:%d failed: %s", addr[0], addr[1], e)
                    break
        # Wake the timer task only if it sleeps and the node now wants a timer earlier than that. (When
        # it is not sleeping, it reads the next deadline afresh before it sleeps again.)
        deadline = self.node.get_timer()
        if self._sleeping_until is not None and deadline is not None and deadline < self._sleeping_until:
            self._wake.set()

    async def _stoppable(self, loop: Callable[[], Awaitable[None]]) -> None:
        with anyio.CancelScope() as scope:
            self._scopes.append(scope)
            await loop()

    def stop(self) -> None:
        """Go silent at once, as if the host died: no more receiving, sending or timers.

        The socket stays bound (so peers see silence, not an ICMP error) until the context exits.
        """
        for scope in self._scopes:
            scope.cancel()

    async def _receive_loop(self) -> None:
        raw = self._raw
        node = self.node
        while True:
            await anyio.wait_readable(raw)
            # Everything queued is read in one go (up to a batch, so timers still get their turn),
            # and what the node answers goes out once for the whole batch.
            now = time.time()
            for _ in range(RECEIVE_BATCH):
                try:
                    data, addr = raw.recvfrom(MAX_DATAGRAM_SIZE + 1)  # one byte over: oversize shows
                except BlockingIOError:
                    break
                except OSError as e:  # e.g. ICMP port unreachable surfaced on some platforms
                    log.debug("receive failed: %s", e)
                    continue
                node.datagram_received(now, (str(addr[0]), int(addr[1])), data)
            await self._flush()

    async def _timer_loop(self) -> None:
        while True:
            deadline = self.node.get_timer()
            wait = 3600.0 if deadline is None else deadline - time.time()
            slept_out = wait <= 0
            if wait > 0:
                self._sleeping_until = time.time() + wait
                with anyio.move_on_after(wait) as scope:
                    await self._wake.wait()
                slept_out = scope.cancelled_caught
            self._sleeping_until = None
            self._wake = anyio.Event()
            now = time.time()
            # The event loop may wake us up to a clock tick early; the deadline has come all the same.
            self.node.timer_fired(max(now, deadline) if slept_out and deadline is not None else now)
            if now - self._saved_at >= SAVE_INTERVAL:
                self._saved_at = now
                try:
                    self.save_state()
                except OSError as e:
                    log.warning("could not save the routing table to %s: %s", self.state_path, e)
            await self._flush()

    async def run(self, start: Callable[[DhtNode, float], Operation[T]], timeout: float | None = None) -> T:
        """Start an operation on the node and wait for its result."""
        op = start(self.node, time.time())
        done = anyio.Event()
        op.on_done(lambda _: done.set())
        await self._flush()
        with anyio.fail_after(timeout):
            await done.wait()
        return op.result()

    # -- operations ---------------------------------------------------------------------------

    async def bootstrap(self, seeds: Sequence[Addr] | None = None) -> LookupResult:
        records = self._saved_records()
        addrs = self.seeds if seeds is None else list(seeds)
        result = await self.run(lambda n, now: n.bootstrap(now, addrs, records))
        self.save_state()
        return result

    async def republish(self, timeout: float = 30.0) -> None:
        """Put every record this node publishes again now and wait until those puts end
        (see :meth:`RecordClient.republish`)."""
        ops = self.node.republish(time.time())
        left = len(ops)
        done = anyio.Event()

        def one(_: object) -> None:
            nonlocal left
            left -= 1
            if left == 0:
                done.set()

        for op in ops:
            op.on_done(one)
        await self._flush()
        if ops:
            with anyio.move_on_after(timeout):
                await done.wait()

    async def find_node(self, target: bytes) -> LookupResult:
        return await self.run(lambda n, now: n.find_node(now, target))

    async def announce(
        self, keypair: KeyPair, topic: bytes, addresses: Sequence[Addr], ttl: int = 1200
    ) -> PutResult:
        return await self.run(lambda n, now: n.announce(now, keypair, topic, addresses, ttl))

    async def lookup(self, topic: bytes) -> LookupResult:
        return await self.run(lambda n, now: n.lookup(now, topic))

    async def put_immutable(self, value: bytes) -> PutResult:
        return await self.run(lambda n, now: n.put_immutable(now, value))

    async def get_immutable(self, key: bytes) -> bytes | None:
        return (await self.run(lambda n, now: n.get_immutable(now, key))).value

    async def put_mutable(
        self, keypair: KeyPair, value: bytes, *, salt: bytes = b"", cas: int | None = None
    ) -> PutResult:
        return await self.run(lambda n, now: n.put_mutable(now, keypair, value, salt=salt, cas=cas))

    async def put_signed(self, signed: SignedValue, *, cas: int | None = None) -> PutResult:
        """Store a value signed elsewhere (a member advert, say) and republish it."""
        return await self.run(lambda n, now: n.put_signed(now, signed, cas=cas))

    async def get_mutable(self, public_key: bytes, salt: bytes = b"") -> LookupResult:
        return await self.run(lambda n, now: n.get_mutable(now, public_key, salt))

    async def ping(self, addr: Addr) -> Any:
        return await self.run(lambda n, now: n.ping(now, addr))


async def _bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` (the driver reads and writes it directly,
    waiting on readiness with anyio: one wake-up reads a whole batch of datagrams)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise InvalidInput(f"cannot resolve {host!r}")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


__all__ = ["UdpDht"]
