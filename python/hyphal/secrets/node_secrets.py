"""The secret store as a node runs it: :class:`NodeSecrets` (``node.secrets``).

It serves the node's share of everyone's secrets on the node's DHT (the
handlers of :class:`~hyphal.secrets.secret_store.SecretStore`), pulls what
it is responsible for when the node joins, and hands its share off to the
nodes that take over before a graceful stop. Its ``async`` methods act as
the node's identity: the owner of what it puts, a reader of what others
granted it. The secrets it owns are listed locally (:mod:`.owned`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio

from hyphal.clock import wall_time
from hyphal.dht.operation import Operation
from hyphal.dht.udp import UdpDht
from hyphal.errors import InvalidInput, NotAvailable, Unauthorized
from hyphal.secrets.config import SecretsConfig
from hyphal.secrets.owned import OwnedSecret, OwnedSecrets
from hyphal.secrets.records import MAX_PLAINTEXT, MAX_READERS, SecretRecord
from hyphal.secrets.secret_store import Handoff, SecretStore
from hyphal.signing import PUBLIC_KEY_SIZE, KeyPair

log = logging.getLogger("hyphal.secrets")
T = TypeVar("T")

MAX_URL = 2048
"""A URL names a secret; it is hashed, never sent, but it is kept in the owner's list."""


@dataclass(frozen=True, slots=True)
class HeldSecret:
    """A copy this node stores for the network: it sees the owner and the version, not the URL."""

    id: bytes
    owner: bytes
    version: int
    deleted: bool


class NodeSecrets:
    """The node's secret store: serve, pull, hand off; put, get, delete, list, grant, revoke."""

    def __init__(self, dht: UdpDht, keypair: KeyPair, owned_path: Path, config: SecretsConfig) -> None:
        self._dht = dht
        self._keypair = keypair
        self.config = config
        self.owned = OwnedSecrets(owned_path, keypair)
        self.store = SecretStore(
            dht.node,
            now=wall_time(),
            replicas=config.replicas,
            skew=config.skew,
            interval=config.interval,
        )

    # -- the node's part in the network ----------------------------------------------------

    async def pull(self) -> None:
        """Ask the nearest nodes for the secrets this node is now responsible for. Returns once
        asked (startup does not wait on slow peers); the answer and the pushes are logged."""

        def answered(o: Operation[int]) -> None:
            count = 0 if o.error is not None else o.result()
            log.info("secrets: %d node(s) answered the pull; %d secret(s) held here", count, len(self.held()))

        def start(_: object, now: float) -> Operation[None]:
            self.store.pull(now).on_done(answered)
            sent: Operation[None] = Operation("secret pull sent", now)
            sent._finish(now)
            return sent

        await self._dht.run(start)

    async def hand_off(self) -> Handoff | None:
        """Push this node's share to the nodes that become responsible without it, for at most
        ``handoff_timeout`` seconds; None if it timed out (or the node is being cancelled)."""
        if anyio.current_effective_deadline() == -math.inf:
            log.info("secrets: stopping under cancellation; no hand-off")
            return None
        report: Handoff | None = None
        with anyio.move_on_after(self.config.handoff_timeout, shield=True):
            report = await self._dht.run(lambda _, now: self.store.hand_off(now))
        if report is None:
            log.warning("secrets: hand-off not acknowledged within %.1f s", self.config.handoff_timeout)
        else:
            log.info(
                "secrets: handed off %d secret(s): %d push(es), %d acknowledged, %d copies already there",
                report.secrets,
                report.pushed,
                report.acknowledged,
                report.already,
            )
        return report

    def held(self) -> list[HeldSecret]:
        """The copies this node stores for the network (its own secrets' included)."""
        found = []
        for sid in sorted(self.store.held):
            record = self.store.record(sid)
            if record is not None:
                found.append(HeldSecret(sid, record.owner, record.version, record.deleted))
        return found

    # -- as the node's identity ---------------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        return self._keypair.public_key

    async def put(self, url: str, value: bytes, readers: tuple[bytes, ...] = ()) -> OwnedSecret:
        """Store ``value`` under ``url``, owned by this node, readable by ``readers`` too."""
        _check_url(url)
        if len(value) > MAX_PLAINTEXT:
            raise InvalidInput(
                f"a secret is at most {MAX_PLAINTEXT} bytes, this one is {len(value)}: "
                "store the key to the data, not the data"
            )
        return await self._write(url, value, readers)

    async def get(self, url: str, owner: bytes | None = None) -> bytes:
        """The value of ``owner``'s secret ``url`` (default: this node's own)."""
        return (await self._read(url, owner))[1]

    async def delete(self, url: str) -> int:
        """Replace this node's secret ``url`` by a signed tombstone everywhere; its version."""
        _check_url(url)
        floor = self._next_version(url)
        version = await self._run(
            url,
            lambda now: self.store.delete(now, self._keypair, url, version=max(floor, int(now * 1000))),
        )
        self.owned.remove(url)
        return version

    def list(self) -> list[OwnedSecret]:
        """The secrets this node owns, as it remembers them (:mod:`.owned`)."""
        return self.owned.list()

    async def grant(self, url: str, reader: bytes) -> OwnedSecret:
        """Let ``reader`` read this node's secret ``url`` (a new version, sealed to it too)."""
        _check_key(reader, "reader")
        if reader == self.public_key:
            raise InvalidInput("that is this node's own key: the owner always reads its secrets")
        record, value = await self._read(url, None)
        if reader in record.readers:
            return self._remember(url, record.version, record.readers, len(value))
        if len(record.readers) >= MAX_READERS:
            raise InvalidInput(f"a secret has at most {MAX_READERS} readers: revoke one first")
        return await self._write(url, value, (*record.readers, reader), record.version + 1)

    async def revoke(self, url: str, reader: bytes) -> OwnedSecret:
        """Stop ``reader`` reading new versions of ``url`` (what it read already, it keeps: rotate
        the secret itself too)."""
        _check_key(reader, "reader")
        record, value = await self._read(url, None)
        if reader not in record.readers:
            raise InvalidInput(f"{reader.hex()} is not a reader of {url!r}")
        kept = tuple(r for r in record.readers if r != reader)
        return await self._write(url, value, kept, record.version + 1)

    # -- inside ---------------------------------------------------------------------------------

    def _next_version(self, url: str, floor: int = 1) -> int:
        known = self.owned.get(url)
        return max(floor, 1 if known is None else known.version + 1)

    def _remember(self, url: str, version: int, readers: tuple[bytes, ...], size: int) -> OwnedSecret:
        entry = OwnedSecret(url, version, readers, size)
        self.owned.set(entry)
        return entry

    async def _write(self, url: str, value: bytes, readers: tuple[bytes, ...], floor: int = 1) -> OwnedSecret:
        for r in readers:
            _check_key(r, "reader")
        floor = self._next_version(url, floor)
        version = await self._run(
            url,
            lambda now: self.store.put(
                now, self._keypair, url, value, readers=readers, version=max(floor, int(now * 1000))
            ),
        )
        return self._remember(url, version, readers, len(value))

    async def _read(self, url: str, owner: bytes | None) -> tuple[SecretRecord, bytes]:
        _check_url(url)
        owner = self.public_key if owner is None else owner
        _check_key(owner, "owner")
        return await self._run(url, lambda now: self.store.read(now, self._keypair, owner, url))

    async def _run(self, url: str, start: Callable[[float], Operation[T]]) -> T:
        try:
            return await self._dht.run(lambda _, now: start(now), self.config.request_timeout)
        except NotAvailable as e:
            raise NotAvailable(f"secret {url!r}: {e}") from None
        except Unauthorized as e:
            raise Unauthorized(f"secret {url!r}: {e}; ask its owner to grant this node's key") from None
        except TimeoutError:
            raise NotAvailable(
                f"secret {url!r}: no answer within {self.config.request_timeout:.0f} s; "
                "is this node connected to the DHT (`--bootstrap`)?"
            ) from None


def _check_url(url: str) -> None:
    if not url or len(url) > MAX_URL:
        raise InvalidInput(f"a secret's URL is 1 to {MAX_URL} characters")


def _check_key(key: bytes, what: str) -> None:
    if len(key) != PUBLIC_KEY_SIZE:
        raise InvalidInput(f"the {what} key is 32 bytes")


__all__ = ["HeldSecret", "NodeSecrets"]
