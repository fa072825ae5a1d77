"""The node: the composition root that owns a device's identity, stores, DHT and connections.

``async with Node(data_dir=..., listen="127.0.0.1:7300", bootstrap=[...]) as node:``
unlocks (or creates) the identity in the data dir, opens the feed store
(SQLite) and the blob store, binds TCP for encrypted connections and UDP on
the same port for the DHT, and routes every channel a peer opens to the
service of its protocol (feeds, manifests, blobs). Leaving stops everything
in the reverse order and saves the DHT's routing table, so a restart from
the same data dir comes back with its identity, feeds, blobs and table.
``Node()`` without a data dir is ephemeral: a temporary dir, deleted on exit.

Groups, the CLI daemon and the backup server build on this (issue 6).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
import anyio.abc

from hyphal.blobs import BlobStore
from hyphal.blobs.provider import PROTOCOL as BLOB_PROTOCOL
from hyphal.blobs.provider import BlobProvider
from hyphal.config import IDENTITY_NAME
from hyphal.dht.store import SqliteStore
from hyphal.dht.udp import UdpDht, parse_address
from hyphal.errors import InvalidInput
from hyphal.feed import Feed, Manifest
from hyphal.hashing import derive_key
from hyphal.keystore import load_or_create_identity
from hyphal.net.channel import ChannelRequest
from hyphal.net.connection import Connection, Listener, connect, listen
from hyphal.net.router import ChannelRouter
from hyphal.replication.driver import FeedReplication
from hyphal.replication.service import PROTOCOLS as FEED_PROTOCOLS
from hyphal.replication.service import FeedService
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

log = logging.getLogger("hyphal.node")

FEEDS_DB = "feeds.db"
BLOBS_DIR = "blobs"
DHT_DB = "dht.db"
DHT_TABLE = "dht-table"
FEED_WRITER_CONTEXT = "hyphal 2026-11 node feed writer"


class Node:
    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        listen: str = "127.0.0.1:0",
        bootstrap: Sequence[str] = (),
        passphrase: str | None = None,
    ) -> None:
        self._requested_dir = Path(data_dir) if data_dir is not None else None
        self._listen = parse_address(listen)
        self._bootstrap = [parse_address(seed) for seed in bootstrap]
        self._passphrase = passphrase
        self._stack = contextlib.AsyncExitStack()
        self._group: anyio.abc.TaskGroup | None = None
        self._keypair: KeyPair | None = None
        self.router = ChannelRouter()
        self.feeds = FeedService()

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        stack = self._stack
        if self._requested_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hyphal-node-")))
        else:
            data_dir = self._requested_dir
            data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self._keypair, created = load_or_create_identity(data_dir / IDENTITY_NAME, self._passphrase)
        if created:
            log.info("new identity %s in %s", self._keypair.public_key.hex(), data_dir)
        self.storage = stack.enter_context(SqliteStorage(data_dir / FEEDS_DB))
        self.blobs = stack.enter_context(BlobStore(data_dir / BLOBS_DIR))
        self.blob_provider = BlobProvider(self.blobs)
        for protocol in FEED_PROTOCOLS:
            self.router.route(protocol, self.feeds.handle)
        self.router.route(BLOB_PROTOCOL, self._serve_blobs)
        await stack.enter_async_context(self.router)
        await stack.enter_async_context(self.feeds)
        host, port = self._listen
        self.listener: Listener = await stack.enter_async_context(
            await listen(host, port, self.keypair, self._on_connection)
        )
        # The DHT listens on the same port number, over UDP.
        dht_store = SqliteStore(str(data_dir / DHT_DB))
        stack.callback(dht_store.close)
        self.dht = await stack.enter_async_context(
            UdpDht(
                self.keypair,
                host=host,
                port=self.listener.port,
                seeds=self._bootstrap,
                state_path=data_dir / DHT_TABLE,
                store=dht_store,
            )
        )
        self._group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(self._group.cancel_scope.cancel)  # runs before the group is left

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Newest first: the connections this node dialled, the DHT, the listener (and the
        # connections it accepted), the services, then the stores.
        # (No shielding scope around this: the task groups inside were entered before it.)
        await self._stack.aclose()
        self._group = None

    # -- identity ----------------------------------------------------------------------------

    @property
    def keypair(self) -> KeyPair:
        if self._keypair is None:
            raise InvalidInput("the node is not running (use `async with Node(...)`)")
        return self._keypair

    @property
    def public_key(self) -> bytes:
        return self.keypair.public_key

    @property
    def address(self) -> tuple[str, int]:
        """The TCP (and UDP) address peers reach this node at."""
        return self.listener.addresses[0]

    # -- connections -------------------------------------------------------------------------

    async def connect(self, host: str, port: int, *, expected_remote: bytes | None = None) -> Connection:
        """Dial a node; its feeds and ours are attached, and its channels routed, until it closes."""
        if self._group is None:
            raise InvalidInput("the node is not running (use `async with Node(...)`)")
        connection = await connect(host, port, self.keypair, expected_remote=expected_remote)
        await self._group.start(self._run_connection, connection)
        return connection

    async def _run_connection(
        self, connection: Connection, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        async with connection:
            task_status.started()
            await self._serve_connection(connection)

    async def _on_connection(self, connection: Connection) -> None:
        await self._serve_connection(connection)

    async def _serve_connection(self, connection: Connection) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.router.serve, connection)
            await self.feeds.connected(connection)
            await connection.closed.wait()
            tg.cancel_scope.cancel()

    async def _serve_blobs(self, request: ChannelRequest) -> bool:
        channel = await request.accept()
        await self.blob_provider.serve_channel(channel)
        return True

    # -- feeds -------------------------------------------------------------------------------

    def feed_writer(self, name: str) -> KeyPair:
        """The writer key of this node's feed ``name``: derived from the node's seed, so a
        restart finds it again without storing another secret."""
        if not name:
            raise InvalidInput("a feed name cannot be empty")
        return KeyPair(derive_key(FEED_WRITER_CONTEXT, self.keypair.seed + name.encode("utf-8")))

    async def own_feed(self, name: str, *, encrypted: bool = False) -> FeedReplication:
        """This node's feed ``name`` (created on first use), writable, replicated to every connection."""
        writer = self.feed_writer(name)
        key = Manifest.single(writer.public_key).key
        if self.storage.load_feed(key) is None:
            feed = Feed.create(self.storage, writer, encrypted=encrypted)
        else:
            feed = Feed.open(self.storage, key, keypair=writer)
        return await self.feeds.add(feed)

    async def follow_feed(self, key: bytes, manifest: Manifest | None = None) -> FeedReplication:
        """Replicate the feed ``key`` (its ``manifest`` the first time) from every connection."""
        return await self.feeds.add(Feed.open(self.storage, key, manifest=manifest))


__all__ = ["Node"]
