"""The secret store on a running :class:`~hyphal.dht.udp.UdpDht`, with ``async`` calls.

``SecretClient(dht)`` registers the store's handlers on the node, so it also
holds and rebalances its share of everyone's secrets, and offers
:meth:`put`, :meth:`get` and :meth:`delete` that wait for the network.
"""

from __future__ import annotations

import time

from hyphal.dht.udp import UdpDht
from hyphal.secrets.secret_store import SecretStore
from hyphal.signing import KeyPair


class SecretClient:
    def __init__(self, dht: UdpDht, *, replicas: int = 5) -> None:
        self.dht = dht
        self.store = SecretStore(dht.node, now=time.time(), replicas=replicas)

    async def put(
        self,
        owner: KeyPair,
        url: str,
        plaintext: bytes,
        *,
        readers: tuple[bytes, ...] = (),
        timeout: float | None = 30.0,
    ) -> int:
        """Seal ``plaintext`` for ``owner`` (and ``readers``) and deploy it; returns its version."""
        return await self.dht.run(
            lambda _, now: self.store.put(now, owner, url, plaintext, readers=readers), timeout
        )

    async def get(self, reader: KeyPair, owner: bytes, url: str, *, timeout: float | None = 30.0) -> bytes:
        """Read ``owner``'s secret for ``url`` as ``reader`` (the owner, or a key on its ACL)."""
        return await self.dht.run(lambda _, now: self.store.get(now, reader, owner, url), timeout)

    async def delete(self, owner: KeyPair, url: str, *, timeout: float | None = 30.0) -> int:
        """Replace the secret with a signed tombstone; returns the tombstone's version."""
        return await self.dht.run(lambda _, now: self.store.delete(now, owner, url), timeout)


__all__ = ["SecretClient"]
