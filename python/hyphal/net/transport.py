"""The transport seam: how a byte stream to a peer is dialled and accepted.

Everything above it (the Noise handshake, sealed frames, the mux, channels
and every protocol) sees only an :class:`anyio.abc.ByteStream` and the
address at its other end, so it runs unchanged over any transport that gives
one: TCP (:class:`TcpTransport`), memory for tests (:mod:`hyphal.net.memory`),
the simulator's virtual network (:mod:`hyphal.sim`), and later WebSocket, a
blind relay or a UDP-based stream for hole punching.

A transport is anything with :meth:`Transport.dial` and
:meth:`Transport.listen`; its streams answer
``stream.extra(TransportAttribute.remote_address)`` (and ``local_address``)
with a ``(host, port)`` pair, which :func:`remote_address` reads (and
:func:`peer_name` formats for logs).

A transport's streams must behave like TCP's for the layers above:
``send_eof`` makes the other side's ``receive`` raise ``anyio.EndOfStream``
once it has read what was sent; closing one side ends the other (end of
stream, or ``anyio.BrokenResourceError`` on send); and a reader that stops
reading eventually stops the writer (bounded buffers), which is what the
connection's write-stall timeout and flow control rely on.
"""

from __future__ import annotations

from typing import Protocol, cast

import anyio
import anyio.abc
from anyio import TypedAttributeSet, typed_attribute
from anyio.streams.stapled import MultiListener

from hyphal.net.address import format_address

HostPort = tuple[str, int]

STREAM_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
"""What a transport's stream raises when the connection under it is lost or closed."""


class TransportAttribute(TypedAttributeSet):
    """The addresses at both ends of a transport's stream (``(host, port)``)."""

    remote_address: HostPort = typed_attribute()
    local_address: HostPort = typed_attribute()


class Acceptor(Protocol):
    async def accept(self) -> anyio.abc.ByteStream:
        """The next incoming stream; :class:`anyio.ClosedResourceError` once closed."""
        ...


class TransportListener(Protocol):
    """What :meth:`Transport.listen` returns: accepts streams until closed.

    It may hold several acceptors (a TCP wildcard bind has one socket per
    address family); whoever serves it runs one accept loop per acceptor.
    """

    @property
    def addresses(self) -> list[HostPort]:
        """The ``(host, port)`` pairs it accepts on (the port chosen when 0 was asked)."""
        ...

    @property
    def acceptors(self) -> list[Acceptor]: ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    """Dials and accepts byte streams. See the module docstring."""

    name: str
    """A short name for logs and addresses: ``"tcp"``, ``"memory"``, ``"sim"``."""

    async def dial(self, host: str, port: int) -> anyio.abc.ByteStream:
        """A stream to ``host:port``; ``OSError`` (``ConnectionRefusedError`` when nothing
        listens there) if it cannot be made. May wait: callers bound it with a timeout."""
        ...

    async def listen(self, host: str, port: int) -> TransportListener:
        """Start accepting on ``host:port`` (port 0 picks a free one)."""
        ...


def remote_address(stream: anyio.abc.ByteStream) -> HostPort | None:
    """The ``(host, port)`` at the other end of ``stream``, or None when the transport has none."""
    for attribute in (TransportAttribute.remote_address, anyio.abc.SocketAttribute.remote_address):
        try:
            address = stream.extra(attribute)
        except (anyio.TypedAttributeLookupError, OSError):
            continue
        if isinstance(address, tuple) and len(address) >= 2:
            return (str(address[0]), int(address[1]))
    return None


def peer_name(stream: anyio.abc.ByteStream) -> str:
    """The address at the other end of ``stream`` for logs, or ``"?"`` when it has none."""
    address = remote_address(stream)
    return "?" if address is None else format_address(address)


class _TcpListener:
    def __init__(self, inner: MultiListener[anyio.abc.SocketStream]) -> None:
        self._inner = inner

    @property
    def acceptors(self) -> list[Acceptor]:
        # create_tcp_listener makes SocketListeners, which accept; the type says only Listener.
        return [cast(anyio.abc.SocketListener, listener) for listener in self._inner.listeners]

    @property
    def addresses(self) -> list[HostPort]:
        out = []
        for listener in self._inner.listeners:
            address = listener.extra(anyio.abc.SocketAttribute.local_address)
            assert isinstance(address, tuple)
            out.append((str(address[0]), int(address[1])))
        return out

    async def aclose(self) -> None:
        await self._inner.aclose()


class TcpTransport:
    """TCP over IPv4 and IPv6, with anyio's sockets."""

    name = "tcp"

    async def dial(self, host: str, port: int) -> anyio.abc.ByteStream:
        return await anyio.connect_tcp(host, port)

    async def listen(self, host: str, port: int) -> _TcpListener:
        return _TcpListener(await anyio.create_tcp_listener(local_host=host, local_port=port))


__all__ = [
    "STREAM_ERRORS",
    "Acceptor",
    "HostPort",
    "TcpTransport",
    "Transport",
    "TransportAttribute",
    "TransportListener",
    "peer_name",
    "remote_address",
]
