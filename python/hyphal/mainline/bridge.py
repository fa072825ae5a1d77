"""The node's use of mainline (opt-in, ``[mainline] enabled = true``): discovery, pointers, bootstrap.

:class:`MainlineBridge` runs a :class:`~hyphal.mainline.udp.MainlineUdp` next
to the node's own DHT and

- **discovery**: announces every feed the node shares under
  :func:`~hyphal.mainline.records.info_hash_for` of its discovery key (port:
  the node's TCP port), at once when it starts sharing one and every
  ``announce_interval``; and finds a feed's peers there for
  :class:`~hyphal.replication.discovery.FeedDiscovery` (a ``PeerFinder``);
- **signed pointers**: keeps the node's addresses as a BEP 44 mutable item
  signed by its identity key (:class:`~hyphal.mainline.records.AddressRecord`),
  put again every ``publish_interval`` (before mainline's two hours run out),
  and resolves other nodes' pointers (:meth:`resolve_addresses`);
- **bootstrap**: when the node's own DHT knows nobody (no configured seed
  answered), finds hyphal nodes at the rendezvous info-hash, bootstraps
  the hyphal DHT from them and republishes what it had put while alone (its
  groups' and feeds' announces and adverts), so group members that share no
  seed find each other on the hyphal DHT from then on.

A failure on mainline is logged and retried at the next round; it never
stops the node.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol

import anyio
import anyio.abc

from hyphal.dht.udp import UdpDht
from hyphal.errors import DecodeError, HyphalError
from hyphal.feed.manifest import discovery_key
from hyphal.mainline.config import KrpcConfig, MainlineConfig
from hyphal.mainline.ids import is_public
from hyphal.mainline.items import MutableItem
from hyphal.mainline.records import ADDRESSES_SALT, RENDEZVOUS, AddressRecord, info_hash_for
from hyphal.mainline.udp import MainlineUdp
from hyphal.net.address import format_address, parse_address
from hyphal.replication.discovery import FeedDiscovery, SharedFeed
from hyphal.signing import KeyPair

log = logging.getLogger("hyphal.mainline")


class BridgeHost(Protocol):
    """What the bridge needs from the node."""

    @property
    def keypair(self) -> KeyPair: ...

    @property
    def address(self) -> tuple[str, int]: ...

    @property
    def dht(self) -> UdpDht: ...

    @property
    def shared_feeds(self) -> FeedDiscovery: ...

    def advertised_addresses(self) -> list[str]: ...


class MainlineBridge:
    def __init__(self, host: BridgeHost, config: MainlineConfig, *, listen_host: str) -> None:
        self._host = host
        self.config = config
        self._listen_host = listen_host
        self._dht: MainlineUdp | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._fresh: set[bytes] = set()
        self._wake = anyio.Event()
        self.pointer: MutableItem | None = None
        """The address pointer last put."""
        self.joined = anyio.Event()
        """Set once the first bootstrap round ended (whether or not it found anyone)."""
        self.hyphal_joined = anyio.Event()
        """Set once a round finds the hyphal DHT knows someone (bootstrapped from hyphal nodes found on
        mainline, or joined by one of them) and has put its records again."""

    @property
    def dht(self) -> MainlineUdp:
        if self._dht is None:
            raise RuntimeError("the mainline bridge is not running")
        return self._dht

    async def __aenter__(self) -> MainlineBridge:
        cfg = self.config
        krpc = KrpcConfig(query_rate=cfg.query_rate, query_burst=2 * cfg.query_rate)
        hosts = [parse_address(a).host for a in self._host.advertised_addresses()]
        self._dht = MainlineUdp(
            host=self._listen_host,
            port=cfg.port,
            routers=(),
            read_only=cfg.read_only,
            config=krpc,
            public_ip=next((h for h in hosts if is_public(h)), None),
        )
        await self._dht.__aenter__()
        feeds = self._host.shared_feeds
        if cfg.discovery:
            feeds.finders.append(self.find_feed_peers)
            feeds.on_shared.append(self._shared)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        feeds = self._host.shared_feeds
        if self.find_feed_peers in feeds.finders:
            feeds.finders.remove(self.find_feed_peers)
        if self._shared in feeds.on_shared:
            feeds.on_shared.remove(self._shared)
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._tg = None
        if self._dht is not None:
            await self._dht.__aexit__(None, None, None)
            self._dht = None

    # -- the rounds ------------------------------------------------------------------------------

    async def _run(self) -> None:
        cfg = self.config
        await self._guarded("bootstrap", self._bootstrap)
        self.joined.set()
        next_announce = next_publish = 0.0
        while True:
            now = time.monotonic()
            if now >= next_announce:
                next_announce = now + cfg.announce_interval
                await self._guarded("announce", self._announce_all)
                await self._guarded("hyphal bootstrap", self._bootstrap_hyphal)
            elif self._fresh:
                fresh, self._fresh = self._fresh, set()
                for key in fresh:
                    await self._guarded("announce", functools.partial(self._announce, key))
            if cfg.publish_addresses and now >= next_publish:
                next_publish = now + cfg.publish_interval
                await self._guarded("publish", self.publish_addresses)
            with anyio.move_on_after(max(0.0, min(next_announce, next_publish) - time.monotonic())):
                await self._wake.wait()
            self._wake = anyio.Event()

    async def _guarded(self, what: str, step: Callable[[], Awaitable[object]]) -> None:
        try:
            await step()
        except (HyphalError, OSError) as e:  # TimeoutError too: the next round tries again
            log.warning("mainline %s failed (retried next round): %s", what, e or type(e).__name__)

    async def _bootstrap(self) -> None:
        joined = await self.dht.bootstrap(self.config.bootstrap)
        log.info("mainline: %d nodes in the routing table after bootstrap", joined)

    def _shared(self, entry: SharedFeed) -> None:
        self._fresh.add(discovery_key(entry.key))
        self._wake.set()

    async def _announce_all(self) -> None:
        keys = [discovery_key(entry.key) for entry in self._host.shared_feeds.shared()]
        if self.config.bootstrap_hyphal:
            await self._announce_hash(RENDEZVOUS)
        if self.config.discovery:
            for key in keys:
                await self._announce(key)

    async def _announce(self, key: bytes) -> None:
        await self._announce_hash(info_hash_for(key))

    async def _announce_hash(self, info_hash: bytes) -> None:
        result = await self.dht.announce_peer(info_hash, port=self._host.address[1])
        log.debug("mainline: announced %s on %d nodes", info_hash.hex(), result.stored)

    async def _bootstrap_hyphal(self) -> None:
        """When the hyphal DHT knows nobody, join it through hyphal nodes found on mainline."""
        dht = self._host.dht
        if not len(dht.node.table) and self.config.bootstrap_hyphal:
            seeds = [parse_address(a) for a in await self._peers(RENDEZVOUS)]
            if seeds:
                log.info("mainline: bootstrapping the hyphal DHT from %d peers found on mainline", len(seeds))
                await dht.bootstrap(seeds)
        if len(dht.node.table) and not self.hyphal_joined.is_set():
            # What we announced and put while alone reached nobody: put it again now. (Once; if a
            # node found here joined us first, the same holds.)
            await dht.republish()
            self.hyphal_joined.set()

    # -- discovery ------------------------------------------------------------------------------

    async def _peers(self, info_hash: bytes) -> list[str]:
        own = set(self._host.advertised_addresses()) | {format_address(self._host.address)}
        found = await self.dht.get_peers(info_hash)
        return [a for a in (format_address(p) for p in found.peers) if a not in own]

    async def find_feed_peers(self, key: bytes) -> list[str]:
        """``host:port`` of the peers announced on mainline for discovery key ``key`` (never raises)."""
        try:
            return await self._peers(info_hash_for(key))
        except (HyphalError, OSError) as e:
            log.info("mainline lookup of %s failed: %s", key.hex()[:16], e or type(e).__name__)
            return []

    # -- pointers ------------------------------------------------------------------------------

    async def publish_addresses(self) -> MutableItem:
        """Put this node's address pointer (a new seq if the addresses changed, else the same item)."""
        addresses = tuple(self._host.advertised_addresses())
        item = self.pointer
        if item is None or AddressRecord.decode(item.value).addresses != addresses:
            item = AddressRecord(addresses).sign(self._host.keypair, int(time.time()))
        result = await self.dht.put_item(item)
        self.pointer = item
        log.info("mainline: address pointer seq %d stored on %d nodes", item.seq, result.stored)
        return item

    async def resolve_addresses(self, public_key: bytes) -> list[str]:
        """The addresses node ``public_key`` last published on mainline (verified), or []."""
        item = await self.dht.get_mutable(public_key, ADDRESSES_SALT)
        if item is None:
            return []
        try:
            return list(AddressRecord.decode(item.value).addresses)
        except DecodeError as e:
            self.dht.node.counters.malformed += 1
            log.info("mainline: %s's address pointer is not a hyphal record: %s", public_key.hex()[:16], e)
            return []


__all__ = ["BridgeHost", "MainlineBridge"]
