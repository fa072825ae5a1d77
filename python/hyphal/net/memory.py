"""An in-memory transport: byte streams between tasks of one event loop, for tests.

A :class:`MemoryNetwork` is a registry of listeners by ``(host, port)``; a
:class:`MemoryTransport` is one host's view of it. Its streams behave like
TCP's for the layers above (see :mod:`hyphal.net.transport`): each direction
is a bounded buffer, so a peer that stops reading stops the writer and flow
control is exercised as over a socket; ``send_eof`` and closing end the
other side's reads; writing to a side that closed raises
``anyio.BrokenResourceError``; dialling an address nobody listens on raises
``ConnectionRefusedError``. Nothing is delayed or lost: the simulator's
network (:mod:`hyphal.sim`) is the place for latency and faults.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from typing_extensions import Buffer

from hyphal.errors import InvalidInput
from hyphal.net.address import format_address
from hyphal.net.transport import Acceptor, HostPort, TransportAttribute

DEFAULT_BUFFER_SIZE = 64 * 1024
"""Bytes each direction of a stream holds unread before the writer waits."""
DEFAULT_BACKLOG = 128
"""Dialled streams a listener holds unaccepted; more are refused."""

_WILDCARDS = ("0.0.0.0", "::", "")
_FIRST_EPHEMERAL = 49152
_PORTS = 65536


class _Pipe:
    """One direction of a stream: bytes one side wrote and the other has not read."""

    def __init__(self, capacity: int) -> None:
        self.buffer = bytearray()
        self.capacity = capacity
        self.eof = False
        """The writer sent its end of stream (or closed)."""
        self.reader_gone = False
        """The reader closed: what is written is lost, so writing fails."""
        self.readable = anyio.Event()
        self.writable = anyio.Event()

    def wake(self) -> None:
        self.readable.set()
        self.writable.set()

    async def wait_readable(self) -> None:
        if self.readable.is_set():
            self.readable = anyio.Event()
        await self.readable.wait()

    async def wait_writable(self) -> None:
        if self.writable.is_set():
            self.writable = anyio.Event()
        await self.writable.wait()


class MemoryStream(anyio.abc.ByteStream):
    """One end of a connected pair; made by :meth:`MemoryTransport.dial` and its listeners."""

    def __init__(
        self,
        local: HostPort,
        remote: HostPort,
        incoming: _Pipe,
        outgoing: _Pipe,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._local = local
        self._remote = remote
        self._incoming = incoming
        self._outgoing = outgoing
        self._on_close = on_close
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStream({format_address(self._local)} -> {format_address(self._remote)})"

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            TransportAttribute.local_address: lambda: self._local,
            TransportAttribute.remote_address: lambda: self._remote,
        }

    async def receive(self, max_bytes: int = 65536) -> bytes:
        # A checkpoint first, as a socket's receive has: a reader that always finds
        # data must still let other tasks (and cancellation) in.
        await anyio.lowlevel.checkpoint()
        pipe = self._incoming
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            if pipe.buffer:
                if len(pipe.buffer) <= max_bytes:
                    data = bytes(pipe.buffer)
                    pipe.buffer.clear()
                else:
                    data = bytes(pipe.buffer[:max_bytes])
                    del pipe.buffer[:max_bytes]
                pipe.writable.set()
                return data
            if pipe.eof:
                raise anyio.EndOfStream
            await pipe.wait_readable()

    async def send(self, item: Buffer) -> None:
        await anyio.lowlevel.checkpoint()
        pipe = self._outgoing
        data = memoryview(item).cast("B")
        while True:
            if self._closed or pipe.eof:
                raise anyio.ClosedResourceError
            if pipe.reader_gone:
                raise anyio.BrokenResourceError("the other side closed the stream")
            room = pipe.capacity - len(pipe.buffer)
            if room > 0:
                # What fits goes in at once, the rest once the reader makes room; a
                # cancelled send leaves a prefix written, as a socket's does.
                pipe.buffer += data[:room]
                pipe.readable.set()
                data = data[room:]
                if not data:
                    return
            await pipe.wait_writable()

    async def send_eof(self) -> None:
        await anyio.lowlevel.checkpoint()
        if self._closed:
            raise anyio.ClosedResourceError
        self._outgoing.eof = True
        self._outgoing.wake()

    def close_now(self) -> None:
        """Close without waiting: the other side reads what was sent, then the end of stream."""
        if self._closed:
            return
        self._closed = True
        self._outgoing.eof = True
        self._outgoing.wake()
        self._incoming.reader_gone = True
        self._incoming.buffer.clear()
        self._incoming.wake()
        if self._on_close is not None:
            self._on_close()

    async def aclose(self) -> None:
        self.close_now()
        await anyio.lowlevel.checkpoint()


class _MemoryListener:
    """Streams dialled to one address, waiting to be accepted; its own single acceptor."""

    def __init__(self, network: MemoryNetwork, address: HostPort) -> None:
        self._network = network
        self._address = address
        self._pending: deque[MemoryStream] = deque()
        self._arrived = anyio.Event()
        self.closed = False

    @property
    def addresses(self) -> list[HostPort]:
        return [self._address]

    @property
    def acceptors(self) -> list[Acceptor]:
        return [self]

    def offer(self, stream: MemoryStream) -> bool:
        if self.closed or len(self._pending) >= self._network.backlog:
            return False
        self._pending.append(stream)
        self._arrived.set()
        return True

    async def accept(self) -> anyio.abc.ByteStream:
        await anyio.lowlevel.checkpoint()
        while True:
            if self.closed:
                raise anyio.ClosedResourceError
            if self._pending:
                return self._pending.popleft()
            if self._arrived.is_set():
                self._arrived = anyio.Event()
            await self._arrived.wait()

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self._network._unbind(self._address)
            while self._pending:  # dialled but never accepted: the dialler sees the end of stream
                self._pending.popleft().close_now()
            self._arrived.set()
        await anyio.lowlevel.checkpoint()


class MemoryNetwork:
    """Listeners by ``(host, port)`` and the ports in use; hosts join through :class:`MemoryTransport`.

    Ports asked as 0 are taken from 49152 up, unique across the network (so a
    wildcard listener never collides with a host's).
    """

    def __init__(self, *, buffer_size: int = DEFAULT_BUFFER_SIZE, backlog: int = DEFAULT_BACKLOG) -> None:
        if buffer_size < 1 or backlog < 1:
            raise InvalidInput("buffer_size and backlog must be positive")
        self.buffer_size = buffer_size
        self.backlog = backlog
        self._listeners: dict[HostPort, _MemoryListener] = {}
        self._ports_in_use: set[int] = set()
        self._next_port = _FIRST_EPHEMERAL

    def transport(self, host: str) -> MemoryTransport:
        """The transport of the host at ``host`` on this network."""
        return MemoryTransport(self, host)

    def listening(self) -> list[HostPort]:
        """The addresses listened on now."""
        return list(self._listeners)

    def _allocate_port(self) -> int:
        for _ in range(_PORTS - _FIRST_EPHEMERAL):
            port = self._next_port
            self._next_port = port + 1 if port + 1 < _PORTS else _FIRST_EPHEMERAL
            if port not in self._ports_in_use:
                self._ports_in_use.add(port)
                return port
        raise OSError(errno.EADDRNOTAVAIL, "no free port left on the memory network")

    def _release_port(self, port: int) -> None:
        self._ports_in_use.discard(port)

    def _bind(self, host: str, port: int) -> _MemoryListener:
        if not 0 <= port < _PORTS:
            raise OSError(errno.EINVAL, f"port {port} is out of range")
        if port == 0:
            port = self._allocate_port()
        elif (host, port) in self._listeners:
            raise OSError(errno.EADDRINUSE, f"{format_address((host, port))} is in use")
        else:
            self._ports_in_use.add(port)
        listener = _MemoryListener(self, (host, port))
        self._listeners[host, port] = listener
        return listener

    def _unbind(self, address: HostPort) -> None:
        if self._listeners.pop(address, None) is not None:
            self._release_port(address[1])

    def _find(self, host: str, port: int) -> _MemoryListener | None:
        for candidate in (host, *_WILDCARDS):
            listener = self._listeners.get((candidate, port))
            if listener is not None and not listener.closed:
                return listener
        return None

    def _dial(self, local_host: str, host: str, port: int) -> MemoryStream:
        listener = self._find(host, port)
        if listener is None:
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"nothing listens on {format_address((host, port))}"
            )
        local = (local_host, self._allocate_port())
        remote = (host, port)
        to_server, to_client = _Pipe(self.buffer_size), _Pipe(self.buffer_size)
        client = MemoryStream(local, remote, to_client, to_server, lambda: self._release_port(local[1]))
        server = MemoryStream(remote, local, to_server, to_client)
        if not listener.offer(server):
            client.close_now()
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"{format_address(remote)} has too many unaccepted connections"
            )
        return client


class MemoryTransport:
    """The :class:`~hyphal.net.transport.Transport` of the host at ``host`` on ``network``.

    Its dials come from ``host`` (with a fresh port), which is the address the
    listener's side sees as remote.
    """

    name = "memory"

    def __init__(self, network: MemoryNetwork, host: str) -> None:
        self.network = network
        self.host = host

    def __repr__(self) -> str:
        return f"MemoryTransport({self.host!r})"

    async def dial(self, host: str, port: int) -> anyio.abc.ByteStream:
        await anyio.lowlevel.checkpoint()
        return self.network._dial(self.host, host, port)

    async def listen(self, host: str, port: int) -> _MemoryListener:
        await anyio.lowlevel.checkpoint()
        return self.network._bind(host, port)


__all__ = ["DEFAULT_BACKLOG", "DEFAULT_BUFFER_SIZE", "MemoryNetwork", "MemoryStream", "MemoryTransport"]
