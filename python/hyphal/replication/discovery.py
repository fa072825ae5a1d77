"""Feeds shared by key alone: announcing the feeds a node shares on the DHT, and finding them.

A node *shares* the feeds it made with :meth:`FeedDiscovery.create` and the
ones it opened from a share string (:mod:`hyphal.feed.share`). Each is
replicated by the node's :class:`~hyphal.replication.service.FeedService`
and announced on the DHT under its *discovery key* (a hash of the feed key:
the DHT never sees the key, nor a read secret), with the node's addresses.
The DHT republishes an announce every half TTL at most, so it never lapses
while the node runs. A reader looks the discovery key up, dials the
announcers (their node keys are pinned by the announce's signature),
fetches the manifest from one (§10.7: only a peer that proves it knows the
key gets it), and replicates with proofs as every feed does.

Shared feeds are kept in the ``shared-feeds`` file of the data dir, sealed
under a key from the node's identity (it holds read secrets), so a restart
runs and announces them again.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from hyphal.dht.udp import UdpDht
from hyphal.errors import DecodeError, DecryptionError, HyphalError, NotAvailable, Unauthorized
from hyphal.feed import Feed, Manifest
from hyphal.feed.share import PRIVATE_LABEL, FeedShare
from hyphal.files import read_sealed_list, write_sealed_list
from hyphal.hashing import derive_key
from hyphal.lifecycle import TaskOwner
from hyphal.net.address import format_address, parse_address
from hyphal.net.connection import Connection
from hyphal.replication.driver import FeedReplication
from hyphal.replication.manifest_exchange import fetch_manifest
from hyphal.replication.service import FeedService
from hyphal.signing import KeyPair
from hyphal.storage.base import Storage

log = logging.getLogger("hyphal.feeds")

ANNOUNCE_TTL = 1200
"""Seconds an announce lives; the DHT republishes it every ``min(republish_interval, TTL / 2)``."""
ANNOUNCE_WAIT = 10.0
"""How long :meth:`FeedDiscovery.create` waits for the first announce to land (it goes on after)."""
FIND_TIMEOUT = 20.0
DIAL_TIMEOUT = 5.0
RETRY_INTERVAL = 1.0
"""Between DHT lookups while nobody is found yet: an announce may still be on its way."""
MAGIC = b"hyphalF1"
FILE_KEY_CONTEXT = "hyphal 2026-11 node shared feeds file"


class DiscoveryHost(Protocol):
    """What feed discovery needs from the node."""

    @property
    def keypair(self) -> KeyPair: ...

    @property
    def dht(self) -> UdpDht: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def feeds(self) -> FeedService: ...

    def advertised_addresses(self) -> list[str]: ...

    def feed_writer(self, name: str) -> KeyPair: ...

    async def dial(self, address: str, expected_remote: bytes | None = None) -> Connection: ...


@dataclass(frozen=True, slots=True)
class SharedFeed:
    """One shared feed as saved: its key, the writer name it was made under, its read secret."""

    key: bytes
    name: str | None = None
    read_secret: bytes | None = None

    def to_wire(self) -> dict[str, str]:
        wire = {"key": self.key.hex()}
        if self.name is not None:
            wire["name"] = self.name
        if self.read_secret is not None:
            wire["read"] = self.read_secret.hex()
        return wire

    @classmethod
    def from_wire(cls, wire: object) -> SharedFeed:
        if not isinstance(wire, dict) or not isinstance(wire.get("key"), str):
            raise DecodeError("a shared feed entry is an object with a key")
        name, read = wire.get("name"), wire.get("read")
        try:
            return cls(
                bytes.fromhex(wire["key"]),
                name if isinstance(name, str) else None,
                bytes.fromhex(read) if isinstance(read, str) else None,
            )
        except ValueError:
            raise DecodeError("a shared feed entry's key or read secret is not hex") from None


class SharedFeedFile:
    """The sealed ``shared-feeds`` file in a node's data dir."""

    def __init__(self, path: Path, identity: KeyPair) -> None:
        self.path = path
        self._key = derive_key(FILE_KEY_CONTEXT, identity.seed)

    def load(self) -> list[SharedFeed]:
        return [
            SharedFeed.from_wire(entry)
            for entry in read_sealed_list(self.path, self._key, MAGIC, "shared-feeds")
        ]

    def save(self, entries: list[SharedFeed]) -> None:
        write_sealed_list(self.path, self._key, MAGIC, [entry.to_wire() for entry in entries])


def short(key: bytes) -> str:
    return key.hex()[:16] + "…"


PeerFinder = Callable[[bytes], Awaitable[list[str]]]
"""Another way to find a feed's peers by discovery key: ``host:port`` addresses (the mainline bridge)."""


class FeedDiscovery(TaskOwner):
    """The feeds a node shares, announced on the DHT, and finding others' (see the module docstring)."""

    def __init__(self, host: DiscoveryHost, file: SharedFeedFile) -> None:
        self._host = host
        self._file = file
        self._shared: dict[bytes, SharedFeed] = {}
        self._locks: dict[bytes, anyio.Lock] = {}
        self.finders: list[PeerFinder] = []
        """Asked besides the DHT when looking for a feed's peers (their peers' keys are not pinned)."""
        self.on_shared: list[Callable[[SharedFeed], None]] = []
        """Told of each feed this node starts sharing (to announce it elsewhere too)."""

    async def start(self) -> None:
        """Run and announce every feed shared before a restart; readers find their peers again."""
        for entry in self._file.load():
            self._shared[entry.key] = entry
            try:
                replication = await self._open_stored(entry)
            except HyphalError as exc:
                log.warning("not sharing feed %s again: %s", short(entry.key), exc)
                continue
            self._spawn(self._announce, replication.feed)
            if not replication.feed.writable:
                self._spawn(self._reconnect, FeedShare(entry.key, entry.read_secret))

    def shared(self) -> list[SharedFeed]:
        return list(self._shared.values())

    def share_of(self, feed: Feed) -> FeedShare:
        """The share string of a feed: its key, and its read secret when it is private."""
        return FeedShare(feed.key, feed.read_secret if feed.encrypted else None)

    # -- writing ---------------------------------------------------------------------

    async def create(self, *, encrypted: bool = False, name: str | None = None) -> FeedReplication:
        """A new feed this node writes (its key derived from the node's seed and ``name``, a random
        one by default), replicated and announced on the DHT."""
        name = name or secrets.token_hex(8)
        writer = self._host.feed_writer(name)
        label = PRIVATE_LABEL if encrypted else b""
        storage = self._host.storage
        # The label marks a private feed in its manifest, so it is part of the key too.
        key = Manifest.single(writer.public_key, label).key
        if storage.load_feed(key) is None:
            feed = Feed.create(storage, writer, encrypted=encrypted, label=label)
        else:
            feed = Feed.open(storage, key, keypair=writer)
        replication = await self._host.feeds.add(feed)
        self._remember(SharedFeed(feed.key, name, None))
        with anyio.move_on_after(ANNOUNCE_WAIT):
            await self._announce(feed)
        return replication

    def writable(self, share: FeedShare) -> FeedReplication:
        """The running replication of a feed this node writes; :class:`Unauthorized` otherwise."""
        live = self._host.feeds.get(share.discovery_key)
        if live is not None and live.feed.writable:
            return live
        what = "holds it only as a reader" if live is not None else "does not hold it"
        raise Unauthorized(
            f"this node cannot write feed {short(share.key)} (it {what}): "
            "append to a feed made here with `hyphal feed create`"
        )

    # -- reading ---------------------------------------------------------------------

    async def open(self, share: FeedShare, *, timeout: float = FIND_TIMEOUT) -> FeedReplication:
        """The running replication of ``share``'s feed: held here, or found through the DHT.

        Raises :class:`NotAvailable` when no writer or reader is found on the DHT within
        ``timeout`` seconds, and :class:`DecryptionError` for a private feed without its read secret.
        """
        lock = self._locks.setdefault(share.key, anyio.Lock())
        async with lock:
            live = self._host.feeds.get(share.discovery_key)
            if live is None and self._host.storage.load_feed(share.key) is not None:
                entry = self._shared.get(share.key)
                if share.read_secret is not None or entry is None:
                    entry = SharedFeed(share.key, entry.name if entry else None, share.read_secret)
                live = await self._open_stored(entry)
            if live is None:
                live = await self._find_and_follow(share, timeout)
            elif not live.feed.writable and live.peer_count == 0:
                # Held here, but no peer to refresh it from: look for one, and serve what is here if
                # nobody is found.
                try:
                    await self._connect(share, timeout)
                except NotAvailable as exc:
                    log.info("feed %s: serving the copy held here: %s", short(share.key), exc)
            _check_readable(live.feed, share)
            if share.key not in self._shared or share.read_secret is not None:
                old = self._shared.get(share.key)
                self._remember(SharedFeed(share.key, old.name if old else None, share.read_secret))
                self._spawn(self._announce, live.feed)
            return live

    async def _find_and_follow(self, share: FeedShare, timeout: float) -> FeedReplication:
        connections = await self._connect(share, timeout)
        manifest = None
        failures: list[str] = []
        for connection in connections:
            try:
                manifest = await fetch_manifest(connection, share.key, timeout=DIAL_TIMEOUT)
                break
            except (HyphalError, TimeoutError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
                failures.append(f"{connection}: {exc or 'timed out'}")  # closed: a duplicate, say
        if manifest is None:
            raise NotAvailable(
                f"the peers announcing feed {short(share.key)} sent no manifest ({'; '.join(failures)})"
            )
        if manifest.label == PRIVATE_LABEL and share.read_secret is None:
            raise DecryptionError(_private_message(share.key))
        feed = Feed.open(self._host.storage, share.key, manifest=manifest, read_secret=share.read_secret)
        return await self._host.feeds.add(feed)

    async def _connect(self, share: FeedShare, timeout: float) -> list[Connection]:
        """Connections to the peers announcing ``share``'s feed (at least one), or :class:`NotAvailable`."""
        own = self._host.keypair.public_key
        unreachable: list[str] = []
        with anyio.move_on_after(timeout):
            while True:
                result = await self._host.dht.lookup(share.discovery_key)
                connections: list[Connection] = []
                unreachable = []
                for announce in result.announces:
                    if announce.public_key == own:
                        continue
                    connection = await self._dial_any(announce.public_key, announce.addresses, unreachable)
                    if connection is not None:
                        connections.append(connection)
                # Other finders only when the DHT found nobody: they cost more (mainline is someone
                # else's network), and a peer dialled twice is a duplicate the pool closes.
                for finder in self.finders if not connections else ():
                    for text in await finder(share.discovery_key):
                        connection = await self._dial_any(None, (parse_address(text),), unreachable)
                        keys = {c.remote_public_key for c in connections}
                        if connection is not None and connection.remote_public_key not in keys:
                            connections.append(connection)
                if connections:
                    log.info("feed %s: %d peer(s) found on the DHT", short(share.key), len(connections))
                    return connections
                await anyio.sleep(RETRY_INTERVAL)
        if unreachable:
            raise NotAvailable(
                f"feed {short(share.key)} is announced on the DHT, but no announcer answered "
                f"({', '.join(unreachable[:4])}) in {timeout:g} s: check that its node runs and is reachable"
            )
        raise NotAvailable(
            f"no writer or reader of feed {short(share.key)} was found on the DHT in {timeout:g} s: "
            "check the key, and that a node holding the feed is running in the same DHT"
        )

    async def _dial_any(
        self, public_key: bytes | None, addresses: tuple[tuple[str, int], ...], unreachable: list[str]
    ) -> Connection | None:
        for address in addresses:
            text = format_address(address)
            try:
                with anyio.fail_after(DIAL_TIMEOUT):
                    return await self._host.dial(text, expected_remote=public_key)
            except (HyphalError, OSError) as exc:  # TimeoutError is an OSError
                who = short(public_key) if public_key is not None else "(key not known yet)"
                log.info("feed peer %s at %s did not answer: %s", who, text, exc or "timed out")
                unreachable.append(text)
        return None

    async def _reconnect(self, share: FeedShare) -> None:
        try:
            await self._connect(share, FIND_TIMEOUT)
        except NotAvailable as exc:
            log.info("feed %s: %s", short(share.key), exc)

    # -- shared state -----------------------------------------------------------------

    async def _open_stored(self, entry: SharedFeed) -> FeedReplication:
        writer = self._host.feed_writer(entry.name) if entry.name is not None else None
        feed = Feed.open(self._host.storage, entry.key, keypair=writer, read_secret=entry.read_secret)
        return await self._host.feeds.add(feed)

    def _remember(self, entry: SharedFeed) -> None:
        self._shared[entry.key] = entry
        self._file.save(list(self._shared.values()))
        for listener in self.on_shared:
            listener(entry)

    async def _announce(self, feed: Feed) -> None:
        """Announce this node as a peer of ``feed`` (the DHT republishes it from now on)."""
        host = self._host
        addresses = [parse_address(a) for a in host.advertised_addresses()]
        try:
            result = await host.dht.announce(host.keypair, feed.discovery_key, addresses, ANNOUNCE_TTL)
        except (HyphalError, TimeoutError) as exc:
            log.warning("announcing feed %s failed (retried at the next republish): %s", short(feed.key), exc)
            return
        log.info("announced feed %s on %d DHT node(s)", short(feed.key), result.stored)


def _private_message(key: bytes) -> str:
    return (
        f"feed {short(key)} is private and this node has no read secret for it: "
        "use the full share string (hyphal://feed/<key>?r=<secret>) its writer printed"
    )


def _check_readable(feed: Feed, share: FeedShare) -> None:
    if feed.manifest.label == PRIVATE_LABEL and not feed.can_decrypt and share.read_secret is None:
        raise DecryptionError(_private_message(share.key))


__all__ = ["ANNOUNCE_TTL", "DiscoveryHost", "FeedDiscovery", "PeerFinder", "SharedFeed", "SharedFeedFile"]
