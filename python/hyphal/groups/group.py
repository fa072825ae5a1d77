"""A group as a running node holds it: members, repos, files, sync, watch, leave.

A :class:`Group` ties the group layer's pieces to a node's services:

- membership: a :class:`~hyphal.groups.replication.GroupReplication` on the
  group channel of every connection to a member, seeded with the adverts
  saved in the node's groups file and those found in the DHT (members
  announce under the group's discovery key and store their sealed adverts
  as mutable records there, §14.6);
- repos: this device's own repo (a writable feed) and every other member's,
  followed live through the node's :class:`~hyphal.replication.service.FeedService`;
- files: blobs in the node's blob store, fetched on demand (or all at once by
  :meth:`Group.sync_all`) from every member connection at once;
- a dialer that keeps connections to the members it knows addresses for.

A backup server holds a group by its grant (§14.3) instead of its secret: it
has no repo, follows every member's and fetches every blob as it appears,
and cannot open private blobs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from hyphal.blobs import BlobStore
from hyphal.blobs.downloader import DownloadFailed, download_blob
from hyphal.blobs.private import (
    PrivateBlob,
    export_private_file,
    import_private_bytes,
    import_private_file,
    iter_private,
)
from hyphal.blobs.store import TempTag
from hyphal.blobs.transfer import DownloadConfig
from hyphal.clock import wall_time
from hyphal.dht.udp import UdpDht, format_address
from hyphal.errors import HyphalError, InvalidInput, NotAvailable
from hyphal.groups.events import (
    FileAdded,
    FileInfo,
    FileRemoved,
    GroupEvent,
    MemberJoined,
    MemberLeft,
    RepoAdded,
    SyncProgress,
    SyncResult,
)
from hyphal.groups.invite import Invite, b32
from hyphal.groups.keys import GroupKeys
from hyphal.groups.members import Change, Member, MemberAdvert, sign_advert
from hyphal.groups.replication import GroupReplication
from hyphal.groups.repo import Delete, Op, Put, Repo, check_name
from hyphal.groups.session import AdvertAccepted
from hyphal.groups.state import GroupRecord
from hyphal.lifecycle import TaskOwner
from hyphal.net.connection import Connection
from hyphal.notifier import Notifier
from hyphal.replication.service import FeedService
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair
from hyphal.storage.base import Storage

log = logging.getLogger("hyphal.groups")

NO_REPO = bytes(32)
"""The repo writer key in a backup server's advert: it has no repo."""
GROUP_INFO_LABEL = b"group info"
DIAL_TIMEOUT = 10.0
DIAL_BACKOFF = (1.0, 60.0)
DISCOVER_INTERVAL = 60.0
DHT_TIMEOUT = 20.0
SYNC_CONCURRENCY = 16
STRIPE_MIN = 1 << 20
"""Blobs smaller than this are fetched from one provider; larger ones striped over all."""
SINGLE_PROVIDER = DownloadConfig(no_provider_timeout=0.05)
"""A one-provider attempt gives up at once when its provider lacks the blob."""
WATCH_BUFFER = 10_000


class GroupHost(Protocol):
    """What a group needs from the node that runs it."""

    @property
    def keypair(self) -> KeyPair: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def blobs(self) -> BlobStore: ...

    @property
    def feeds(self) -> FeedService: ...

    @property
    def dht(self) -> UdpDht: ...

    @property
    def blob_fetches(self) -> dict[bytes, anyio.Event]:
        """Blobs being fetched on this node, each with an event set when its fetch ends."""
        ...

    def advertised_addresses(self) -> list[str]: ...

    async def dial(self, address: str, expected_remote: bytes | None = None) -> Connection: ...

    def save_groups(self) -> None: ...


def blob_tag(blob_hash: bytes) -> str:
    """The store tag that keeps a group file's blob from garbage collection."""
    return "group-blob/" + blob_hash.hex()


class Group(TaskOwner):
    """One group on a running node. Made and entered by the node's group manager."""

    def __init__(self, host: GroupHost, record: GroupRecord) -> None:
        self._host = host
        self.record = record
        if record.secret is not None:
            self.keys = GroupKeys(record.group_key, record.secret)
        else:
            assert record.grant is not None
            self.keys = GroupKeys.from_grant(record.grant)
        self.replication = GroupReplication(self.keys)
        for raw in record.adverts:
            try:
                self.replication.membership.merge(SignedValue.decode(raw))
            except HyphalError as exc:  # the file is ours and sealed: only a bug gets here
                log.warning("group %s: a saved advert does not verify: %s", self.id, exc)
        self.own_repo: Repo | None = None
        self.repos: dict[bytes, Repo] = {}
        """Every other member's repo this node follows, by member device key."""
        self._following: dict[bytes, anyio.Event] = {}
        self._attached: dict[Connection, anyio.Event] = {}
        self._watchers: list[MemoryObjectSendStream[GroupEvent]] = []
        self._wake_dialer = anyio.Event()
        self._backoff: dict[bytes, tuple[float, float]] = {}
        self._last_discovery = -math.inf
        self._mirror_wanted = anyio.Event()
        self._next_provider = 0
        self.fetched: Notifier[FileInfo] = Notifier()
        """Each file whose blob became complete here by a fetch."""
        self._unsubscribe: list[Callable[[], None]] = []
        self._stack = contextlib.AsyncExitStack()

    # -- identity ----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The group key in base32: the ``<id>`` of its invites, safe to show and log."""
        return b32(self.keys.group_key)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def is_backup(self) -> bool:
        """This node backs the group up (it holds a grant, not the secret)."""
        return not self.keys.is_member

    @property
    def device_key(self) -> bytes:
        return self._host.keypair.public_key

    def invite(self) -> Invite:
        """An invite to this group: its secret, name and the addresses of members to try first."""
        if self.keys.secret is None:
            raise InvalidInput("a backup server cannot invite anyone into a group")
        peers: list[str] = list(self._host.advertised_addresses())
        for member in self.members():
            peers += [a for a in member.advert.addresses if a not in peers]
        return Invite(self.keys.group_key, self.keys.secret, self.name[:200], tuple(peers[:16]))

    def members(self) -> list[Member]:
        """Current members (backups included), this device too."""
        return self.replication.membership.current()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Group:
        await super().__aenter__()
        try:
            await self._stack.enter_async_context(self.replication)
            self._unsubscribe.append(self.replication.changes.subscribe(self._on_advert))
            if self.record.left:
                return self
            if not self.is_backup:
                self.own_repo = Repo.open_own(self._host.storage, self._host.keypair, self.keys)
                self._watch_repo(self.device_key, self.own_repo)
                await self._host.feeds.add(self.own_repo.feed)
            for member in self.members():
                await self._follow(member)
            self._publish_advert()
            self._spawn(self._dialer)
            self._spawn(self.announce)
            self._spawn(self._resume_partials)
            if self.is_backup:
                self._spawn(self._mirror)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _stopping(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for watcher in self._watchers:
            watcher.close()
        await self._stack.aclose()
        for repo in [self.own_repo, *self.repos.values()]:
            if repo is not None:
                repo.close()
                # A closed or left group replicates nothing more: its repos' channels go too.
                self._host.feeds.remove(repo.feed.discovery_key)
        await super()._stopping()

    # -- connections -------------------------------------------------------------------------

    async def attach(self, connection: Connection) -> None:
        """Run the group channel on ``connection`` (once; the peer proves membership on it)."""
        if self.record.left or connection.closed.is_set():
            return
        done = self._attached.get(connection)
        if done is not None:
            await done.wait()
            return
        done = self._attached[connection] = anyio.Event()
        try:
            await self.replication.attach(connection)
            self._spawn(self._forget_when_closed, connection)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._attached.pop(connection, None)
        finally:
            done.set()

    async def _forget_when_closed(self, connection: Connection) -> None:
        await connection.closed.wait()
        self._attached.pop(connection, None)
        self._wake_dialer.set()

    def is_member_key(self, key: bytes) -> bool:
        member = self.replication.membership.get(key)
        return member is not None and not member.advert.left

    async def connect_members(self, timeout: float = DIAL_TIMEOUT) -> int:
        """Dial every member (and invite peer) not connected now, at once; returns how many
        member peers have sent their whole view when this returns (or ``timeout`` passes)."""
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as tg:
                for member in self._unconnected():
                    tg.start_soon(self._dial_member, member)
                if not self.replication.member_connections():
                    # The invite's hints, until a member is reached (then adverts say where).
                    for peer in self.record.peers:
                        tg.start_soon(self._dial_address, peer, None)
            await self._wait_views_synced()
        return sum(1 for c in self.replication.member_connections() if self.replication.is_synced(c))

    async def _wait_views_synced(self) -> None:
        """Until every attached peer has sent its whole view, or turned out not to be a member."""
        while any(self.replication.is_pending(c) for c in self._attached):
            await self.replication.synced.wait()

    def _unconnected(self) -> list[Member]:
        connected = {c.remote_public_key for c in self.replication.member_connections()}
        return [
            m
            for m in self.members()
            if m.key != self.device_key and m.key not in connected and m.advert.addresses
        ]

    async def _dial_member(self, member: Member) -> bool:
        for address in member.advert.addresses:
            if await self._dial_address(address, member.key):
                self._backoff.pop(member.key, None)
                return True
        _, delay = self._backoff.get(member.key, (0.0, DIAL_BACKOFF[0] / 2))
        delay = min(delay * 2, DIAL_BACKOFF[1])
        self._backoff[member.key] = (anyio.current_time() + delay, delay)
        return False

    async def _dial_address(self, address: str, expected: bytes | None) -> bool:
        try:
            with anyio.fail_after(DIAL_TIMEOUT):
                connection = await self._host.dial(address, expected)
                await self.attach(connection)
            return True
        except (
            OSError,
            TimeoutError,
            HyphalError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
        ) as exc:
            log.debug("group %s: dialling %s failed: %s", self.id, address, exc)
            return False

    async def _dialer(self) -> None:
        """Keep a connection to every member with an address, backing off from unreachable ones."""
        while True:
            # A fresh event before the pass: a wake-up (a new advert) during it is not lost.
            self._wake_dialer = anyio.Event()
            now = anyio.current_time()
            due = [m for m in self._unconnected() if self._backoff.get(m.key, (0.0, 0.0))[0] <= now]
            async with anyio.create_task_group() as tg:
                for member in due:
                    tg.start_soon(self._dial_member, member)
            if self._unconnected() and anyio.current_time() - self._last_discovery > DISCOVER_INTERVAL:
                await self.discover()
            waits = [until for until, _ in self._backoff.values() if until > anyio.current_time()]
            sleep = min(waits, default=math.inf) - anyio.current_time()
            with anyio.move_on_after(max(0.05, min(sleep, DISCOVER_INTERVAL))):
                await self._wake_dialer.wait()

    # -- the DHT -----------------------------------------------------------------------------

    async def announce(self) -> None:
        """Announce this device under the discovery key, store its advert and (the creator)
        the group info in the DHT (§14.6). The DHT node republishes them; this runs at
        start. Best effort: a DHT that does not answer costs at most ``DHT_TIMEOUT``."""
        dht = self._host.dht
        addresses = [_split(a) for a in self._host.advertised_addresses()]
        own = self.replication.membership.get(self.device_key)
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                await dht.announce(self._host.keypair, self.keys.discovery_key, addresses)
                if own is not None:
                    await dht.put_signed(own.signed)
                if self.record.group_seed is not None:
                    group_keypair = KeyPair(self.record.group_seed)
                    info = self.keys.seal_value(self.name.encode("utf-8"), GROUP_INFO_LABEL)
                    await dht.put_signed(
                        SignedValue.sign(group_keypair, int(wall_time()), info, salt=self.keys.discovery_key)
                    )
        except (TimeoutError, HyphalError) as exc:
            log.info("group %s: DHT announce did not complete: %s", self.id, exc)

    async def discover(self) -> int:
        """Look the group up in the DHT: merge the adverts of the members announced there.

        Returns how many adverts were new. Best effort: a DHT that does not
        answer costs at most ``DHT_TIMEOUT`` and finds nothing.
        """
        self._last_discovery = anyio.current_time()
        dht, fresh = self._host.dht, 0
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                found = await dht.lookup(self.keys.discovery_key)
                for announce in found.announces:
                    if announce.public_key == self.device_key:
                        continue
                    result = await dht.get_mutable(announce.public_key, self.keys.discovery_key)
                    if result.signed_value is not None and self._take(result.signed_value):
                        fresh += 1
                    elif not self.is_member_key(announce.public_key):
                        # No advert stored (or not yet): the announce's addresses are still a
                        # way in; the peer proves membership on the group channel.
                        for host, port in announce.addresses:
                            self._spawn(self._dial_address, format_address(host, port), announce.public_key)
        except (TimeoutError, HyphalError) as exc:
            log.info("group %s: DHT lookup did not complete: %s", self.id, exc)
        return fresh

    def _take(self, signed: SignedValue) -> bool:
        held = self.replication.membership.get(signed.public_key)
        if held is not None and signed.seq <= held.seq:
            return False
        try:
            self.replication.publish(signed)
        except HyphalError as exc:
            log.info("group %s: an advert from the DHT was refused: %s", self.id, exc)
            return False
        return True

    # -- adverts -----------------------------------------------------------------------------

    def _publish_advert(self, *, left: bool = False) -> SignedValue:
        """Sign this device's advert (a new seq: addresses may have changed) and spread it."""
        writer = NO_REPO if self.own_repo is None else self.own_repo.feed.manifest.signers[0]
        advert = MemberAdvert(
            self.record.member_name,
            writer,
            tuple(self._host.advertised_addresses()[:8]),
            left=left,
            backup=self.is_backup,
        )
        self.record.seq += 1
        signed = sign_advert(self.keys, self._host.keypair, self.record.seq, advert)
        self.replication.publish(signed)  # saves the groups file via _on_advert
        return signed

    async def _store_advert(self, signed: SignedValue) -> None:
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                await self._host.dht.put_signed(signed)
        except (TimeoutError, HyphalError) as exc:
            log.info("group %s: storing our advert in the DHT did not complete: %s", self.id, exc)

    def _on_advert(self, accepted: AdvertAccepted) -> None:
        self.record.adverts = [a.encode() for a in self.replication.membership.adverts()]
        self._host.save_groups()
        member = self.replication.membership.get(accepted.advert.public_key)
        if member is None or member.key == self.device_key:
            return
        if accepted.change is Change.JOINED:
            self._emit(MemberJoined(member.key, member.advert.name, member.advert.backup))
            self._spawn(self._follow, member)
        elif accepted.change is Change.LEFT:
            self._emit(MemberLeft(member.key, member.advert.name))
        self._wake_dialer.set()

    # -- repos -------------------------------------------------------------------------------

    async def _follow(self, member: Member) -> None:
        """Follow ``member``'s repo live (once), so its collection stays current."""
        writer = member.advert.repo_writer
        if member.key == self.device_key or writer == NO_REPO or member.advert.left:
            return
        done = self._following.get(member.key)
        if done is not None:
            await done.wait()
            return
        done = self._following[member.key] = anyio.Event()
        try:
            repo = Repo.follow(self._host.storage, writer, self.keys)
            self.repos[member.key] = repo
            self._watch_repo(member.key, repo)
            replication = await self._host.feeds.add(repo.feed)
            replication.start_download(0, None)  # every block, and every future one, live
            self._emit(RepoAdded(member.key, member.advert.name, repo.key))
        finally:
            done.set()

    def _watch_repo(self, member_key: bytes, repo: Repo) -> None:
        def applied(change: tuple[int, Op]) -> None:
            _, op = change
            member = self.replication.membership.get(member_key)
            member_name = member.advert.name if member is not None else self.record.member_name
            if isinstance(op, Put):
                entry = repo.collection.entries.get(op.name)
                if entry is not None:
                    self._emit(FileAdded(FileInfo(op.name, member_key, member_name, entry)))
            elif isinstance(op, Delete):
                self._emit(FileRemoved(member_key, member_name, op.name))
            self._mirror_wanted.set()

        self._unsubscribe.append(repo.applied.subscribe(applied))

    def _repos(self) -> list[tuple[bytes, str, Repo]]:
        """(member key, member name, repo) of every current member's repo, this device's first."""
        out: list[tuple[bytes, str, Repo]] = []
        if self.own_repo is not None:
            out.append((self.device_key, self.record.member_name, self.own_repo))
        for member in self.members():
            repo = self.repos.get(member.key)
            if repo is not None:
                out.append((member.key, member.advert.name, repo))
        return out

    # -- files -------------------------------------------------------------------------------

    def files(self) -> list[FileInfo]:
        """Every file in every current member's repo, by name then member name."""
        out = [
            FileInfo(name, key, member_name, entry)
            for key, member_name, repo in self._repos()
            for name, entry in repo.collection.entries.items()
        ]
        return sorted(out, key=lambda f: (f.name, f.member_name, f.member))

    def lookup(self, name: str) -> FileInfo:
        """The file ``name``: this device's own if it has one, else the newest by mtime."""
        check_name(name)
        candidates = [f for f in self.files() if f.name == name]
        if not candidates:
            raise NotAvailable(f"no file named {name!r} in group {self.name!r}")
        own = [f for f in candidates if f.member == self.device_key]
        return own[0] if own else max(candidates, key=lambda f: (f.entry.mtime_ms, f.member))

    def _own(self) -> Repo:
        if self.own_repo is None:
            raise InvalidInput(
                "a backup server has no repo to write to" if self.is_backup else "left the group"
            )
        return self.own_repo

    async def add_file(
        self, path: str | os.PathLike[str], name: str | None = None, *, private: bool = False
    ) -> FileInfo:
        """Import ``path`` into the blob store and put it in this device's repo as ``name``
        (default: the file's name). ``private``: only group members can read it, not backups.

        The import (copying and hashing every byte) runs on a worker thread, so a
        node keeps serving its peers while a large file goes in; the repo append
        that follows is on the event loop, with the feed.
        """
        repo = self._own()
        source = Path(path)
        name = check_name(name if name is not None else source.name)
        if not source.is_file():
            raise InvalidInput(f"{source} is not a file")
        stat = source.stat()
        mtime_ms = stat.st_mtime_ns // 1_000_000
        blobs = self._host.blobs
        if private:
            ref, tag = await anyio.to_thread.run_sync(import_private_file, blobs, source)
            return self._put_private(repo, name, ref, tag, mtime_ms)
        with await anyio.to_thread.run_sync(blobs.import_file, source) as tag:
            return self._put(repo, name, tag.hash, stat.st_size, mtime_ms)

    def add_bytes(
        self, name: str, data: bytes, *, private: bool = False, mtime_ms: int | None = None
    ) -> FileInfo:
        repo = self._own()
        check_name(name)
        mtime = int(wall_time() * 1000) if mtime_ms is None else mtime_ms
        if private:
            ref, tag = import_private_bytes(self._host.blobs, data)
            return self._put_private(repo, name, ref, tag, mtime)
        with self._host.blobs.import_bytes(data) as tag:
            return self._put(repo, name, tag.hash, len(data), mtime)

    def _put(
        self, repo: Repo, name: str, blob_hash: bytes, size: int, mtime_ms: int, key: bytes | None = None
    ) -> FileInfo:
        self._host.blobs.set_tag(blob_tag(blob_hash), blob_hash)
        repo.put(name, blob_hash, size, mtime_ms, key)
        return FileInfo(name, self.device_key, self.record.member_name, repo.collection.entries[name])

    def _put_private(self, repo: Repo, name: str, ref: PrivateBlob, tag: TempTag, mtime_ms: int) -> FileInfo:
        with tag:
            wrapped = self.keys.wrap_private(ref.key, ref.plaintext_hash, ref.hash)
            return self._put(repo, name, ref.hash, ref.size, mtime_ms, wrapped)

    def remove(self, name: str) -> None:
        """Delete ``name`` from this device's repo (others' repos are theirs to change)."""
        repo = self._own()
        if name not in repo.collection.entries:
            others = [f.member_name for f in self.files() if f.name == name]
            if others:
                raise InvalidInput(f"{name!r} is in {others[0]}'s repo; only its owner can remove it")
            raise NotAvailable(f"no file named {name!r} in group {self.name!r}")
        repo.delete(name)

    def has_blob(self, file: FileInfo) -> bool:
        info = self._host.blobs.info(file.blob_hash)
        return info is not None and info.complete

    async def fetch(
        self, file: FileInfo, on_bytes: Callable[[int], None] | None = None, timeout: float | None = None
    ) -> None:
        """Make ``file``'s blob complete here, fetched from every member connection at once.

        A fetch of a blob this node is already fetching (for another file,
        group or caller) waits for that one instead of starting a second.
        """
        fetches = self._host.blob_fetches
        while not self.has_blob(file) and file.blob_hash in fetches:
            await fetches[file.blob_hash].wait()
        if self.has_blob(file):
            if on_bytes is not None:
                on_bytes(file.size)
            return
        done = fetches[file.blob_hash] = anyio.Event()
        try:
            await self._download(file, on_bytes, timeout)
        finally:
            del fetches[file.blob_hash]
            done.set()
        self.fetched.notify(file)

    async def _download(
        self, file: FileInfo, on_bytes: Callable[[int], None] | None, timeout: float | None
    ) -> None:
        providers = self.replication.member_connections()
        if not providers:
            raise NotAvailable(f"{file.name!r}: no member or backup that holds it is reachable")
        seen = 0

        def progress(p: object) -> None:
            nonlocal seen
            # In the file's bytes: a private blob's ciphertext is a little longer than the file.
            done = min(getattr(p, "bytes_done", 0), file.size)
            if on_bytes is not None and done > seen:
                on_bytes(done - seen)
            seen = max(seen, done)

        attempts: list[tuple[list[Connection], DownloadConfig | None]] = [(providers, None)]
        if file.size < STRIPE_MIN and len(providers) > 1:
            # A small blob is a round trip or two: striping it would cost a channel per
            # provider for nothing. Ask one (in turn, to spread the load), and the rest
            # at once if it says it lacks the blob.
            self._next_provider += 1
            one = providers[self._next_provider % len(providers)]
            attempts.insert(0, ([one], SINGLE_PROVIDER))
        for attempt, config in attempts:
            try:
                with await download_blob(
                    self._host.blobs,
                    file.blob_hash,
                    attempt,
                    config=config,
                    on_progress=progress,
                    timeout=timeout,
                ):
                    self._host.blobs.set_tag(blob_tag(file.blob_hash), file.blob_hash)
                break
            except TimeoutError:
                raise NotAvailable(f"{file.name!r}: fetching it timed out") from None
            except (HyphalError, BaseExceptionGroup) as exc:
                # The downloader's tasks may wrap its typed error in a group: unwrap it.
                error = _typed_error(exc)
                if error is None:
                    raise
                if not isinstance(error, DownloadFailed) or attempt is providers:
                    raise error from None
        if on_bytes is not None and file.size > seen:
            on_bytes(file.size - seen)

    async def export(self, name: str, dest: str | os.PathLike[str], timeout: float | None = None) -> FileInfo:
        """Write file ``name`` to ``dest`` (fetching it first if need be); returns which file it was."""
        file = self.lookup(name)
        await self.fetch(file, timeout=timeout)
        if file.entry.key is None:
            self._host.blobs.export_file(file.blob_hash, dest)
        else:
            export_private_file(self._host.blobs, self._private_ref(file), dest)
        return file

    async def read(self, name: str, timeout: float | None = None) -> bytes:
        """File ``name``'s bytes (for small files; :meth:`export` streams to disk)."""
        file = self.lookup(name)
        await self.fetch(file, timeout=timeout)
        if file.entry.key is None:
            return self._host.blobs.read(file.blob_hash)
        return b"".join(iter_private(self._host.blobs, self._private_ref(file)))

    def _private_ref(self, file: FileInfo) -> PrivateBlob:
        assert file.entry.key is not None
        key, plaintext_hash = self.keys.unwrap_private(file.entry.key, file.blob_hash)
        return PrivateBlob(file.blob_hash, key, file.size, plaintext_hash)

    # -- sync, watch, leave ------------------------------------------------------------------

    async def sync_all(
        self, progress: Callable[[SyncProgress], None] | None = None, timeout: float = 60.0
    ) -> SyncResult:
        """Fetch every member's repo and every blob they name, from every reachable member.

        Reports ``progress`` as it goes. Files that no reachable peer can
        serve are listed in the result's ``missing``, not raised: a sync
        fetches what it can.
        """
        report = progress or (lambda _: None)
        report(SyncProgress("members"))
        await self.connect_members()
        for member in self.members():
            await self._follow(member)
        report(SyncProgress("repos"))
        for connection in self.replication.member_connections():
            await self._host.feeds.connected(connection)  # attaches repos followed just now
        for key in list(self.repos):
            if self.is_member_key(key):
                replication = self._host.feeds.get(self.repos[key].feed.discovery_key)
                if replication is not None:
                    with contextlib.suppress(TimeoutError):
                        await replication.sync(timeout)
        files = [f for f in self.files() if f.member != self.device_key or not self.has_blob(f)]
        return await self._fetch_all(files, report, timeout)

    async def _fetch_all(
        self, files: list[FileInfo], report: Callable[[SyncProgress], None], timeout: float
    ) -> SyncResult:
        unique: dict[bytes, FileInfo] = {}
        for f in files:
            unique.setdefault(f.blob_hash, f)
        todo = [f for f in unique.values() if not self.has_blob(f)]
        total = sum(f.size for f in todo)
        state = {"files": 0, "bytes": 0}
        missing: list[str] = []
        limit = anyio.Semaphore(SYNC_CONCURRENCY)

        def moved(n: int, name: str) -> None:
            state["bytes"] += n
            report(SyncProgress("blobs", state["files"], len(todo), state["bytes"], total, name))

        async def one(file: FileInfo) -> None:
            async with limit:
                try:
                    await self.fetch(file, lambda n: moved(n, file.name), timeout=timeout)
                except HyphalError as exc:
                    log.info("group %s: could not fetch %s: %s", self.id, file.name, exc)
                    missing.append(f"{file.member_name}/{file.name}")
                    return
                state["files"] += 1
                moved(0, file.name)

        report(SyncProgress("blobs", 0, len(todo), 0, total))
        async with anyio.create_task_group() as tg:
            for file in todo:
                tg.start_soon(one, file)
        report(SyncProgress("done", state["files"], len(todo), state["bytes"], total))
        repos = len(self._repos())
        return SyncResult(len(self.members()), repos, len(files), state["bytes"], tuple(sorted(missing)))

    async def _resume_partials(self) -> None:
        """Finish the fetches a stop cut short: their verified part is on disk already."""
        blobs = self._host.blobs
        partial = [f for f in self.files() if (i := blobs.info(f.blob_hash)) is not None and not i.complete]
        if partial:
            await self.connect_members()
            log.info("group %s: resuming %d partial downloads", self.id, len(partial))
            await self._fetch_all(partial, lambda _: None, DIAL_TIMEOUT * 6)

    async def _mirror(self) -> None:
        """A backup's loop: fetch every blob every member's repo names, as they appear."""
        while True:
            self._mirror_wanted = anyio.Event()
            missing = [f for f in self.files() if not self.has_blob(f)]
            if missing:
                result = await self._fetch_all(missing, lambda _: None, DIAL_TIMEOUT * 6)
                if result.missing:
                    log.info("group %s: backup lacks %d files for now", self.id, len(result.missing))
                    with anyio.move_on_after(DIAL_BACKOFF[1] / 4):
                        await self._mirror_wanted.wait()
                    continue
            await self._mirror_wanted.wait()

    def _emit(self, event: GroupEvent) -> None:
        for watcher in list(self._watchers):
            try:
                watcher.send_nowait(event)
            except anyio.WouldBlock:
                log.warning("group %s: a watcher fell %d events behind; closing it", self.id, WATCH_BUFFER)
                watcher.close()
                self._watchers.remove(watcher)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._watchers.remove(watcher)

    async def watch(self) -> AsyncIterator[GroupEvent]:
        """Every change from now on: members joining and leaving, repos, files added and removed."""
        send, receive = anyio.create_memory_object_stream[GroupEvent](WATCH_BUFFER)
        self._watchers.append(send)
        try:
            async with receive:
                async for event in receive:
                    yield event
        finally:
            send.close()
            if send in self._watchers:
                self._watchers.remove(send)

    async def leave(self) -> None:
        """Leave: publish a tombstone advert (members and the DHT drop our repo and addresses),
        stop announcing, and stop replicating the group. The device's data stays on disk."""
        if self.record.left:
            return
        tombstone = self._publish_advert(left=True)
        # Let connected members have the tombstone before the channels go.
        with anyio.move_on_after(DIAL_TIMEOUT):
            for sub in list(self.replication.subscribers):
                await sub.outbox.drained()
        self._host.dht.node.unannounce(self.keys.discovery_key, self.device_key)
        await self._store_advert(tombstone)
        self.record.left = True
        self._host.save_groups()


def _typed_error(exc: BaseException) -> HyphalError | None:
    """``exc`` if it is one of our errors, or the first of a group made only of them."""
    if isinstance(exc, HyphalError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        typed, rest = exc.split(HyphalError)
        if typed is not None and rest is None:
            return _typed_error(typed.exceptions[0])
    return None


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


__all__ = ["NO_REPO", "Group", "GroupHost", "blob_tag"]
