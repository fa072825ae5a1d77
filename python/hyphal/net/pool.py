"""At most one connection per remote identity."""

from __future__ import annotations

import logging

import anyio

from hyphal.lifecycle import TaskOwner
from hyphal.net.config import ConnectionConfig
from hyphal.net.connection import Connection, connect, listen
from hyphal.net.listener import ConnectionHandler, Listener
from hyphal.net.transport import TcpTransport, Transport
from hyphal.signing import KeyPair

logger = logging.getLogger("hyphal.net")


def _preference(connection: Connection) -> tuple[bytes, bytes]:
    """Sort key of duplicate connections; both ends compute the same and keep the lowest."""
    initiator = connection.local_public_key if connection.is_initiator else connection.remote_public_key
    return initiator, connection.handshake_hash


class ConnectionPool(TaskOwner):
    """At most one connection per remote public key.

    When two connections to the same peer exist (each side dialled the other
    at once), both sides keep the one whose initiator has the lower public key
    (ties, when one side dialled twice, go to the lower handshake hash) and
    close the other with reason ``"duplicate"``. A connection the peer already
    uses may thus be replaced; :meth:`get` always gives the current one.

    ``handler(conn)`` runs for every connection kept when it is made;
    connections stay open until closed by either side or the pool.
    The pool dials and listens over ``transport`` (TCP by default).
    """

    def __init__(
        self,
        keypair: KeyPair,
        *,
        config: ConnectionConfig | None = None,
        handler: ConnectionHandler | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.keypair = keypair
        self.transport: Transport = transport or TcpTransport()
        self._config = config or ConnectionConfig()
        self._handler = handler
        self._connections: dict[bytes, Connection] = {}
        self._changed = anyio.Event()
        self._listeners: list[Listener] = []

    async def _stopping(self) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for listener in self._listeners:
                await listener.aclose()
        if self._group is not None:
            self._group.cancel_scope.cancel()

    def get(self, remote_public_key: bytes) -> Connection | None:
        return self._connections.get(remote_public_key)

    def connections(self) -> list[Connection]:
        """Every open connection kept, one per peer."""
        return [c for c in self._connections.values() if not c.closed.is_set()]

    def __len__(self) -> int:
        return len(self._connections)

    async def wait_for(self, remote_public_key: bytes, handshake_hash: bytes | None = None) -> Connection:
        """Wait until the pool holds a connection to the peer (with that handshake hash, if given)."""
        while True:
            found = self._connections.get(remote_public_key)
            if found is not None and handshake_hash in (None, found.handshake_hash):
                await anyio.lowlevel.checkpoint()
                return found
            if self._changed.is_set():
                self._changed = anyio.Event()
            await self._changed.wait()

    async def listen(self, host: str, port: int, *, transport: Transport | None = None) -> Listener:
        """Accept connections into the pool (the returned listener is already serving), over
        ``transport`` (the pool's unless given: a node listens on TCP and WebSocket at once)."""
        listener = await listen(
            host,
            port,
            self.keypair,
            self._serve_incoming,
            config=self._config,
            transport=transport or self.transport,
        )
        group = self._require_running()
        await group.start(self._run_listener, listener)
        self._listeners.append(listener)
        return listener

    async def connect(
        self,
        host: str,
        port: int,
        *,
        expected_remote: bytes | None = None,
        transport: Transport | None = None,
    ) -> Connection:
        """Dial a peer (over ``transport``, the pool's unless given); returns the connection kept
        for it (possibly an earlier one)."""
        connection = await connect(
            host,
            port,
            self.keypair,
            expected_remote=expected_remote,
            config=self._config,
            transport=transport or self.transport,
        )
        group = self._require_running()
        kept: Connection = await group.start(self._run_connection, connection)
        return kept

    async def _run_listener(self, listener: Listener, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with listener:
            task_status.started()
            await anyio.sleep_forever()

    async def _serve_incoming(self, connection: Connection) -> None:
        # Runs inside the listener's task for the connection, which is already entered.
        self._admit(connection)
        if self._connections.get(connection.remote_public_key) is connection and self._handler is not None:
            await self._handler(connection)
        try:
            await connection.closed.wait()
        finally:
            self._forget(connection)

    async def _run_connection(
        self, connection: Connection, *, task_status: anyio.abc.TaskStatus[Connection]
    ) -> None:
        async with connection:
            kept = self._admit(connection)
            task_status.started(kept)
            if kept is connection and self._handler is not None:
                await self._handler(connection)
            try:
                await connection.closed.wait()
            finally:
                self._forget(connection)

    def _admit(self, connection: Connection) -> Connection:
        """Keep ``connection`` or the existing one to the same peer; close the other."""
        key = connection.remote_public_key
        existing = self._connections.get(key)
        if existing is None or existing.closed.is_set() or existing.closing:
            kept, loser = connection, None
        elif _preference(connection) < _preference(existing):
            kept, loser = connection, existing
        else:
            kept, loser = existing, connection
        self._connections[key] = kept
        self._changed.set()
        if loser is not None:
            logger.info("closing duplicate connection with %s", loser.peer)
            self._require_running().start_soon(loser.aclose, "duplicate")
        return kept

    def _forget(self, connection: Connection) -> None:
        if self._connections.get(connection.remote_public_key) is connection:
            del self._connections[connection.remote_public_key]
            self._changed.set()


__all__ = ["ConnectionPool"]
