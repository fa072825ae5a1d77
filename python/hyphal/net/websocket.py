"""WebSocket as a transport on the seam of :mod:`hyphal.net.transport`, with the ``websockets`` package.

A node listens on TCP and, with ``listen_ws``, on WebSocket at once; a peer
address written ``ws://host:port`` (:mod:`hyphal.net.endpoint`) is dialled
over it. The WebSocket carries the same byte stream a TCP connection does
(docs/PROTOCOL.md §16.5), so the Noise handshake, frames, the mux and every
protocol run over it unchanged:

- every binary message carries the next bytes of the stream, at most
  :data:`CHUNK` of them (a larger write is split; a larger incoming message
  closes the connection);
- an empty binary message is the end of the sender's stream (TCP's
  half-close, which WebSocket lacks): the receiver reads it as
  ``anyio.EndOfStream`` and may still send;
- a text message is a protocol error: the stream breaks.

The handshake is plain HTTP/1.1 ``Upgrade: websocket`` on any path, with no
compression (the stream is sealed, so it would not compress) and no
WebSocket pings (the connection has its own keepalive). Flow control is the
package's: a bounded receive queue (``max_queue`` messages) and write
buffer, so a reader that stops reading stops the writer, as over TCP.

The ``websockets`` package runs on asyncio, so this transport does too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from typing_extensions import Buffer
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException

from hyphal.net.address import format_address
from hyphal.net.transport import Acceptor, HostPort, TransportAttribute

log = logging.getLogger("hyphal.net")

CHUNK = 128 * 1024
"""The largest binary message sent or accepted: the stream's bytes travel in pieces of at most this."""
MAX_QUEUE = 8
"""Messages the receive side buffers before it stops reading from the socket."""
BACKLOG = 128
"""Upgraded connections held unaccepted at once; more are closed."""
CLOSE_TIMEOUT = 2.0

Socket = ClientConnection | ServerConnection


def _host_port(address: Any) -> HostPort | None:
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None


class WebSocketStream(anyio.abc.ByteStream):
    """One end of a WebSocket connection as a byte stream (see the module doc)."""

    def __init__(self, socket: Socket) -> None:
        self._socket = socket
        self._pending = b""
        self._eof = False
        self._sent_eof = False
        self._closed = False
        self.done = anyio.Event()
        """Set once closed here (the server's handler for the socket returns then)."""

    def __repr__(self) -> str:
        remote = _host_port(self._socket.remote_address)
        return f"WebSocketStream({format_address(remote) if remote else '?'})"

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        attributes: dict[Any, Callable[[], Any]] = {}
        remote = _host_port(self._socket.remote_address)
        local = _host_port(self._socket.local_address)
        if remote is not None:
            attributes[TransportAttribute.remote_address] = lambda: remote
        if local is not None:
            attributes[TransportAttribute.local_address] = lambda: local
        return attributes

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._closed:
            raise anyio.ClosedResourceError
        while not self._pending:
            if self._eof:
                raise anyio.EndOfStream
            try:
                data = await self._socket.recv()
            except ConnectionClosedOK:
                self._eof = True
                raise anyio.EndOfStream from None
            except ConnectionClosed as exc:
                raise anyio.BrokenResourceError(f"the WebSocket connection was lost: {exc}") from exc
            if isinstance(data, str):
                self._drop(abort=True)
                raise anyio.BrokenResourceError("the peer sent a WebSocket text message")
            if not data:
                self._eof = True
                raise anyio.EndOfStream
            self._pending = data
        data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return data

    async def send(self, item: Buffer) -> None:
        if self._closed or self._sent_eof:
            raise anyio.ClosedResourceError
        view = memoryview(item).cast("B")
        try:
            for start in range(0, len(view), CHUNK):
                await self._socket.send(bytes(view[start : start + CHUNK]))
        except ConnectionClosed as exc:
            raise anyio.BrokenResourceError(f"the WebSocket connection was lost: {exc}") from exc

    async def send_eof(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if not self._sent_eof:
            self._sent_eof = True
            with contextlib.suppress(ConnectionClosed):
                await self._socket.send(b"")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with anyio.move_on_after(CLOSE_TIMEOUT):
                await self._socket.close()
        finally:
            self._drop(abort=False)
            await anyio.lowlevel.checkpoint()

    def _drop(self, *, abort: bool) -> None:
        """Close the TCP connection under the socket, if the close handshake did not (a forceful
        close cancels it): what was written still goes out first, unless ``abort``."""
        transport = self._socket.transport
        if transport is not None and not transport.is_closing():
            if abort:
                transport.abort()
            else:
                transport.close()
        self.done.set()


class _WebSocketListener:
    """Upgraded connections waiting to be accepted; its own single acceptor."""

    def __init__(self) -> None:
        self._server: Server | None = None
        self._send: MemoryObjectSendStream[WebSocketStream]
        self._receive: MemoryObjectReceiveStream[WebSocketStream]
        self._send, self._receive = anyio.create_memory_object_stream[WebSocketStream](BACKLOG)
        self._streams: set[WebSocketStream] = set()
        self.closed = False

    async def start(self, host: str, port: int) -> None:
        self._server = await serve(
            self._handle,
            host,
            port,
            compression=None,
            ping_interval=None,
            max_size=CHUNK,
            max_queue=MAX_QUEUE,
            server_header=None,
            close_timeout=CLOSE_TIMEOUT,
        )

    @property
    def addresses(self) -> list[HostPort]:
        assert self._server is not None
        found = [_host_port(sock.getsockname()) for sock in self._server.sockets]
        return [a for a in found if a is not None]

    @property
    def acceptors(self) -> list[Acceptor]:
        return [self]

    async def _handle(self, socket: ServerConnection) -> None:
        stream = WebSocketStream(socket)
        if self.closed:
            return
        try:
            self._send.send_nowait(stream)
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            log.warning("WebSocket listener: too many unaccepted connections; closing one")
            return
        self._streams.add(stream)
        try:
            # The package closes the socket when this returns: hold it until the stream is done.
            await stream.done.wait()
        finally:
            self._streams.discard(stream)

    async def accept(self) -> anyio.abc.ByteStream:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise anyio.ClosedResourceError from None

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._send.close()
        with contextlib.suppress(anyio.ClosedResourceError):
            while True:  # upgraded but never accepted: closed here
                try:
                    stream = self._receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
                await stream.aclose()
        self._receive.close()
        for stream in list(self._streams):
            stream.done.set()
        if self._server is not None:
            self._server.close()
            with anyio.move_on_after(CLOSE_TIMEOUT):
                await self._server.wait_closed()


class WebSocketTransport:
    """Dials ``ws://host:port/`` and accepts WebSocket upgrades on ``host:port``."""

    name = "ws"

    async def dial(self, host: str, port: int) -> anyio.abc.ByteStream:
        uri = f"ws://{format_address((host, port))}/"
        try:
            socket = await connect(
                uri,
                compression=None,
                ping_interval=None,
                max_size=CHUNK,
                max_queue=MAX_QUEUE,
                open_timeout=None,  # the caller bounds the dial (and the handshake after it)
                close_timeout=CLOSE_TIMEOUT,
                user_agent_header=None,
            )
        except WebSocketException as exc:
            raise ConnectionError(f"{uri} is not a WebSocket endpoint: {exc}") from exc
        return WebSocketStream(socket)

    async def listen(self, host: str, port: int) -> _WebSocketListener:
        listener = _WebSocketListener()
        await listener.start(host, port)
        return listener


__all__ = ["CHUNK", "WebSocketStream", "WebSocketTransport"]
