"""The encrypted connection layer: Noise XX handshake, sealed frames, multiplexed channels.

- :mod:`hyphal.net.address`: ``host:port`` text as an :class:`Address`, and back (sans-I/O).
- :mod:`hyphal.net.noise`: the Noise framework (sans-I/O).
- :mod:`hyphal.net.handshake`: Noise XX bound to ed25519 identities (sans-I/O).
- :mod:`hyphal.net.frames`: length-prefixed sealed frames (sans-I/O).
- :mod:`hyphal.net.mux`: channels with credit-based flow control (sans-I/O).
- :mod:`hyphal.net.config`: a connection's limits and timers.
- :mod:`hyphal.net.transport`: how byte streams are dialled and accepted; TCP.
- :mod:`hyphal.net.handshake_io`: the handshake run over a byte stream.
- :mod:`hyphal.net.memory`: an in-memory transport, for tests.
- :mod:`hyphal.net.channel`: the channels of a connection.
- :mod:`hyphal.net.connection`: connections over a transport, on anyio.
- :mod:`hyphal.net.listener`: serving incoming connections.
- :mod:`hyphal.net.outbox`: a per-channel send queue for protocol drivers.
- :mod:`hyphal.net.pool`: one connection per remote identity.
- :mod:`hyphal.net.router`: incoming channels to the service of their protocol.

The byte layouts are in docs/PROTOCOL.md §8.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.net.address import Address, format_address, parse_address
    from hyphal.net.channel import Channel
    from hyphal.net.config import ConnectionConfig
    from hyphal.net.connection import ChannelRequest, Connection, connect, establish, listen
    from hyphal.net.handshake import Handshake, HandshakeResult
    from hyphal.net.listener import ConnectionHandler, Listener
    from hyphal.net.memory import MemoryNetwork, MemoryTransport
    from hyphal.net.pool import ConnectionPool
    from hyphal.net.router import ChannelRouter
    from hyphal.net.transport import TcpTransport, Transport, TransportListener

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Address": ".address",
        "format_address": ".address",
        "parse_address": ".address",
        "Channel": ".channel",
        "ConnectionConfig": ".config",
        "ChannelRequest": ".connection",
        "Connection": ".connection",
        "connect": ".connection",
        "establish": ".connection",
        "listen": ".connection",
        "Handshake": ".handshake",
        "HandshakeResult": ".handshake",
        "ConnectionHandler": ".listener",
        "Listener": ".listener",
        "MemoryNetwork": ".memory",
        "MemoryTransport": ".memory",
        "ConnectionPool": ".pool",
        "ChannelRouter": ".router",
        "TcpTransport": ".transport",
        "Transport": ".transport",
        "TransportListener": ".transport",
    },
)

__all__ = [
    "Address",
    "Channel",
    "ChannelRequest",
    "ChannelRouter",
    "Connection",
    "ConnectionConfig",
    "ConnectionHandler",
    "ConnectionPool",
    "Handshake",
    "HandshakeResult",
    "Listener",
    "MemoryNetwork",
    "MemoryTransport",
    "TcpTransport",
    "Transport",
    "TransportListener",
    "connect",
    "establish",
    "format_address",
    "listen",
    "parse_address",
]
