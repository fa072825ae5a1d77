"""Run a :class:`~hyphal.mainline.node.MainlineNode` on a UDP socket, with anyio.

``async with MainlineUdp(host="0.0.0.0", port=6881, routers=[...]) as dht``
binds the socket, chooses our id (BEP 42's for a public address, random
otherwise), resolves the routers' names, starts the receive and timer tasks
and bootstraps. ``read_only=None`` means BEP 43 read-only unless we are on
a public address. Every operation of the node is an ``async`` method that
waits for its :class:`~hyphal.dht.operation.Operation`. The clock is
``time.time()``, read here only.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TypeVar

import anyio
import anyio.abc

from hyphal.dht.operation import Operation
from hyphal.errors import InvalidAddress, InvalidInput
from hyphal.mainline.config import KrpcConfig
from hyphal.mainline.core import LookupResult
from hyphal.mainline.ids import choose_node_id, is_public
from hyphal.mainline.items import ImmutableItem, MutableItem
from hyphal.mainline.messages import MAX_DATAGRAM_SIZE, Addr
from hyphal.mainline.node import MainlineNode, PeersResult, PutResult
from hyphal.net.address import parse_address
from hyphal.signing import KeyPair

log = logging.getLogger("hyphal.mainline")
T = TypeVar("T")
RECEIVE_BATCH = 64


class MainlineUdp:
    """A mainline DHT node on a UDP socket. See the module docstring."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        routers: Sequence[str] = (),
        config: KrpcConfig | None = None,
        read_only: bool | None = None,
        node_id: bytes | None = None,
        public_ip: str | None = None,
        bootstrap_timeout: float = 20.0,
    ) -> None:
        """``public_ip``: the address peers see us at, if known (say the node's advertised one),
        for BEP 42 and the read-only default when we bind a wildcard address."""
        self._host = host
        self._port = port
        self._routers = list(routers)
        self._config = config or KrpcConfig()
        self._read_only = read_only
        self._node_id = node_id
        self._public_ip = public_ip
        self._bootstrap_timeout = bootstrap_timeout
        self._node: MainlineNode | None = None
        self._sock: socket.socket | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._wake = anyio.Event()
        self.send_errors = 0

    @property
    def node(self) -> MainlineNode:
        if self._node is None:
            raise RuntimeError("MainlineUdp is not running")
        return self._node

    @property
    def address(self) -> Addr:
        assert self._sock is not None
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    async def __aenter__(self) -> MainlineUdp:
        infos = await anyio.getaddrinfo(self._host, self._port, type=socket.SOCK_DGRAM)
        if not infos:
            raise InvalidInput(f"cannot resolve {self._host!r}")
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.bind(sockaddr)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        host = self._public_ip or self.address[0]
        rng = random.SystemRandom()
        read_only = self._read_only if self._read_only is not None else not is_public(host)
        config = replace(self._config, read_only=read_only)
        node_id = self._node_id or choose_node_id(host, rng)
        self._node = MainlineNode(node_id, now=time.time(), config=config, rng=rng)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._receive_loop)
        self._tg.start_soon(self._timer_loop)
        if self._routers:
            try:
                with anyio.move_on_after(self._bootstrap_timeout):
                    await self.bootstrap()
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tg is None:
            return
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        self._tg = None
        assert self._sock is not None
        self._sock.close()
        self.node.close()

    async def _flush(self) -> None:
        assert self._sock is not None
        for addr, data in self.node.datagrams_to_send():
            try:
                self._sock.sendto(data, addr)
            except BlockingIOError:
                await anyio.wait_writable(self._sock)
                try:
                    self._sock.sendto(data, addr)
                except OSError:
                    self.send_errors += 1
            except OSError as e:
                self.send_errors += 1
                log.debug("mainline send to %s failed: %s", addr, e)
        self._wake.set()

    async def _receive_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            await anyio.wait_readable(sock)
            now = time.time()
            for _ in range(RECEIVE_BATCH):
                try:
                    data, addr = sock.recvfrom(MAX_DATAGRAM_SIZE + 1)
                except BlockingIOError:
                    break
                except OSError as e:
                    log.debug("mainline receive failed: %s", e)
                    continue
                self.node.datagram_received(now, (str(addr[0]), int(addr[1])), data)
            await self._flush()

    async def _timer_loop(self) -> None:
        while True:
            deadline = self.node.get_timer()
            wait = 3600.0 if deadline is None else deadline - time.time()
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self._wake.wait()
            self._wake = anyio.Event()
            now = time.time()
            if deadline is not None and now >= deadline - 0.001:
                self.node.timer_fired(max(now, deadline))
            await self._flush()

    async def run(
        self, start: Callable[[MainlineNode, float], Operation[T]], timeout: float | None = 60.0
    ) -> T:
        """Start an operation on the node and wait for its result."""
        op = start(self.node, time.time())
        done = anyio.Event()
        op.on_done(lambda _: done.set())
        await self._flush()
        with anyio.fail_after(timeout):
            await done.wait()
        return op.result()

    # -- operations ---------------------------------------------------------------------------

    async def resolve(self, routers: Sequence[str]) -> list[Addr]:
        """``host:port`` strings as IP addresses (names that do not resolve are logged and skipped)."""
        out: list[Addr] = []
        for text in routers:
            try:
                host, port = parse_address(text)
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM, family=socket.AF_INET)
            except (InvalidAddress, OSError) as e:
                log.info("mainline router %s skipped: %s", text, e)
                continue
            out.extend((str(info[4][0]), int(info[4][1])) for info in infos[:2])
        return list(dict.fromkeys(out))

    async def bootstrap(self, routers: Sequence[str] | None = None) -> int:
        addrs = await self.resolve(self._routers if routers is None else routers)
        return await self.run(lambda n, now: n.bootstrap(now, addrs))

    async def ping(self, addr: Addr) -> bool:
        def start(n: MainlineNode, now: float) -> Operation[bool]:
            op: Operation[bool] = Operation("mainline ping", now)
            n.query(
                now,
                addr,
                "ping",
                {},
                on_reply=lambda t, r: op._finish(t, True),
                on_fail=lambda t, code: op._finish(t, False),
            )
            return op

        return await self.run(start)

    async def find_node(self, target: bytes) -> LookupResult:
        return await self.run(lambda n, now: n.find_node(now, target))

    async def get_peers(self, info_hash: bytes) -> PeersResult:
        return await self.run(lambda n, now: n.get_peers(now, info_hash))

    async def announce_peer(self, info_hash: bytes, port: int | None = None) -> PutResult:
        return await self.run(lambda n, now: n.announce_peer(now, info_hash, port))

    async def get_immutable(self, target: bytes) -> ImmutableItem | None:
        return await self.run(lambda n, now: n.get_immutable(now, target))

    async def put_immutable(self, value: object) -> PutResult:
        return await self.run(lambda n, now: n.put_immutable(now, value))

    async def get_mutable(self, public_key: bytes, salt: bytes = b"") -> MutableItem | None:
        return await self.run(lambda n, now: n.get_mutable(now, public_key, salt))

    async def put_mutable(
        self,
        keypair: KeyPair,
        value: object,
        *,
        salt: bytes = b"",
        seq: int | None = None,
        cas: int | None = None,
    ) -> PutResult:
        return await self.run(lambda n, now: n.put_mutable(now, keypair, value, salt=salt, seq=seq, cas=cas))

    async def put_item(self, item: MutableItem) -> PutResult:
        return await self.run(lambda n, now: n.put_item(now, item))


__all__ = ["MainlineUdp"]
