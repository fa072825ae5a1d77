"""A simulated network of byte streams, in virtual time: the sim's :class:`~hyphal.net.transport.Transport`.

:class:`StreamNetwork` holds hosts (by IP) and the streams between them;
:meth:`StreamNetwork.transport` gives one host's
:class:`SimTransport` (``dial``/``listen``, the interface every transport
implements). It runs on the running :class:`~hyphal.sim.clock.VirtualLoop`:
a chunk written at ``t`` is delivered by a loop timer at
``t + latency + size / bandwidth`` (never before the chunk written before it:
a stream is in order, as TCP is). The model, and what it leaves out:

- latency: a base plus a spread by each host's position on a unit square
  (drawn from the network's seeded ``random.Random``), plus seeded jitter;
  each direction of a stream is a link of ``bandwidth`` bytes per second.
- flow control: a writer may have at most ``window`` bytes sent but not yet
  read by the other side; ``send`` waits beyond that (TCP's window).
- partitions (:meth:`StreamNetwork.partition`): chunks written across one are
  held, as TCP would keep retransmitting, and delivered in order when the
  partition heals. Meanwhile the window fills and writes stall, and no bytes
  arrive, so a :class:`~hyphal.net.connection.Connection` on either side
  closes on its idle timeout, as it would on TCP; a dial across a partition
  gets no answer until its caller's timeout.
- crashes (:meth:`StreamNetwork.crash`): the process dies and its OS resets
  its connections: each of its streams breaks at once, the other ends break
  one latency later (a reset), its listeners vanish, and a dial to it is
  refused. (``silent=True`` models a host that drops off the network with no
  reset: the other ends see silence, as in a partition.)
- no loss, reordering or congestion within a stream (TCP hides them);
  connection setup costs one round trip.

It carries datagrams too (:meth:`StreamNetwork.send_datagram`, for the
DHT's driver in :mod:`hyphal.sim.dht_driver`): one latency, optional loss,
dropped across a partition or to a host that is down.

:attr:`StreamNetwork.trace_digest` is a BLAKE3 over every delivered chunk
(virtual time, both addresses, the bytes) and every connect, refusal and
reset. Under a virtual loop every byte is a function of the seed (see
:mod:`hyphal.sim.clock` on entropy), so the digest is the same on every run
with the same seed and scenario, in this process or another (string
hashing, ``PYTHONHASHSEED``, plays no part). When two runs part,
``StreamNetwork(keep_trace=True)`` keeps the events as a list
(:attr:`StreamNetwork.trace`): the first that differs shows where.
"""

from __future__ import annotations

import asyncio
import errno
import math
import random
import struct
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from hyphal import _core
from hyphal.hashing import blake3
from hyphal.net.transport import Acceptor, HostPort, TransportAttribute

_F64 = struct.Struct("<d")
_DATA, _EOF, _CONNECT, _REFUSED, _RESET, _DATAGRAM = b"D", b"F", b"C", b"X", b"R", b"U"
DatagramReceiver = Callable[[HostPort, bytes], None]
SYN_RETRY = 1.0
"""Seconds between connection attempts to an unreachable host (a SYN retransmission, simplified)."""


@dataclass(eq=False)
class NetHost:
    """One machine on the network: its address, place, and what runs on it."""

    ip: str
    x: float
    y: float
    alive: bool = True
    group: int = 0
    """Partition group; hosts in different groups cannot reach each other."""
    listeners: dict[int, SimListener] = field(default_factory=dict)
    streams: set[SimStream] = field(default_factory=set)
    next_port: int = 40000


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


class SimStream(anyio.abc.ByteStream):
    """One end of a simulated TCP connection."""

    def __init__(self, network: StreamNetwork, host: NetHost, local: HostPort, remote: HostPort) -> None:
        self._network = network
        self.host = host
        self.local = local
        self.remote = remote
        self.peer: SimStream | None = None
        self._buffer: deque[bytes] = deque()
        self._eof = False
        self._broken = False
        self._closed = False
        self._sent_eof = False
        self._readable: anyio.Event | None = None
        self._writable: anyio.Event | None = None
        self.unread = 0
        """Bytes this end sent that the other end has not read yet (flow control)."""
        self._link_free_at = -math.inf
        self._last_arrival = -math.inf
        self._held: list[bytes | None] = []
        """Chunks written while a partition separates the ends (None: the FIN)."""

    # -- the ByteStream interface ------------------------------------------------------------

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            TransportAttribute.remote_address: lambda: self.remote,
            TransportAttribute.local_address: lambda: self.local,
            anyio.abc.SocketAttribute.remote_address: lambda: self.remote,
            anyio.abc.SocketAttribute.local_address: lambda: self.local,
        }

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while not self._buffer:
            self._check_usable()
            if self._eof:
                raise anyio.EndOfStream
            self._readable = anyio.Event()
            await self._readable.wait()
        chunk = self._buffer.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            self._buffer.appendleft(rest)
        if self.peer is not None:
            self.peer._acknowledged(len(chunk))
        await anyio.lowlevel.checkpoint()
        return chunk

    async def send(self, item: bytes) -> None:
        self._check_usable()
        if self._sent_eof:
            raise anyio.ClosedResourceError
        while self.unread >= self._network.window:
            self._writable = anyio.Event()
            await self._writable.wait()
            self._check_usable()
        if item:
            self.unread += len(item)
            self._network._transmit(self, bytes(item))
        await anyio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        self._check_usable()
        if not self._sent_eof:
            self._sent_eof = True
            self._network._transmit(self, None)
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        if not self._closed:
            if not self._broken and not self._sent_eof and self.host.alive:
                self._sent_eof = True
                self._network._transmit(self, None)
            self._closed = True
            self.host.streams.discard(self)
            self._wake()
        await anyio.lowlevel.checkpoint()

    # -- the network's side -------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._broken:
            raise anyio.BrokenResourceError(f"connection to {self.remote[0]}:{self.remote[1]} reset")

    def _wake(self) -> None:
        for event in (self._readable, self._writable):
            if event is not None:
                event.set()

    def _acknowledged(self, size: int) -> None:
        self.unread -= size
        if self._writable is not None and self.unread < self._network.window:
            self._writable.set()

    def _arrive(self, chunk: bytes | None) -> None:
        if self._broken:
            return
        if self._closed or not self.host.alive:
            # Data for a socket that is gone: its OS answers with a reset.
            if chunk is not None and self.host.alive and self.peer is not None:
                self._network._reset_later(self.peer, self.host)
            return
        if chunk is None:
            self._eof = True
        else:
            self._buffer.append(chunk)
        self._wake()

    def _break(self) -> None:
        if not self._broken and not self._closed:
            self._broken = True
            self.host.streams.discard(self)
            self._wake()


class SimListener:
    """What :meth:`SimTransport.listen` returns: one acceptor, on one address."""

    def __init__(self, network: StreamNetwork, host: NetHost, port: int) -> None:
        self._network = network
        self._host = host
        self.port = port
        self._send, self._receive = anyio.create_memory_object_stream[SimStream](math.inf)

    @property
    def addresses(self) -> list[HostPort]:
        return [(self._host.ip, self.port)]

    @property
    def acceptors(self) -> list[Acceptor]:
        return [self]

    async def accept(self) -> anyio.abc.ByteStream:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise anyio.ClosedResourceError from None

    def _offer(self, stream: SimStream) -> bool:
        try:
            self._send.send_nowait(stream)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def _close(self) -> None:
        if self._host.listeners.get(self.port) is self:
            del self._host.listeners[self.port]
        self._send.close()
        while True:  # connections nobody will accept: reset
            try:
                stream = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            stream._break()
            if stream.peer is not None:
                self._network._reset_later(stream.peer, self._host)

    async def aclose(self) -> None:
        self._close()
        self._receive.close()
        await anyio.lowlevel.checkpoint()


class SimTransport:
    """The transport of one host of a :class:`StreamNetwork`."""

    name = "sim"

    def __init__(self, network: StreamNetwork, host: NetHost) -> None:
        self._network = network
        self.host = host

    async def dial(self, host: str, port: int) -> anyio.abc.ByteStream:
        return await self._network._dial(self.host, host, port)

    async def listen(self, host: str, port: int) -> SimListener:
        if host not in (self.host.ip, "0.0.0.0", "::"):
            raise OSError(errno.EADDRNOTAVAIL, f"{host} is not an address of {self.host.ip}")
        if not self.host.alive:
            raise OSError(errno.ENETDOWN, f"{self.host.ip} is down")
        if port == 0:
            port = self._network._ephemeral_port(self.host)
        elif port in self.host.listeners:
            raise OSError(errno.EADDRINUSE, f"{self.host.ip}:{port} is in use")
        listener = SimListener(self._network, self.host, port)
        self.host.listeners[port] = listener
        await anyio.lowlevel.checkpoint()
        return listener


class StreamNetwork:
    """Hosts and the byte streams between them. See the module docstring."""

    def __init__(
        self,
        seed: int,
        *,
        base_latency: float = 0.005,
        spread_latency: float = 0.05,
        jitter: float = 0.001,
        bandwidth: float = 50e6,
        window: int = 4 * 1024 * 1024,
        loss: float = 0.0,
        keep_trace: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.base_latency = base_latency
        self.spread_latency = spread_latency
        self.jitter = jitter
        self.bandwidth = bandwidth
        self.window = window
        self.loss = loss
        """Probability that a datagram is lost (streams lose nothing)."""
        self.hosts: dict[str, NetHost] = {}
        self.datagram_ports: dict[HostPort, DatagramReceiver] = {}
        """Who receives datagrams sent to each address (see :meth:`send_datagram`)."""
        self._hasher = _core.Hasher()
        self.trace: list[tuple[str, float, str, int, str]] | None = [] if keep_trace else None
        """With ``keep_trace``: each event the digest covers, as (kind, virtual time, route, size,
        the bytes' BLAKE3 prefix); for finding where two runs first part (a debugging aid)."""
        self.delivered_bytes = 0
        self.connects = 0
        self.resets = 0

    # -- hosts and faults -----------------------------------------------------------------------

    def add_host(self, ip: str) -> NetHost:
        if ip in self.hosts:
            raise ValueError(f"{ip} is already on the network")
        host = self.hosts[ip] = NetHost(ip, self.rng.random(), self.rng.random())
        return host

    def transport(self, ip: str) -> SimTransport:
        """The transport of host ``ip`` (added to the network if new)."""
        host = self.hosts.get(ip) or self.add_host(ip)
        return SimTransport(self, host)

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Split the network: hosts (by IP) of different groups cannot reach each other;
        hosts in no group form one more group of their own (group 0)."""
        for number, group in enumerate(groups, start=1):
            for ip in group:
                self.hosts[ip].group = number

    def heal(self) -> None:
        """End every partition: what was written across one is delivered now, in order."""
        for host in self.hosts.values():
            host.group = 0
        for host in self.hosts.values():
            for stream in sorted(host.streams, key=lambda s: (s.local, s.remote)):
                held, stream._held = stream._held, []
                for chunk in held:
                    self._transmit(stream, chunk)

    def crash(self, ip: str, *, silent: bool = False) -> None:
        """Host ``ip`` dies: its streams break and its listeners vanish (see the module docstring)."""
        host = self.hosts[ip]
        host.alive = False
        self._record(_RESET, (ip, 0), (ip, 0), b"")
        for listener in list(host.listeners.values()):
            listener._close()
        for stream in sorted(host.streams, key=lambda s: (s.local, s.remote)):
            stream._break()
            if not silent and stream.peer is not None:
                self._reset_later(stream.peer, host)
        host.streams.clear()

    def restart(self, ip: str) -> None:
        """Host ``ip`` is up again (with no listeners or streams until its program makes them)."""
        self.hosts[ip].alive = True

    def reachable(self, a: NetHost, b: NetHost) -> bool:
        return a.alive and b.alive and a.group == b.group

    def latency(self, a: NetHost, b: NetHost) -> float:
        distance = math.hypot(a.x - b.x, a.y - b.y)
        return self.base_latency + self.spread_latency * distance + self.rng.random() * self.jitter

    @property
    def trace_digest(self) -> str:
        """BLAKE3 over every delivered chunk, connect, refusal and reset (see the module docstring)."""
        return self._hasher.finalize().hex()

    # -- datagrams -------------------------------------------------------------------------------

    def send_datagram(self, src: HostPort, dst: HostPort, data: bytes) -> None:
        """Deliver ``data`` to whoever receives on ``dst`` one latency from now, if it can get there."""
        source, target = self.hosts.get(src[0]), self.hosts.get(dst[0])
        if source is None or target is None or not self.reachable(source, target):
            return
        if self.loss and self.rng.random() < self.loss:
            return
        loop = _loop()

        def deliver() -> None:
            receiver = self.datagram_ports.get(dst)
            if receiver is not None and self.reachable(source, target):
                self._record(_DATAGRAM, src, dst, data)
                receiver(src, data)

        loop.call_at(loop.time() + self.latency(source, target), deliver)

    # -- inside ----------------------------------------------------------------------------------

    def _record(self, kind: bytes, src: HostPort, dst: HostPort, data: bytes) -> None:
        now = _loop().time()
        head = f"{src[0]}:{src[1]}>{dst[0]}:{dst[1]}".encode()
        self._hasher.update(kind + _F64.pack(now) + len(head).to_bytes(2, "little") + head)
        self._hasher.update(len(data).to_bytes(8, "little") + data)
        if self.trace is not None:
            self.trace.append((kind.decode(), now, head.decode(), len(data), blake3(data).hex()[:16]))

    def _ephemeral_port(self, host: NetHost) -> int:
        while host.next_port in host.listeners:
            host.next_port += 1
        port = host.next_port
        host.next_port = 40000 + (host.next_port - 40000 + 1) % 20000
        return port

    async def _dial(self, src: NetHost, ip: str, port: int) -> SimStream:
        if not src.alive:
            raise OSError(errno.ENETDOWN, f"{src.ip} is down")
        dst = self.hosts.get(ip)
        if dst is None:
            raise OSError(errno.EHOSTUNREACH, f"no route to {ip}")
        while not self.reachable(src, dst):  # the SYN is lost; retry as TCP does
            await anyio.sleep(SYN_RETRY)
            if not src.alive:
                raise OSError(errno.ENETDOWN, f"{src.ip} is down")
        forward = self.latency(src, dst)
        await anyio.sleep(forward)
        listener = dst.listeners.get(port)
        local = (src.ip, self._ephemeral_port(src))
        if listener is None or not dst.alive:
            await anyio.sleep(self.latency(dst, src))
            self._record(_REFUSED, local, (ip, port), b"")
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"{ip}:{port} refused the connection")
        ours = SimStream(self, src, local, (ip, port))
        theirs = SimStream(self, dst, (ip, port), local)
        ours.peer, theirs.peer = theirs, ours
        src.streams.add(ours)
        dst.streams.add(theirs)
        if not listener._offer(theirs):
            ours._break()
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"{ip}:{port} refused the connection")
        self.connects += 1
        self._record(_CONNECT, local, (ip, port), b"")
        await anyio.sleep(self.latency(dst, src))
        ours._check_usable()
        return ours

    def _transmit(self, stream: SimStream, chunk: bytes | None) -> None:
        peer = stream.peer
        if peer is None or not stream.host.alive:
            return
        if stream.host.group != peer.host.group:
            stream._held.append(chunk)
            return
        loop = _loop()
        now = loop.time()
        size = 0 if chunk is None else len(chunk)
        start = max(now, stream._link_free_at)
        stream._link_free_at = start + size / self.bandwidth
        # Strictly after the chunk before: loop timers due at the same instant may run in any order.
        arrival = max(
            stream._link_free_at + self.latency(stream.host, peer.host),
            math.nextafter(stream._last_arrival, math.inf),
        )
        stream._last_arrival = arrival
        loop.call_at(arrival, self._deliver, stream, peer, chunk)

    def _deliver(self, src: SimStream, dst: SimStream, chunk: bytes | None) -> None:
        if dst.host.alive and not dst._broken and not dst._closed:
            if chunk is None:
                self._record(_EOF, src.local, dst.local, b"")
            else:
                self.delivered_bytes += len(chunk)
                self._record(_DATA, src.local, dst.local, chunk)
        dst._arrive(chunk)

    def _reset_later(self, stream: SimStream, by: NetHost) -> None:
        """``stream`` gets a reset from ``by``'s OS one latency from now (unless a partition is between)."""
        if by.group != stream.host.group:
            return
        loop = _loop()

        def reset() -> None:
            if not stream._broken and not stream._closed:
                self.resets += 1
                self._record(_RESET, stream.remote, stream.local, b"")
                stream._break()

        loop.call_at(loop.time() + self.latency(by, stream.host), reset)


__all__ = ["SYN_RETRY", "NetHost", "SimListener", "SimStream", "SimTransport", "StreamNetwork"]
