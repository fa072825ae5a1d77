"""The node: the composition root that owns a device's identity, stores, DHT and connections.

``async with Node(data_dir=..., listen="127.0.0.1:7300", bootstrap=[...]) as node:``
unlocks (or creates) the identity in the data dir, opens the feed store
(SQLite) and the blob store, binds TCP for encrypted connections and UDP on
the same port for the DHT, and routes every channel a peer opens to the
service of its protocol (feeds, manifests, blobs, signed values). Leaving stops everything
in the reverse order and saves the DHT's routing table, so a restart from
the same data dir comes back with its identity, feeds, blobs and table.
``Node()`` without a data dir is ephemeral: a temporary dir, deleted on exit.

The node also runs its share of the replicated secret store on its DHT
(``node.secrets``, :mod:`hyphal.secrets`): it pulls what it is responsible
for when it starts, and hands its share off before the DHT closes.

The node also runs the groups it is in (:mod:`hyphal.groups`): create or
join one, add and fetch files, sync, watch and leave; and, as a backup
server (``backup_for``), the groups members ask it to hold.

Feeds shared outside groups (``node.shared_feeds``, :mod:`hyphal.replication.discovery`)
are announced on the DHT under their discovery keys, so a reader finds them by key alone.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.abc

from hyphal.blobs import BlobStore
from hyphal.blobs.fetch import BlobFetcher
from hyphal.blobs.provider import PROTOCOL as BLOB_PROTOCOL
from hyphal.blobs.provider import BlobProvider
from hyphal.config import IDENTITY_NAME, BlobsConfig, NodeConfig
from hyphal.dht.config import DhtConfig
from hyphal.dht.sqlite_records import SqliteRecordStore
from hyphal.dht.udp import UdpDht
from hyphal.errors import HyphalError, InvalidInput, NotAvailable
from hyphal.feed import Feed, Manifest
from hyphal.files import exclusive_dir
from hyphal.groups.backup import PROTOCOL as BACKUP_PROTOCOL
from hyphal.groups.backup import request_backup
from hyphal.groups.channel import SEEN_FILE, MessageHub
from hyphal.groups.channel_format import PROTOCOL as MESSAGE_PROTOCOL
from hyphal.groups.group import Group
from hyphal.groups.manager import GroupManager
from hyphal.groups.pairing import PROTOCOL as PAIR_PROTOCOL
from hyphal.groups.pairing_service import PairingService
from hyphal.groups.session import PROTOCOL as GROUP_PROTOCOL
from hyphal.groups.state import GroupFile
from hyphal.hashing import derive_key
from hyphal.keystore import load_or_create_identity
from hyphal.lifecycle import close_stack
from hyphal.mainline.config import MainlineConfig
from hyphal.mainline.service import start_mainline
from hyphal.net.address import format_address, parse_address
from hyphal.net.config import ConnectionConfig
from hyphal.net.connection import Channel, ChannelRequest, Connection, Listener
from hyphal.net.endpoint import WEBSOCKET, WS_PREFIX, format_endpoint, parse_endpoint, tcp_addresses
from hyphal.net.pool import ConnectionPool
from hyphal.net.router import ChannelRouter
from hyphal.net.transport import Transport
from hyphal.replication.discovery import FeedDiscovery, SharedFeedFile
from hyphal.replication.driver import FeedReplication
from hyphal.replication.service import PROTOCOLS as FEED_PROTOCOLS
from hyphal.replication.service import FeedService
from hyphal.replication.state import ReplicatorConfig
from hyphal.replication.values import PROTOCOL as VALUE_PROTOCOL
from hyphal.replication.values import ValueService
from hyphal.secrets.config import SecretsConfig
from hyphal.secrets.node_secrets import NodeSecrets
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

if TYPE_CHECKING:
    from hyphal.mainline.bridge import MainlineBridge

log = logging.getLogger("hyphal.node")

FEEDS_DB = "feeds.db"
BLOBS_DIR = "blobs"
DHT_DB = "dht.db"
DHT_TABLE = "dht-table"
GROUPS_FILE = "groups"
SHARED_FEEDS_FILE = "shared-feeds"
SECRETS_FILE = "secrets-owned"
FEED_WRITER_CONTEXT = "hyphal 2026-11 node feed writer"
EPHEMERAL_LISTEN = "127.0.0.1:0"
"""Where a node made without a config listens: loopback, any free port."""


class Node:
    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        config: NodeConfig | None = None,
        listen: str | None = None,
        bootstrap: Sequence[str] | None = None,
        passphrase: str | None = None,
        name: str | None = None,
        advertise: Sequence[str] | None = None,
        backup_for: Iterable[bytes] | None = None,
        transport: Transport | None = None,
        connection: ConnectionConfig | None = None,
        secrets: SecretsConfig | None = None,
        dht: DhtConfig | None = None,
        replication: ReplicatorConfig | None = None,
        blobs: BlobsConfig | None = None,
        mainline: MainlineConfig | None = None,
    ) -> None:
        """``config``: every option at once (:class:`~hyphal.config.NodeConfig`, as the daemon
        reads it from its file); the keywords override its fields. Without it, ``data_dir`` (or a
        temporary dir) and a listen address of ``127.0.0.1:0``.
        ``name``: this device's name in its groups (default: the host name).
        ``advertise``: the ``host:port`` addresses peers reach this node at (default:
        the listen address, or this host's address when listening on a wildcard).
        ``backup_for``: run as a backup server for groups these device keys ask it to hold.
        ``transport``: what connections to peers run over (default: TCP); the DHT stays on UDP.
        ``connection``, ``dht``, ``replication``, ``blobs``, ``secrets``: each service's options
        (the sections of :class:`~hyphal.config.NodeConfig`).
        ``mainline``: the BitTorrent DHT bridge, off unless enabled (:mod:`hyphal.mainline`)."""
        if config is None:
            config = NodeConfig(listen=EPHEMERAL_LISTEN)
        elif data_dir is None:
            data_dir = config.data_dir
        self.config = config.overridden(
            listen=listen,
            bootstrap=bootstrap,
            name=name,
            advertise=advertise,
            connection=connection,
            dht=dht,
            replication=replication,
            blobs=blobs,
            secrets=secrets,
            mainline=mainline,
        )
        """The options this node runs with (its ``data_dir`` is :attr:`data_dir` once started)."""
        self._requested_dir = Path(data_dir) if data_dir is not None else None
        self._listen = parse_address(self.config.listen, allow_port_zero=True)
        self._bootstrap = [parse_address(seed) for seed in self.config.bootstrap]
        self._advertise = [format_endpoint(parse_endpoint(a)) for a in self.config.advertise]
        self._listen_ws = (
            None
            if self.config.listen_ws is None
            else parse_address(self.config.listen_ws, allow_port_zero=True)
        )
        self._websocket: Transport | None = None
        self.ws_listener: Listener | None = None
        """The WebSocket listener, when ``listen_ws`` is set."""
        self._message_hub: MessageHub | None = None
        self._passphrase = passphrase
        self._name = (self.config.name or socket.gethostname() or "device")[:64]
        self._backup_for = None if backup_for is None else frozenset(bytes(k) for k in backup_for)
        self._transport = transport
        self._connection_config = self.config.connection
        self._secrets_config = self.config.secrets
        self._secrets: NodeSecrets | None = None
        self._stack = contextlib.AsyncExitStack()
        self._keypair: KeyPair | None = None
        self._ready: dict[Connection, anyio.Event] = {}
        self._groups: GroupManager | None = None
        self.pairing = PairingService(self)
        """Pairing new devices into groups with a code or password (§17.3)."""
        self.router = ChannelRouter()
        self.feeds = FeedService(self.config.replication)
        self.values = ValueService(self)
        """Signed values this node writes or follows (:mod:`hyphal.replication.values`)."""
        self.mainline: MainlineBridge | None = None
        """The mainline DHT bridge, when ``[mainline] enabled`` (:mod:`hyphal.mainline.bridge`)."""

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await close_stack(self._stack)
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
        stack.enter_context(exclusive_dir(data_dir))
        self._keypair, created = load_or_create_identity(data_dir / IDENTITY_NAME, self._passphrase)
        if created:
            log.info("new identity %s in %s", self._keypair.public_key.hex(), data_dir)
        self.storage = stack.enter_context(SqliteStorage(data_dir / FEEDS_DB))
        self.blobs = stack.enter_context(BlobStore(data_dir / BLOBS_DIR))
        self.blob_provider = BlobProvider(self.blobs)
        self.blobs_served: dict[bytes, int] = {}
        """Blob bytes this node has sent, by the device key of the peer it sent them to."""
        self._blob_channels: dict[Channel, bytes] = {}
        self.blob_provider.on_sent = self._count_served
        self.blob_fetcher = BlobFetcher(self.blobs)
        """Every fetch of a blob the store lacks (groups', :meth:`fetch_blob`'s): one download per hash."""
        for protocol in FEED_PROTOCOLS:
            self.router.route(protocol, self.feeds.handle)
        self.router.route(BLOB_PROTOCOL, self._serve_blobs)
        self.router.route(GROUP_PROTOCOL, self._route_group)
        self.router.route(BACKUP_PROTOCOL, self._route_backup)
        self.router.route(VALUE_PROTOCOL, self.values.handle)
        self.router.route(MESSAGE_PROTOCOL, self._route_messages)
        self.router.route(PAIR_PROTOCOL, self.pairing.handle)
        self._message_hub = MessageHub(data_dir / SEEN_FILE)
        self._message_hub.open()
        stack.callback(self._message_hub.close)
        await stack.enter_async_context(self.router)
        await stack.enter_async_context(self.feeds)
        await stack.enter_async_context(self.values)
        self.pool = await stack.enter_async_context(
            ConnectionPool(
                self.keypair,
                config=self._connection_config,
                handler=self._serve_connection,
                transport=self._transport,
            )
        )
        host, port = self._listen
        self.listener: Listener = await self.pool.listen(host, port)
        bound_host, bound_port = self.listener.addresses[0]
        if self._listen_ws is not None:
            self.ws_listener = await self.pool.listen(*self._listen_ws, transport=self._ws_transport())
        if not self._advertise:
            self._advertise = [format_address((_reachable_host(bound_host), bound_port))]
            if self.ws_listener is not None:
                ws_host, ws_port = self.ws_listener.addresses[0]
                self._advertise.append(WS_PREFIX + format_address((_reachable_host(ws_host), ws_port)))
        # The DHT listens on the same port number, over UDP.
        dht_store = SqliteRecordStore(str(data_dir / DHT_DB))
        stack.callback(dht_store.close)
        self.dht = await stack.enter_async_context(
            self._dht_driver(
                host=host,
                port=bound_port,
                seeds=self._bootstrap,
                addresses=tcp_addresses(self._advertise),
                state_path=data_dir / DHT_TABLE,
                store=dht_store,
            )
        )
        self._secrets = NodeSecrets(self.dht, self.keypair, data_dir / SECRETS_FILE, self._secrets_config)
        # Registered after the DHT: the hand-off runs before the DHT closes.
        stack.push_async_callback(self._secrets.hand_off)
        await self._secrets.pull()
        # Shared feeds: announced on the DHT under their discovery keys, found by key alone.
        self.shared_feeds = FeedDiscovery(self, SharedFeedFile(data_dir / SHARED_FEEDS_FILE, self.keypair))
        await stack.enter_async_context(self.shared_feeds)
        await self.shared_feeds.start()
        self.mainline = await start_mainline(self, self.config.mainline, stack)
        self._groups = GroupManager(
            self,
            GroupFile(data_dir / GROUPS_FILE, self.keypair),
            member_name=self._name,
            backup_for=self._backup_for,
        )
        await stack.enter_async_context(self._groups)
        await self._groups.start()
        if self.config.blobs.gc_interval is not None:
            tasks = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tasks.cancel_scope.cancel)  # runs first on exit: the loop never ends
            tasks.start_soon(self._collect_garbage_every, self.config.blobs.gc_interval)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Newest first: the connections this node dialled, the DHT, the listener (and the
        # connections it accepted), the services, then the stores.
        # (No shielding scope around this: the task groups inside were entered before it.)
        await close_stack(self._stack)
        self._groups = None
        self._secrets = None

    def _dht_driver(self, **options: Any) -> UdpDht:
        """The DHT driver, given ``UdpDht``'s options (the simulator's node overrides it)."""
        return UdpDht(self.keypair, config=self.config.dht, **options)

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
        """The TCP (and UDP) address this node is bound to."""
        return self.listener.addresses[0]

    def advertised_addresses(self) -> list[str]:
        """``host:port`` (and ``ws://host:port``) addresses peers reach this node at (put in
        adverts and invites)."""
        return list(self._advertise)

    @property
    def ws_address(self) -> tuple[str, int] | None:
        """The WebSocket address this node is bound to, if it listens on one."""
        return None if self.ws_listener is None else self.ws_listener.addresses[0]

    @property
    def message_hub(self) -> MessageHub:
        """The seen-message window and rate limits of the groups' message channels."""
        if self._message_hub is None:
            raise InvalidInput("the node is not running (use `async with Node(...)`)")
        return self._message_hub

    def _ws_transport(self) -> Transport:
        if self._websocket is None:
            from hyphal.net.websocket import WebSocketTransport  # loads `websockets` only when used

            self._websocket = WebSocketTransport()
        return self._websocket

    # -- connections -------------------------------------------------------------------------

    async def connect(
        self,
        host: str,
        port: int,
        *,
        expected_remote: bytes | None = None,
        transport: Transport | None = None,
    ) -> Connection:
        """Dial a node (or reuse the connection to it); its feeds, groups and channels are
        attached and routed when this returns, until it closes. ``transport``: the node's
        (TCP) unless given."""
        if self._groups is None:
            raise InvalidInput("the node is not running (use `async with Node(...)`)")
        connection = await self.pool.connect(host, port, expected_remote=expected_remote, transport=transport)
        ready = self._ready.setdefault(connection, anyio.Event())
        async with anyio.create_task_group() as tg:
            # Ready, or closed first (a duplicate the pool dropped): never wait on a dead one.
            async def settle(wait: Callable[[], Awaitable[object]]) -> None:
                await wait()
                tg.cancel_scope.cancel()

            tg.start_soon(settle, ready.wait)
            tg.start_soon(settle, connection.closed.wait)
        if not ready.is_set():
            self._ready.pop(connection, None)
            raise NotAvailable(
                f"the connection to {host}:{port} closed: {connection.close_reason or 'no reason'}"
            )
        return connection

    async def dial(self, address: str, expected_remote: bytes | None = None) -> Connection:
        """:meth:`connect` to ``"host:port"`` (over WebSocket for ``"ws://host:port"``); the
        connection to that peer if there is one."""
        if expected_remote is not None:
            found = self.pool.get(expected_remote)
            if found is not None and not found.closed.is_set():
                return found
        endpoint = parse_endpoint(address)
        transport = self._ws_transport() if endpoint.transport == WEBSOCKET else None
        host, port = endpoint.address
        return await self.connect(host, port, expected_remote=expected_remote, transport=transport)

    async def _serve_connection(self, connection: Connection) -> None:
        ready = self._ready.setdefault(connection, anyio.Event())
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.router.serve, connection)
                await self.feeds.connected(connection)
                await self.values.connected(connection)
                if self._groups is not None:
                    await self._groups.connected(connection)
                ready.set()
                await connection.closed.wait()
                tg.cancel_scope.cancel()
        finally:
            ready.set()
            self._ready.pop(connection, None)

    async def fetch_blob(self, blob_hash: bytes, *, tag: str, timeout: float | None = None) -> None:
        """Make the blob ``blob_hash`` complete in the store, tagged ``tag``: fetched from every
        peer this node is connected to, striped, unless it is here or on its way already."""

        def peers() -> list[Connection]:
            found = self.pool.connections()
            if not found:
                raise NotAvailable(f"blob {blob_hash.hex()} is not here, and no peer is connected")
            return found

        await self.blob_fetcher.fetch(
            blob_hash, peers, tag=tag, what=f"blob {blob_hash.hex()}", timeout=timeout
        )

    async def collect_garbage(self) -> tuple[list[bytes], int]:
        """Delete every blob nothing references (a tag, a group's file, a download, a
        collection that is kept); returns their hashes and the bytes freed."""
        if self._groups is not None:
            self._groups.release_unreferenced_blobs()
        sizes = {info.hash: info.size for info in self.blobs.blobs()}
        deleted = await anyio.to_thread.run_sync(self.blobs.gc)
        return deleted, sum(sizes.get(h, 0) for h in deleted)

    async def _collect_garbage_every(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                deleted, freed = await self.collect_garbage()
            except (OSError, HyphalError) as exc:  # a full disk, say: try again next time
                log.warning("blob gc failed: %s", exc)
            else:
                if deleted:
                    log.info("blob gc freed %d blobs, %d bytes", len(deleted), freed)

    async def _serve_blobs(self, request: ChannelRequest) -> bool:
        channel = await request.accept()
        self._blob_channels[channel] = request.connection.remote_public_key
        try:
            await self.blob_provider.serve_channel(channel)
        finally:
            del self._blob_channels[channel]
        return True

    def _count_served(self, channel: Channel, sent: int) -> None:
        peer = self._blob_channels.get(channel)
        if peer is not None:
            self.blobs_served[peer] = self.blobs_served.get(peer, 0) + sent

    async def _route_group(self, request: ChannelRequest) -> bool:
        return self._groups is not None and await self._groups.handle_group_channel(request)

    async def _route_backup(self, request: ChannelRequest) -> bool:
        return self._groups is not None and await self._groups.handle_backup_channel(request)

    async def _route_messages(self, request: ChannelRequest) -> bool:
        # Only on a connection whose peer proved membership on the group channel (§16.1).
        group = None if self._groups is None else self._groups.by_discovery_key(request.id)
        if group is None or request.connection not in group.replication.member_connections():
            return False
        await group.channel.attach_peer(request.connection)
        return True

    # -- secrets ---------------------------------------------------------------------------

    @property
    def secrets(self) -> NodeSecrets:
        """The replicated secret store, used as this node's identity (see :class:`NodeSecrets`)."""
        if self._secrets is None:
            raise InvalidInput("the node is not running (use `async with Node(...)`)")
        return self._secrets

    # -- groups ------------------------------------------------------------------------------

    @property
    def group_manager(self) -> GroupManager:
        if self._groups is None:
            raise InvalidInput("the node is not running (use `async with Node(...)`)")
        return self._groups

    async def create_group(self, name: str, *, member_name: str | None = None) -> Group:
        """A new group with this device as its first member (see :meth:`Group.invite`)."""
        return await self.group_manager.create(name, member_name)

    async def join_group(self, uri: str, *, member_name: str | None = None, timeout: float = 20.0) -> Group:
        """Join a group with an invite URI (``hyphal://group/<id>?...``)."""
        return await self.group_manager.join(uri, member_name, timeout)

    def group(self, ref: str) -> Group:
        """A group this node holds, by id (or a unique prefix) or name."""
        return self.group_manager.get(ref)

    def groups(self) -> list[Group]:
        return self.group_manager.list()

    async def close_group(self, ref: str) -> None:
        """Stop running a group on this node without leaving it (see :meth:`open_group`)."""
        await self.group_manager.close(ref)

    async def open_group(self, ref: str) -> Group:
        """Run a group closed with :meth:`close_group` again."""
        return await self.group_manager.open(ref)

    async def leave_group(self, ref: str) -> None:
        """Leave a group: members and the DHT drop this device's repo and addresses."""
        await self.group_manager.leave(ref)

    async def add_backup(self, ref: str, address: str, expected_remote: bytes | None = None) -> None:
        """Ask the backup server at ``address`` to hold group ``ref`` (it must be authorised
        for this device's key); it then holds every member's repo and blob, as ciphertext
        for private ones, and serves them to members."""
        group = self.group(ref)
        await request_backup(group, await self.dial(address, expected_remote))

    def save_groups(self) -> None:
        if self._groups is not None:
            self._groups.save()

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


def _reachable_host(bound: str) -> str:
    """The host to advertise for a listener bound to ``bound``: itself, or for a wildcard the
    address this host's default route leaves from (a UDP connect sends nothing)."""
    if bound not in ("0.0.0.0", "::"):
        return bound
    family = socket.AF_INET6 if bound == "::" else socket.AF_INET
    probe = "2001:db8::1" if bound == "::" else "192.0.2.1"
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            return str(sock.getsockname()[0])
    except OSError:
        return "::1" if bound == "::" else "127.0.0.1"


__all__ = ["Node"]
