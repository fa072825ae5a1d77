"""The encrypted connection layer: Noise XX handshake, sealed frames, multiplexed channels.

- :mod:`hyphal.net.address`: ``host:port`` text as an :class:`Address`, and back (sans-I/O).
- :mod:`hyphal.net.noise`: the Noise framework (sans-I/O).
- :mod:`hyphal.net.handshake`: Noise XX bound to ed25519 identities (sans-I/O).
- :mod:`hyphal.net.frames`: length-prefixed sealed frames (sans-I/O).
- :mod:`hyphal.net.mux`: channels with credit-based flow control (sans-I/O).
- :mod:`hyphal.net.channel`: the channels of a connection.
- :mod:`hyphal.net.connection`: TCP connections and listeners, on anyio.
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
    from hyphal.net.connection import (
        Channel,
        ChannelRequest,
        Connection,
        ConnectionConfig,
        ConnectionHandler,
        Listener,
        connect,
        establish,
        listen,
    )
    from hyphal.net.handshake import Handshake, HandshakeResult
    from hyphal.net.pool import ConnectionPool
    from hyphal.net.router import ChannelRouter

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Address": ".address",
        "format_address": ".address",
        "parse_address": ".address",
        "Channel": ".connection",
        "ChannelRequest": ".connection",
        "Connection": ".connection",
        "ConnectionConfig": ".connection",
        "ConnectionHandler": ".connection",
        "Listener": ".connection",
        "connect": ".connection",
        "establish": ".connection",
        "listen": ".connection",
        "Handshake": ".handshake",
        "HandshakeResult": ".handshake",
        "ConnectionPool": ".pool",
        "ChannelRouter": ".router",
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
    "connect",
    "establish",
    "format_address",
    "listen",
    "parse_address",
]
