"""Every group a node holds: create, join, find, leave, persist, and the channels peers open.

The node owns one :class:`GroupManager`. It loads the sealed groups file at
start and runs a :class:`~hyphal.groups.group.Group` for each group not
left; it routes the group channels (``hyphal/group/1``) and, on a backup
server, backup requests (``hyphal/backup/1``) that peers open; and it
attaches a group to every connection whose peer is one of its members.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from typing import NoReturn

import anyio
import anyio.abc

from hyphal.errors import DecodeError, InvalidInput, NotAvailable
from hyphal.groups.backup import BACKUP_TIMEOUT
from hyphal.groups.group import BLOB_TAG_PREFIX, Group, GroupHost
from hyphal.groups.invite import Invite, b32
from hyphal.groups.keys import GroupKeys, new_group_secret
from hyphal.groups.messages import BackupReply, BackupRequest, decode_request
from hyphal.groups.state import GroupFile, GroupRecord
from hyphal.lifecycle import TaskOwner
from hyphal.net.connection import ChannelRequest, Connection
from hyphal.signing import KeyPair

log = logging.getLogger("hyphal.groups")


class GroupManager(TaskOwner):
    """Runs each group in a task of its own (groups start from any task: a caller's
    join, a router's backup request), so each group's task group is entered and left
    in one task."""

    def __init__(
        self,
        host: GroupHost,
        file: GroupFile,
        *,
        member_name: str,
        backup_for: frozenset[bytes] | None = None,
    ) -> None:
        self._host = host
        self._file = file
        self.member_name = member_name
        self.backup_for = backup_for
        """Device keys whose backup requests this node takes (``None``: it is not a backup server)."""
        self._records: dict[bytes, GroupRecord] = {}
        self._groups: dict[bytes, Group] = {}
        self._stops: dict[bytes, tuple[anyio.Event, anyio.Event]] = {}
        self._loaded = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the groups file and run every group not left."""
        for record in self._file.load():
            self._records[record.group_key] = record
        self._loaded = True
        for record in list(self._records.values()):
            if not record.left and not record.closed:
                await self._run(record)

    async def _stopping(self) -> None:
        for key in list(self._stops):
            await self._stop(key)
        await super()._stopping()

    async def _run(self, record: GroupRecord) -> Group:
        group: Group = await self._require_running().start(self._hold, record)
        return group

    async def _hold(self, record: GroupRecord, *, task_status: anyio.abc.TaskStatus[Group]) -> None:
        stop, stopped = anyio.Event(), anyio.Event()
        try:
            async with Group(self._host, record) as group:
                self._groups[record.group_key] = group
                self._stops[record.group_key] = (stop, stopped)
                task_status.started(group)
                await stop.wait()
        finally:
            # Only this run's entries: a reopened group may have registered new ones.
            if record.group_key in self._stops and self._stops[record.group_key][0] is stop:
                del self._stops[record.group_key]
                self._groups.pop(record.group_key, None)
            stopped.set()

    async def _stop(self, key: bytes) -> None:
        found = self._stops.get(key)
        if found is not None:
            stop, stopped = found
            stop.set()
            with anyio.CancelScope(shield=True):
                await stopped.wait()

    def save(self) -> None:
        if self._loaded:
            self._file.save(list(self._records.values()))

    # -- the groups --------------------------------------------------------------------------

    def list(self) -> list[Group]:
        """Groups this node is in (or backs up), by name."""
        return sorted(self._groups.values(), key=lambda g: (g.name, g.id))

    def get(self, ref: str) -> Group:
        """A group by id (base32 group key, or a unique prefix of it) or by exact name."""
        ref = ref.strip()
        if not ref:
            raise InvalidInput("name a group by its id or name")
        by_id = [g for g in self._groups.values() if g.id.startswith(ref.lower())]
        by_name = [g for g in self._groups.values() if g.name == ref]
        found = by_name if len(by_name) == 1 else by_id
        if len(found) == 1:
            return found[0]
        if not found:
            raise NotAvailable(f"not in a group {ref!r} (see `hyphal group list`)")
        raise InvalidInput(f"{ref!r} names {len(found)} groups; use more of the id")

    def by_discovery_key(self, discovery_key: bytes) -> Group | None:
        for group in self._groups.values():
            if group.keys.discovery_key == discovery_key:
                return group
        return None

    async def create(self, name: str, member_name: str | None = None) -> Group:
        """A new group: a fresh group keypair and secret; this device its first member."""
        if not name or len(name) > 200:
            raise InvalidInput("a group name is 1 to 200 characters")
        group_keypair = KeyPair.generate()
        record = GroupRecord(
            group_keypair.public_key,
            name,
            member_name or self.member_name,
            secret=new_group_secret(),
            group_seed=group_keypair.seed,
        )
        self._records[record.group_key] = record
        self.save()
        group = await self._run(record)
        log.info("created group %s (%s)", name, group.id)
        return group

    async def join(self, uri: str, member_name: str | None = None, timeout: float = 20.0) -> Group:
        """Join with an invite URI: reach a member (the invite's peers, then the DHT) and
        publish this device's advert. Rejoining a group left before is allowed.

        The join stands only once the invite's secret is proved: a member's AUTH verified
        on the group channel, or the group info record (§14.6) found in the DHT under it.
        A peer that declines the group is :class:`InvalidInput` (a forged or mistyped
        invite); nobody to prove it with is :class:`NotAvailable`. Either way nothing of
        the join is kept. The group info's name, when found, is the group's name here."""
        invite = Invite.from_uri(uri)
        held = self._records.get(invite.group_key)
        if held is not None and held.closed and not held.left and held.secret == invite.secret:
            return await self.open(b32(invite.group_key))
        if held is not None and not held.left:
            if held.secret != invite.secret:
                raise InvalidInput(f"already in group {b32(invite.group_key)} with another secret")
            return self._groups[invite.group_key]
        if held is not None:
            await self._stop(invite.group_key)
        record = GroupRecord(
            invite.group_key,
            invite.name or b32(invite.group_key)[:12],
            member_name or self.member_name,
            secret=invite.secret,
            seq=held.seq if held is not None else 0,
            adverts=list(held.adverts) if held is not None else [],
            peers=list(invite.peers),
        )
        self._records[record.group_key] = record
        group = await self._run(record)
        reached = await group.connect_members(timeout)
        if not reached:
            await group.discover()
            reached = await group.connect_members(timeout)
        name = await group.presence.read_group_info() if not reached or not invite.name else None
        if not reached and name is None:
            unreached = group.unreachable()
            await self._stop(record.group_key)
            if held is not None:
                self._records[record.group_key] = held
            else:
                del self._records[record.group_key]
            self.save()
            _refuse_unproved_invite(invite, unreached, declined=bool(group.replication.refused))
        if name is not None and name != record.name:
            record.name = name
        self.save()
        log.info("joined group %s (%s); %d members reachable", record.name, group.id, reached)
        return group

    def closed(self) -> builtins.list[GroupRecord]:
        """Groups closed on this device (still a member; see :meth:`close`), by name."""
        found = [r for r in self._records.values() if r.closed and not r.left]
        return sorted(found, key=lambda r: (r.name, r.group_key))

    async def close(self, ref: str) -> GroupRecord:
        """Stop running a group here without leaving it: no connections, no DHT announce,
        no fetching, across restarts too, until :meth:`open`. Members keep this device's
        advert and repo, as for any device that is offline."""
        group = self.get(ref)
        group.record.closed = True
        self.save()
        await self._stop(group.keys.group_key)
        return group.record

    async def open(self, ref: str) -> Group:
        """Run a group closed here again (by id prefix or name)."""
        ref = ref.strip()
        found = [
            r for r in self.closed() if r.name == ref or (ref and b32(r.group_key).startswith(ref.lower()))
        ]
        if len(found) != 1:
            raise NotAvailable(f"no closed group {ref!r}" if not found else f"{ref!r} names several groups")
        found[0].closed = False
        self.save()
        return await self._run(found[0])

    async def leave(self, ref: str) -> None:
        group = self.get(ref)
        await group.leave()
        await self._stop(group.keys.group_key)
        self.save()

    # -- blobs -------------------------------------------------------------------------------

    def release_unreferenced_blobs(self) -> builtins.list[bytes]:
        """Drop the group tag of every blob no file of a held group names any more (removed
        from its repo, or its group left), so the next GC can free it; returns their hashes.

        Only when every group not left is running here: a closed group's repos are not
        open, so what it names is unknown and every group tag is kept.
        """
        if any(not r.left and r.group_key not in self._groups for r in self._records.values()):
            return []
        referenced = {f.blob_hash for group in self._groups.values() for f in group.files()}
        store = self._host.blobs
        released: builtins.list[bytes] = []
        # No await from here on: a file added meanwhile on the event loop cannot slip between
        # the two (a tag set by a worker thread during the GC itself is seen by the GC's lock).
        for tag, (blob_hash, _) in store.tags().items():
            if tag.startswith(BLOB_TAG_PREFIX) and blob_hash not in referenced:
                store.delete_tag(tag)
                released.append(blob_hash)
        return released

    # -- peers -------------------------------------------------------------------------------

    async def connected(self, connection: Connection) -> None:
        """A new connection: run the channel of every group whose member is at the other end."""
        for group in list(self._groups.values()):
            if group.is_member_key(connection.remote_public_key):
                await group.attach(connection)

    async def handle_group_channel(self, request: ChannelRequest) -> bool:
        """A peer opened a group channel: run it if we hold that group (the peer then proves
        membership with its AUTH; a stranger learns nothing)."""
        group = self.by_discovery_key(request.id)
        if group is None or group.record.left:
            return False
        await group.attach(request.connection)
        return True

    async def handle_backup_channel(self, request: ChannelRequest) -> bool:
        """A member asks this node to back a group up."""
        if self.backup_for is None:
            return False
        channel = await request.accept()
        async with channel:
            try:
                with anyio.fail_after(BACKUP_TIMEOUT):
                    backup = decode_request(await channel.receive())
                reply = await self._take_backup(request.connection, request.id, backup)
            except (DecodeError, TimeoutError) as exc:
                log.warning("bad backup request from %s: %s", request.connection, exc)
                reply = BackupReply(f"bad request: {exc}")
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                await channel.send(reply.encode())
                await channel.wait_open()
        return True

    async def _take_backup(
        self, connection: Connection, channel_id: bytes, request: BackupRequest
    ) -> BackupReply:
        assert self.backup_for is not None
        requester = connection.remote_public_key
        if requester not in self.backup_for:
            log.warning("refused a backup request from %s: not authorised", requester.hex()[:16])
            return BackupReply("this backup server is not authorised for your device key")
        keys = GroupKeys.from_grant(request.grant)
        if keys.discovery_key != channel_id:
            return BackupReply("the grant does not match the channel")
        held = self._records.get(keys.group_key)
        if held is not None and not held.left:
            group = self._groups[keys.group_key]
        else:
            record = GroupRecord(keys.group_key, request.name or b32(keys.group_key)[:12], self.member_name)
            record.grant = request.grant
            if held is not None:
                record.seq, record.adverts = held.seq, held.adverts
            self._records[record.group_key] = record
            self.save()
            group = await self._run(record)
            log.info("backing up group %s (%s) for %s", record.name, group.id, requester.hex()[:16])
        # The requester is a member: run the group on its connection at once.
        await group.attach(connection)
        return BackupReply()


def _refuse_unproved_invite(invite: Invite, unreached: builtins.list[str], *, declined: bool) -> NoReturn:
    where = "; ".join(unreached) or "the invite names no peer, and the DHT knows no member"
    if declined:
        raise InvalidInput(
            f"the invite was refused: {where}. Its secret does not match the group there "
            "(a forged or mistyped invite); ask a member for a new one"
        )
    raise NotAvailable(
        f"could not check the invite of group {invite.group_id}: no member answered ({where}) and "
        "the group is not in the DHT; try again when a member is online"
    )


__all__ = ["GroupManager"]
