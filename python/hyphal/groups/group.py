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
  :meth:`Group.sync_all`) from every member connection at once, through the
  node's :class:`~hyphal.blobs.fetch.BlobFetcher` (one download per blob);
- connections: a :class:`~hyphal.groups.dialer.Dialer` runs the group
  channel on them and keeps one to every member it knows addresses for;
- presence: :class:`~hyphal.groups.presence.Presence` publishes this
  device's advert and the group's records in the DHT, and finds members there.

A backup server holds a group by its grant (§14.3) instead of its secret: it
has no repo, follows every member's and fetches every blob as it appears,
and cannot open private blobs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from hyphal.blobs import BlobStore
from hyphal.blobs.blob_store import TempTag
from hyphal.blobs.fetch import BlobFetcher
from hyphal.blobs.private import (
    PrivateBlob,
    export_private_file,
    import_private_bytes,
    import_private_file,
    iter_private,
)
from hyphal.clock import wall_time
from hyphal.errors import HyphalError, InvalidInput, NotAvailable, ReadOnlyDevice, Unauthorized
from hyphal.groups.channel import GroupChannel, MessageHub, SentMessage
from hyphal.groups.channel_format import DEFAULT_TTL_MS
from hyphal.groups.dialer import DIAL_BACKOFF, DIAL_TIMEOUT, Dialer, DialHost
from hyphal.groups.events import (
    DeviceApproved,
    DeviceRemoved,
    FileAdded,
    FileInfo,
    FileRemoved,
    GroupEvent,
    MemberJoined,
    MemberLeft,
    MessageReceived,
    PairingRequested,
    RepoAdded,
    SyncProgress,
    SyncResult,
)
from hyphal.groups.invite import Invite, b32
from hyphal.groups.keys import GroupKeys
from hyphal.groups.members import Change, Member
from hyphal.groups.membership import Entry, MembershipLog
from hyphal.groups.messages import NO_REPO, Delete, Op, Put, check_name
from hyphal.groups.pairing_requests import (
    DENY_TOPIC,
    REQUEST_TOPIC,
    REQUEST_TTL,
    PendingRequest,
    PendingRequests,
    Request,
    decode_deny,
    encode_deny,
    request_id,
    verification_code,
)
from hyphal.groups.presence import Presence, PresenceHost
from hyphal.groups.replication import GroupReplication
from hyphal.groups.repo import Repo, writer_keypair
from hyphal.groups.session import AdvertAccepted
from hyphal.groups.state import GroupRecord
from hyphal.lifecycle import TaskOwner, close_stack
from hyphal.net.connection import Connection
from hyphal.notifier import Notifier
from hyphal.replication.service import FeedService
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair
from hyphal.storage.base import Storage

log = logging.getLogger("hyphal.groups")

SYNC_CONCURRENCY = 16
WATCH_BUFFER = 10_000


class GroupHost(PresenceHost, DialHost, Protocol):
    """What a group needs from the node that runs it (its presence's and dialer's needs too)."""

    @property
    def storage(self) -> Storage: ...

    @property
    def blobs(self) -> BlobStore: ...

    @property
    def feeds(self) -> FeedService: ...

    @property
    def blob_fetcher(self) -> BlobFetcher:
        """The node's one fetcher: a blob wanted by several groups (or callers) comes once."""
        ...

    def save_groups(self) -> None: ...

    @property
    def message_hub(self) -> MessageHub:
        """The node's seen-message window and rate limits (:mod:`hyphal.groups.channel`)."""
        ...


BLOB_TAG_PREFIX = "group-blob/"


def blob_tag(blob_hash: bytes) -> str:
    """The store tag that keeps a group file's blob from garbage collection."""
    return BLOB_TAG_PREFIX + blob_hash.hex()


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
        self.log = MembershipLog(record.group_key)
        """Who may write (§17.1); empty (an open group: every member writes) until the origin starts it."""
        self.log.add_many(record.log)
        self.replication = GroupReplication(self.keys, log=self.log)
        self._membership_seen = self.log.state
        self.requests = PendingRequests(record.group_key)
        """Requests to write that reached this device (§17.4): an authorised one approves or denies them."""
        for raw in record.adverts:
            try:
                self.replication.membership.merge(SignedValue.decode(raw))
            except HyphalError as exc:  # the file is ours and sealed: only a bug gets here
                log.warning("group %s: a saved advert does not verify: %s", self.id, exc)
        self.own_repo: Repo | None = None
        self.repos: dict[bytes, Repo] = {}
        """Every other member's repo this node follows, by member device key."""
        self._following: dict[bytes, anyio.Event] = {}
        self._watchers: list[MemoryObjectSendStream[GroupEvent]] = []
        self.presence = Presence(host, record, self.replication, lambda a, k: self.dialer.dial_soon(a, k))
        self.dialer = Dialer(host, host.keypair.public_key, record, self.replication, self.presence)
        self._mirror_wanted = anyio.Event()
        self.fetched: Notifier[FileInfo] = Notifier()
        """Each file whose blob became complete here by a fetch."""
        self.channel = GroupChannel(host.message_hub, self.keys, host.keypair, self._emit, self._member_name)
        """The ephemeral message channel: :meth:`send` and :meth:`messages`."""
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

    def reached(self) -> list[str]:
        """Names of the members (and backups) connected now, by name."""
        connected = {c.remote_public_key for c in self.replication.member_connections()}
        return sorted(m.advert.name for m in self.members() if m.key in connected)

    def unreachable(self) -> list[str]:
        """Every other member not connected now, with why: ``"alice (1.2.3.4:7300: no answer
        (timed out))"``; while no member is known, the invite's peers that did not answer."""
        connected = {c.remote_public_key for c in self.replication.member_connections()}
        out = []
        for member in self.members():
            if member.key == self.device_key or member.key in connected:
                continue
            addresses = member.advert.addresses
            why = "; ".join(f"{a}: {self.dialer.why_unreached(a)}" for a in addresses)
            out.append(
                f"{member.advert.name} ({why or 'no address to dial: behind NAT, or never announced'})"
            )
        if len(self.members()) <= 1 and not connected:
            out += [f"invite peer {a} ({self.dialer.why_unreached(a)})" for a in self.record.peers]
        return sorted(out)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Group:
        await super().__aenter__()
        try:
            await self._stack.enter_async_context(self.replication)
            await self._stack.enter_async_context(self.dialer)
            await self._stack.enter_async_context(self.channel)
            self._unsubscribe.append(self.replication.changes.subscribe(self._on_advert))
            self._unsubscribe.append(self.replication.entries.subscribe(self._on_entries))
            self._unsubscribe.append(self.replication.synced.subscribe(self._on_synced))
            if self.record.left:
                return self
            if not self.is_backup and self.record.restore_repo:
                await self._open_own_repo(restoring=True)
                self._spawn(self._restore_own_repo)
            elif not self.is_backup:
                await self._open_own_repo(restoring=False)
            for member in self.members():
                await self._follow(member)
            self._publish_advert()
            self.dialer.start()
            self._spawn(self.presence.announce)
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
        await close_stack(self._stack)
        for repo in [self.own_repo, *self.repos.values()]:
            if repo is not None:
                # A closed or left group replicates nothing more: its repos' channels go too.
                await self._host.feeds.remove(repo.feed.discovery_key)
                repo.close()
        await super()._stopping()

    async def _open_own_repo(self, *, restoring: bool) -> None:
        if restoring:
            # Imported onto new hardware (§17.6): follow our own repo, read-only, until a member
            # has handed us its blocks; appending to a fresh copy under the same key would fork it.
            writer = writer_keypair(self._host.keypair, self.keys).public_key
            self.own_repo = Repo.follow(self._host.storage, writer, self.keys)
        else:
            self.own_repo = Repo.open_own(self._host.storage, self._host.keypair, self.keys)
        self.own_repo.set_limit(self.log.state.repo_limit(self.device_key))
        self._watch_repo(self.device_key, self.own_repo)
        replication = await self._host.feeds.add(self.own_repo.feed)
        if restoring:
            replication.start_download(0, None)

    async def _restore_own_repo(self) -> None:
        """Fetch this device's repo from a member, then write it again (see :meth:`_open_own_repo`)."""
        assert self.own_repo is not None
        while True:
            await self.connect_members()
            connections = self.replication.member_connections()
            replication = self._host.feeds.get(self.own_repo.feed.discovery_key)
            if connections and replication is not None:
                for connection in connections:
                    await self._host.feeds.connected(connection)
                try:
                    await replication.sync(DIAL_TIMEOUT * 3)
                    break
                except TimeoutError:
                    pass
            with anyio.move_on_after(DIAL_BACKOFF[1]):
                await self.replication.synced.wait()
        length = self.own_repo.feed.length
        await self._host.feeds.remove(self.own_repo.feed.discovery_key)
        self.own_repo.close()
        self.record.restore_repo = False
        self._host.save_groups()
        await self._open_own_repo(restoring=False)
        assert self.own_repo is not None
        self._emit(RepoAdded(self.device_key, self.record.member_name, self.own_repo.key))
        log.info(
            "group %s: this device's repo is restored from a member (%d entries); writing again",
            self.id,
            length,
        )

    # -- connections and presence ------------------------------------------------------------

    async def attach(self, connection: Connection) -> None:
        """Run the group channel on ``connection`` (once; the peer proves membership on it)."""
        await self.dialer.attach(connection)

    def _on_synced(self, connection: Connection) -> None:
        # The peer proved membership (and has sent its view): the message channel runs there too.
        if self.replication.is_synced(connection) and not self.record.left:
            self._spawn(self.channel.attach_peer, connection)

    def is_member_key(self, key: bytes) -> bool:
        return self.replication.membership.is_current(key)

    async def connect_members(self, timeout: float = DIAL_TIMEOUT) -> int:
        """Dial every member (and invite peer) not connected now, at once; returns how many
        member peers have sent their whole view when this returns (or ``timeout`` passes)."""
        return await self.dialer.connect_members(timeout)

    async def announce(self) -> None:
        """Announce this device and store its advert in the DHT (see :meth:`Presence.announce`)."""
        await self.presence.announce()

    async def discover(self) -> int:
        """Merge the adverts of the members announced in the DHT; returns how many were new."""
        return await self.presence.discover()

    def _publish_advert(self, *, left: bool = False) -> SignedValue:
        writer = NO_REPO if self.own_repo is None else self.own_repo.feed.manifest.signers[0]
        return self.presence.publish_advert(writer, left=left)

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
        self.dialer.wake()

    def save(self) -> None:
        """Write the node's groups file (this group's record changed)."""
        self._host.save_groups()

    # -- the membership log (§17) ------------------------------------------------------------

    @property
    def can_write(self) -> bool:
        """This device may write its repo: the group has no membership log, or lists it as a writer."""
        return self.log.state.is_writer(self.device_key)

    def add_entry(self, entry: Entry) -> None:
        """Spread this device's new membership entry (already in :attr:`log`) and act on it."""
        self.replication.publish_entry(entry)

    def start_log(self) -> Entry | None:
        """Start the membership log if it has not begun (only the origin, which holds the group
        key's seed, can): this device and every current member device become its founding
        writers; devices that join from then on are read-only until approved. ``None`` if it
        had begun already."""
        if self.log.state.active:
            return None
        if self.record.group_seed is None:
            raise Unauthorized(
                f"group {self.name!r} has no membership log yet; only the device that created it "
                "can start one (run `hyphal pair code` there first)"
            )
        founders = [self.device_key]
        founders += [m.key for m in self.members() if m.key != self.device_key and not m.advert.backup]
        entry = self.log.genesis(KeyPair(self.record.group_seed), founders)
        self.add_entry(entry)
        log.info("group %s: membership log started with %d founding writers", self.id, len(founders))
        return entry

    def approve_device(self, device: bytes, name: str) -> Entry:
        """Make ``device`` a writer (this device must be one); every member accepts its writes."""
        self.start_log()
        entry = self.log.approve(self._host.keypair, device, name)
        self.add_entry(entry)
        log.info("group %s: approved device %s (%s)", self.id, device.hex()[:16], name)
        return entry

    def remove_device(self, device: bytes) -> Entry:
        """Remove ``device`` (this device must be a writer): its repo blocks known here stay
        valid, its later writes are refused by every member."""
        if device == self.device_key:
            length = self.own_repo.feed.length if self.own_repo is not None else 0
        else:
            repo = self.repos.get(device)
            length = repo.feed.length if repo is not None else 0
        entry = self.log.remove(self._host.keypair, device, length)
        self.add_entry(entry)
        log.info(
            "group %s: removed device %s (%d repo blocks stay valid)", self.id, device.hex()[:16], length
        )
        return entry

    def _on_entries(self, entries: tuple[Entry, ...]) -> None:
        self.record.log = self.log.encoded()
        self._host.save_groups()
        self._apply_limits()
        self.requests.settle(self.log.state)
        for member in self.members():
            if self.log.state.repo_limit(member.key) != 0 and member.key not in self.repos:
                self._spawn(self._follow, member)
        before, self._membership_seen = self._membership_seen, self.log.state
        for device, writer in self.log.state.writers.items():
            if device not in before.writers:
                self._emit(DeviceApproved(device, writer.name))
        for device, removal in self.log.state.removed.items():
            if device not in before.removed:
                self._emit(DeviceRemoved(device, removal.repo_length))

    def _apply_limits(self) -> None:
        state = self.log.state
        if self.own_repo is not None:
            self.own_repo.set_limit(state.repo_limit(self.device_key))
        for key, repo in self.repos.items():
            repo.set_limit(state.repo_limit(key))

    # -- requests to write (§17.4) -----------------------------------------------------------

    def request_approval(self) -> tuple[str, str]:
        """Ask the authorised devices to make this device a writer, over the message channel;
        returns ``(request id, verification code)``, which their screens show too."""
        if self.can_write and self.log.state.active:
            raise InvalidInput(f"this device writes in group {self.name!r} already")
        request = Request(self.device_key, self.record.member_name)
        self.send(request.encode(), topic=REQUEST_TOPIC, ttl=REQUEST_TTL)
        return request_id(self.device_key), verification_code(self.keys.group_key, self.device_key)

    def pairing_requests(self) -> list[PendingRequest]:
        self.requests.expire(anyio.current_time())
        return self.requests.pending()

    def approve_request(self, ref: str) -> PendingRequest:
        """Approve a pending request (by id): its device becomes a writer on every member."""
        pending = self.requests.find(ref)
        self.approve_device(pending.device, pending.name)
        self.requests.drop(pending.device)
        return pending

    def deny_request(self, ref: str) -> PendingRequest:
        """Deny a pending request: dropped here, and on the other authorised devices (told
        over the message channel); the device stays read-only."""
        pending = self.requests.find(ref)
        if not self.can_write:
            raise Unauthorized("only an authorised device of the group can deny a request")
        self.requests.drop(pending.device)
        self.send(encode_deny(pending.device), topic=DENY_TOPIC, ttl=REQUEST_TTL)
        log.info("group %s: denied the request of device %s (%s)", self.id, pending.id, pending.name)
        return pending

    def _on_pairing_message(self, message: MessageReceived) -> GroupEvent | None:
        """A request or a denial on the message channel: kept by authorised devices only."""
        state = self.log.state
        if not (state.active and state.is_writer(self.device_key)):
            return None
        try:
            if message.topic == DENY_TOPIC:
                if state.is_writer(message.sender):
                    self.requests.drop(decode_deny(message.body))
                return None
            pending = self.requests.take(message.sender, message.body, state, anyio.current_time())
        except HyphalError as exc:
            log.warning(
                "group %s: refused a pairing request from %s: %s: %s",
                self.id,
                message.sender.hex()[:16],
                type(exc).__name__,
                exc,
            )
            return None
        if pending is None:
            return None
        log.info(
            "group %s: device %s (%s) asks to write; code %s", self.id, pending.id, pending.name, pending.code
        )
        return PairingRequested(pending.id, pending.device, pending.name, pending.code)

    # -- repos -------------------------------------------------------------------------------

    async def _follow(self, member: Member) -> None:
        """Follow ``member``'s repo live (once), so its collection stays current."""
        writer = member.advert.repo_writer
        if member.key == self.device_key or writer == NO_REPO or member.advert.left:
            return
        if self.log.state.repo_limit(member.key) == 0:
            # A device the membership log never approved: its repo is refused, not fetched.
            log.info("group %s: not following read-only device %s's repo", self.id, member.advert.name)
            return
        done = self._following.get(member.key)
        if done is not None:
            await done.wait()
            return
        done = self._following[member.key] = anyio.Event()
        try:
            repo = Repo.follow(self._host.storage, writer, self.keys)
            repo.set_limit(self.log.state.repo_limit(member.key))
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
        if self.record.restore_repo:
            raise NotAvailable(
                "this device's repo is being restored from the group's members after `device import`; "
                "try again once a member is reachable and it has synced"
            )
        if not self.can_write:
            removed = self.device_key in self.log.state.removed
            log.warning(
                "group %s: refused a local write: this device is %s",
                self.id,
                "removed" if removed else "read-only",
            )
            raise ReadOnlyDevice(
                f"this device was removed from group {self.name!r}; it can no longer write"
                if removed
                else f"this device holds group {self.name!r} read-only until an authorised device "
                "approves it (`hyphal pair approve` there)"
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
        return self._host.blob_fetcher.has(file.blob_hash)

    async def fetch(
        self, file: FileInfo, on_bytes: Callable[[int], None] | None = None, timeout: float | None = None
    ) -> None:
        """Make ``file``'s blob complete here, fetched from every member connection at once.

        A fetch of a blob this node is already fetching (for another file,
        group or caller) waits for that one instead of starting a second.
        """

        def members() -> list[Connection]:
            found = self.replication.member_connections()
            if not found:
                raise NotAvailable(f"{file.name!r}: no member or backup that holds it is reachable")
            return found

        fetched = await self._host.blob_fetcher.fetch(
            file.blob_hash,
            members,
            tag=blob_tag(file.blob_hash),
            what=repr(file.name),
            size=file.size,
            on_bytes=on_bytes,
            timeout=timeout,
        )
        if fetched:
            self.fetched.notify(file)

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

    # -- the ephemeral message channel --------------------------------------------------------

    def send(self, body: bytes | str, *, topic: str = "", ttl: float = DEFAULT_TTL_MS / 1000) -> SentMessage:
        """Send a message to the group's devices: end-to-end encrypted under the group's message
        key and signed by this device, never stored in a feed. It goes directly to connected
        members and through connected always-on nodes (backup servers) to the others, and is
        held for peers that connect within ``ttl`` seconds. :class:`RateLimited` when this
        device sends too fast; :class:`InvalidInput` when it is too large."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if not 0 < ttl <= 3600:
            raise InvalidInput("a message TTL is more than 0 and at most 3600 seconds")
        return self.channel.send(data, topic=topic, ttl_ms=max(1, int(ttl * 1000)))

    async def messages(self, topic: str | None = None) -> AsyncIterator[MessageReceived]:
        """``async for message in group.messages():`` every message received from now on (of
        ``topic`` only, if given), each once, however many ways it came."""
        async for event in self.watch():
            if isinstance(event, MessageReceived) and (topic is None or event.topic == topic):
                yield event

    def _member_name(self, key: bytes) -> str:
        member = self.replication.membership.get(key)
        return member.advert.name if member is not None else ""

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
        result = await self._fetch_all(files, report, timeout)
        return dataclasses.replace(
            result, reached=tuple(self.reached()), unreachable=tuple(self.unreachable())
        )

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
        return SyncResult(
            len(self.members()), repos, len(files), state["bytes"], tuple(sorted(missing)), state["files"]
        )

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
        if isinstance(event, MessageReceived) and event.topic in (REQUEST_TOPIC, DENY_TOPIC):
            found = self._on_pairing_message(event)
            if found is None:
                return
            event = found
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
        """Every change from now on: members joining and leaving, repos, files added and removed,
        messages received."""
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
        await self.presence.withdraw(tombstone)
        self.record.left = True
        self._host.save_groups()


__all__ = ["BLOB_TAG_PREFIX", "Group", "GroupHost", "blob_tag"]
