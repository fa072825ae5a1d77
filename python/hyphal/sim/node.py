"""The real :class:`~hyphal.Node` on the simulator: :class:`SimNode` and its :class:`SimConnectionPool`.

A ``SimNode`` is a ``Node`` (identity and stores in its data dir, the feed
service, blob provider, router and group manager, unchanged) whose
connections go over a :class:`~hyphal.sim.streams.SimTransport` and whose
DHT is a :class:`~hyphal.sim.dht_driver.SimDht`: the two seams
``Node._connection_pool`` and ``Node._dht_driver``. Its identity is
derived from the simulation's seed and written to the data dir before the
node first starts, so node keys (and so DHT ids and routes) are a function
of the seed; a restart from the same dir finds the same identity.

``SimConnectionPool`` is the real :class:`~hyphal.net.pool.ConnectionPool`
(deduplication, handlers) whose dial and accept go through the transport and
:func:`~hyphal.net.connection.establish`. It goes once ``ConnectionPool``
takes a transport itself.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from hyphal.config import IDENTITY_NAME
from hyphal.dht.node import DhtConfig
from hyphal.errors import HandshakeError, HyphalError
from hyphal.keystore import save_identity
from hyphal.net.connection import Connection, ConnectionConfig, ConnectionHandler, establish
from hyphal.net.pool import ConnectionPool
from hyphal.net.transport import Acceptor, Transport, TransportListener
from hyphal.node import Node
from hyphal.signing import KeyPair
from hyphal.sim.dht_driver import SimDht
from hyphal.sim.streams import StreamNetwork

log = logging.getLogger("hyphal.sim")


class SimConnectionPool(ConnectionPool):
    """A :class:`ConnectionPool` dialling and accepting through ``transport``."""

    def __init__(
        self,
        transport: Transport,
        keypair: KeyPair,
        *,
        config: ConnectionConfig | None = None,
        handler: ConnectionHandler | None = None,
    ) -> None:
        super().__init__(keypair, config=config, handler=handler)
        self._transport = transport
        self._transport_listeners: list[TransportListener] = []

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for listener in self._transport_listeners:
                await listener.aclose()
        await super().aclose()

    async def listen(self, host: str, port: int) -> TransportListener:  # type: ignore[override]
        listener = await self._transport.listen(host, port)
        self._transport_listeners.append(listener)
        for acceptor in listener.acceptors:
            self._spawn(self._accept_loop, acceptor)
        return listener

    async def _accept_loop(self, acceptor: Acceptor) -> None:
        while True:
            try:
                stream = await acceptor.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            self._spawn(self._serve_stream, stream)

    async def _serve_stream(self, stream: anyio.abc.ByteStream) -> None:
        try:
            connection = await establish(stream, self.keypair, initiator=False, config=self._config)
        except HyphalError:
            return  # logged by establish
        async with connection:
            await self._serve_incoming(connection)

    async def connect(self, host: str, port: int, *, expected_remote: bytes | None = None) -> Connection:
        try:
            with anyio.fail_after(self._config.handshake_timeout):
                stream = await self._transport.dial(host, port)
                connection = await establish(
                    stream, self.keypair, initiator=True, expected_remote=expected_remote, config=self._config
                )
        except TimeoutError as exc:
            raise HandshakeError(f"connecting to {host}:{port} timed out") from exc
        kept: Connection = await self._require_running().start(self._run_connection, connection)
        return kept


def identity_for(seed: int, ip: str) -> KeyPair:
    """The identity of the node at ``ip`` in a simulation seeded with ``seed``."""
    return KeyPair(random.Random(f"{seed}/{ip}").randbytes(32))


class SimNode(Node):
    """A :class:`~hyphal.Node` on a simulated network. See the module docstring."""

    def __init__(
        self,
        network: StreamNetwork,
        ip: str,
        data_dir: str | Path,
        *,
        port: int = 7300,
        bootstrap: Sequence[str] = (),
        name: str | None = None,
        backup_for: Any = None,
        seed: int = 0,
        dht_config: DhtConfig | None = None,
        connection_config: ConnectionConfig | None = None,
    ) -> None:
        super().__init__(
            data_dir,
            listen=f"{ip}:{port}",
            bootstrap=bootstrap,
            name=name or ip,
            advertise=[f"{ip}:{port}"],
            backup_for=backup_for,
        )
        self.network = network
        self.transport = network.transport(ip)
        self.ip = ip
        self.seed = seed
        self._dht_config = dht_config
        self._connection_config = connection_config

    async def _start(self) -> None:
        assert self._requested_dir is not None
        identity = self._requested_dir / IDENTITY_NAME
        if not identity.exists():
            self._requested_dir.mkdir(parents=True, exist_ok=True)
            save_identity(identity, identity_for(self.seed, self.ip))
        await super()._start()

    def _connection_pool(self) -> ConnectionPool:
        return SimConnectionPool(
            self.transport, self.keypair, config=self._connection_config, handler=self._serve_connection
        )

    def _dht_driver(self, **options: Any) -> SimDht:
        rng = random.Random(f"{self.seed}/{self.ip}/dht/{self.keypair.public_key.hex()}")
        return SimDht(self.network, self.keypair, config=self._dht_config, rng=rng, **options)


__all__ = ["SimConnectionPool", "SimNode", "identity_for"]
