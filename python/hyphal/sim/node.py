"""The real :class:`~hyphal.Node` on the simulator: :class:`SimNode`.

A ``SimNode`` is a ``Node`` (identity and stores in its data dir, the feed
service, blob provider, router and group manager, unchanged) whose
connections go over a :class:`~hyphal.sim.streams.SimTransport` (the node's
``transport``) and whose DHT is a :class:`~hyphal.sim.dht_driver.SimDht`
(``Node._dht_driver``). Its identity is
derived from the simulation's seed and written to the data dir before the
node first starts, so node keys (and so DHT ids and routes) are a function
of the seed; a restart from the same dir finds the same identity.

"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyphal.config import IDENTITY_NAME
from hyphal.dht.node import DhtConfig
from hyphal.keystore import save_identity
from hyphal.net.connection import ConnectionConfig
from hyphal.node import Node
from hyphal.signing import KeyPair
from hyphal.sim.dht_driver import SimDht
from hyphal.sim.streams import StreamNetwork

log = logging.getLogger("hyphal.sim")


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
            transport=network.transport(ip),
            connection=connection_config,
        )
        self.network = network
        self.ip = ip
        self.seed = seed
        self._dht_config = dht_config

    async def _start(self) -> None:
        assert self._requested_dir is not None
        identity = self._requested_dir / IDENTITY_NAME
        if not identity.exists():
            self._requested_dir.mkdir(parents=True, exist_ok=True)
            save_identity(identity, identity_for(self.seed, self.ip))
        await super()._start()

    def _dht_driver(self, **options: Any) -> SimDht:
        rng = random.Random(f"{self.seed}/{self.ip}/dht/{self.keypair.public_key.hex()}")
        return SimDht(self.network, self.keypair, config=self._dht_config, rng=rng, **options)


__all__ = ["SimNode", "identity_for"]
