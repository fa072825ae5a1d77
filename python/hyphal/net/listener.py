"""Serving connections: a :class:`Listener` accepts streams from a transport and runs a handler for each.

It knows nothing of the handshake: :func:`hyphal.net.connection.listen`
makes one with the upgrade that turns an accepted stream into a
:class:`~hyphal.net.connection.Connection`, so this module does not import
the connection's at runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from hyphal.errors import HyphalError
from hyphal.lifecycle import TaskOwner
from hyphal.net.transport import Acceptor, HostPort, TransportListener, peer_name

if TYPE_CHECKING:
    from hyphal.net.connection import Connection

logger = logging.getLogger("hyphal.net")

ConnectionHandler = Callable[["Connection"], Awaitable[Any]]
Upgrade = Callable[[anyio.abc.ByteStream], Awaitable["Connection"]]
"""Runs the handshake over an accepted stream (closing it if that fails)."""


class Listener(TaskOwner):
    """Accepts connections and runs ``handler(conn)`` for each, in a task group.

    Made by :func:`~hyphal.net.connection.listen`; serves while entered
    (``async with listener:``). Each handler gets a running connection, closed
    when the handler returns. A failed handshake or a failing handler is logged
    and affects only that connection.
    """

    def __init__(self, listener: TransportListener, upgrade: Upgrade, handler: ConnectionHandler) -> None:
        self._listener = listener
        self._upgrade = upgrade
        self._handler = handler

    @property
    def addresses(self) -> list[HostPort]:
        return self._listener.addresses

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    def _started(self) -> None:
        for acceptor in self._listener.acceptors:
            self._spawn(self._accept_loop, acceptor)

    async def _stopping(self) -> None:
        await self.aclose()

    async def serve_forever(self) -> None:
        """Serve until cancelled: ``await (await listen(...)).serve_forever()``."""
        async with self:
            await anyio.sleep_forever()

    async def aclose(self) -> None:
        """Stop accepting and close every connection."""
        with anyio.CancelScope(shield=True):
            await self._listener.aclose()
        if self._group is not None:
            self._group.cancel_scope.cancel()

    async def _accept_loop(self, acceptor: Acceptor) -> None:
        while True:
            try:
                stream = await acceptor.accept()
            except anyio.ClosedResourceError:
                return
            except OSError as exc:  # out of descriptors and the like: keep serving
                logger.warning("accept failed: %r", exc)
                await anyio.sleep(0.1)
                continue
            self._spawn(self._serve_one, stream)

    async def _serve_one(self, stream: anyio.abc.ByteStream) -> None:
        peer = peer_name(stream)
        try:
            connection = await self._upgrade(stream)
        except HyphalError:
            return  # logged by the upgrade
        except Exception:
            logger.exception("handshake with %s failed unexpectedly", peer)
            return
        try:
            async with connection:
                await self._handler(connection)
        except Exception:
            logger.exception("connection handler for %s failed", peer)


__all__ = ["ConnectionHandler", "Listener", "Upgrade"]
