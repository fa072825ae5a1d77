"""Groups on real nodes over TCP and UDP on 127.0.0.x: create, join, files, sync, watch,
a backup server, a device that joins while the creator is offline, restarts, leaving,
and strangers who get nothing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from hyphal import blake3
from hyphal.blobs import BlobProvider, BlobStore
from hyphal.control.encoding import Json
from hyphal.control.methods import Call, lookup
from hyphal.errors import DecodeError, InvalidInput, NotAvailable, Unauthorized
from hyphal.groups.events import FileAdded, GroupEvent, MemberJoined, SyncProgress
from hyphal.groups.group import Group
from hyphal.groups.invite import Invite
from hyphal.groups.session import PROTOCOL as GROUP_PROTOCOL
from hyphal.groups.state import GroupFile
from hyphal.net.connection import Channel, connect
from hyphal.node import GROUPS_FILE, Node
from hyphal.replication import PROTOCOL as FEED_PROTOCOL
from hyphal.replication.messages import Auth
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio
WAIT = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(group: Group, condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` on any change the group reports (adverts, files, fetches)."""
    with anyio.fail_after(WAIT):
        while not condition():
            async with anyio.create_task_group() as tg:

                async def wake(wait: Callable[[], object]) -> None:
                    await wait()  # type: ignore[misc]
                    tg.cancel_scope.cancel()

                tg.start_soon(wake, group.replication.changes.wait)
                tg.start_soon(wake, group.fetched.wait)
                for repo in [group.own_repo, *group.repos.values()]:
                    if repo is not None:
                        tg.start_soon(wake, repo.applied.wait)


@dataclass
class Watched:
    events: list[GroupEvent]
    done: anyio.Event


@asynccontextmanager
async def watching(group: Group) -> AsyncIterator[Watched]:
    """Collect ``group``'s events from now until the first FileAdded; leaving waits for it."""
    watched = Watched([], anyio.Event())

    async def watch() -> None:
        async for event in group.watch():
            watched.events.append(event)
            if isinstance(event, FileAdded):
                watched.done.set()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await anyio.wait_all_tasks_blocked()
        yield watched
        with anyio.fail_after(WAIT):
            await watched.done.wait()


def names(group: Group) -> set[str]:
    return {f.name for f in group.files()}


async def test_the_whole_story_with_a_backup_and_an_offline_creator(tmp_path: Path) -> None:
    big = os.urandom(3 * 2**20 + 7)
    (tmp_path / "big.bin").write_bytes(big)
    async with Node(tmp_path / "c", listen="127.0.0.3:0", name="backup-c") as c:
        async with Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a:
            authorised = [a.public_key]
            c._groups.backup_for = frozenset(authorised)  # type: ignore[union-attr]
            ga = await a.create_group("family photos")
            await ga.add_file(tmp_path / "big.bin")
            ga.add_bytes("notes/todo.txt", b"milk\n")
            ga.add_bytes("secret.txt", b"only members read this", private=True)
            uri = ga.invite().to_uri()
            async with Node(tmp_path / "b", listen="127.0.0.2:0", name="bob") as b:
                gb = await b.join_group(uri)
                assert {m.advert.name for m in gb.members()} == {"alice", "bob"}
                seen: list[SyncProgress] = []
                result = await gb.sync_all(seen.append)
                assert result.missing == ()
                assert seen[-1].phase == "done"
                assert seen[-1].bytes_done == seen[-1].bytes_total > len(big)
                assert names(gb) == {"big.bin", "notes/todo.txt", "secret.txt"}
                assert blake3(await gb.read("big.bin")) == blake3(big)
                assert await gb.read("secret.txt") == b"only members read this"
                exported = tmp_path / "out.bin"
                await gb.export("big.bin", exported)
                assert exported.read_bytes() == big

                # A file A adds reaches B's watch; then the backup server takes the group.
                async with watching(gb) as watched:
                    ga.add_bytes("later.txt", b"added while B watched")
                assert [e.file.name for e in watched.events if isinstance(e, FileAdded)] == ["later.txt"]

                await a.add_backup(ga.id, "{}:{}".format(*c.address))
                gc = c.group(ga.id)
                assert gc.is_backup
                await until(gc, lambda: len(gc.files()) == 4 and all(gc.has_blob(f) for f in gc.files()))
                # The backup holds the private file as ciphertext and cannot open it.
                secret = gc.lookup("secret.txt")
                assert b"only members" not in c.blobs.read(secret.blob_hash)
                with pytest.raises(InvalidInput):
                    await gc.read("secret.txt")
                await until(gb, lambda: any(m.advert.backup for m in gb.members()))
            # B's node stopped; now A stops too.
        # A is offline. B comes back from its data dir, adds a file; D joins from B's invite.
        async with Node(tmp_path / "b", listen="127.0.0.2:0", name="bob") as b:
            gb = b.group("family photos")
            assert names(gb) == {"big.bin", "notes/todo.txt", "secret.txt", "later.txt"}
            assert blake3(await gb.read("big.bin")) == blake3(big)  # kept on disk, no fetch
            await gb.connect_members()
            gb.add_bytes("from-b.txt", b"B was here")
            async with Node(tmp_path / "d", listen="127.0.0.4:0", name="dora") as d:
                gd = await d.join_group(gb.invite().to_uri())
                result = await gd.sync_all()
                assert result.missing == ()
                assert names(gd) == {"big.bin", "notes/todo.txt", "secret.txt", "later.txt", "from-b.txt"}
                assert blake3(await gd.read("big.bin")) == blake3(big)
                assert await gd.read("secret.txt") == b"only members read this"
                assert await gd.read("from-b.txt") == b"B was here"

                # D leaves: B sees it go, and D no longer holds the group.
                left = anyio.Event()
                gb.replication.changes.subscribe(lambda x: left.set() if x.change is not None else None)
                await d.leave_group(gd.id)
                with anyio.fail_after(WAIT):
                    await left.wait()
                assert "dora" not in {m.advert.name for m in gb.members()}
                with pytest.raises(NotAvailable):
                    d.group(gd.id)


async def test_watch_reports_members_and_a_restart_keeps_groups(tmp_path: Path) -> None:
    async with Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a:
        ga = await a.create_group("g")
        uri = ga.invite().to_uri()
        async with watching(ga) as watched, Node(tmp_path / "b", listen="127.0.0.2:0", name="bob") as b:
            gb = await b.join_group(uri)
            gb.add_bytes("hello.txt", b"hi")
            with anyio.fail_after(WAIT):
                await watched.done.wait()
        events = watched.events
        assert events[0] == MemberJoined(gb.device_key, "bob", False)
        assert isinstance(events[-1], FileAdded)
        assert events[-1].file.name == "hello.txt"
    # The groups file is sealed: it names nothing without the identity.
    raw = (tmp_path / "a" / GROUPS_FILE).read_bytes()
    assert b"alice" not in raw
    assert b'"g"' not in raw
    async with Node(tmp_path / "a", listen="127.0.0.1:0") as a:
        again = a.group("g")
        assert {m.advert.name for m in again.members()} == {"alice", "bob"}
        assert again.invite().to_uri().split("?")[0] == uri.split("?")[0]
        assert [f.name for f in again.files()] == ["hello.txt"]  # B's repo, replicated before
        assert len(GroupFile(tmp_path / "a" / GROUPS_FILE, a.keypair).load()) == 1


async def test_bad_invites_strangers_and_unauthorised_backups_are_refused(tmp_path: Path) -> None:
    async with (
        Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a,
        Node(tmp_path / "c", listen="127.0.0.3:0", backup_for=[]) as c,
    ):
        ga = await a.create_group("g")
        ga.add_bytes("x", b"data")
        uri = ga.invite().to_uri()
        secret = uri.split("s=")[1].split("&")[0]
        for bad in (
            "",
            "http://group/x",
            uri.replace("s=", "t="),
            uri.replace(secret, secret[:-3]),
            "hyphal://group/zz?s=aa",
        ):
            with pytest.raises(DecodeError) as info:
                await a.join_group(bad)
            assert secret not in str(info.value)
        with pytest.raises(NotAvailable):
            a.group("no such group")
        # A stranger opens the group channel (any DHT node sees the discovery key): dropped.
        stranger = KeyPair.generate()
        host, port = a.address
        async with await connect(host, port, stranger) as conn:
            channel = await conn.open_channel(GROUP_PROTOCOL, ga.keys.discovery_key)
            await channel.send(b"\x01" + bytes(32))  # an AUTH with a guessed MAC
            received: list[bytes] = []
            with anyio.fail_after(WAIT):
                try:
                    while True:
                        received.append(await channel.receive())
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass  # dropped: what we want
            assert [m[0] for m in received] in ([], [1]), "a stranger got more than an AUTH"
            # Even knowing a repo's discovery key (never sent in the clear), it cannot read the
            # repo: the feed channel wants a MAC under the feed key itself, which only sealed
            # adverts carry.
            assert ga.own_repo is not None
            repo = ga.own_repo.feed
            feed_channel = await conn.open_channel(FEED_PROTOCOL, repo.discovery_key)
            await feed_channel.send(Auth(bytes(32)).encode())
            replies: list[bytes] = []
            with anyio.fail_after(WAIT):
                try:
                    while True:
                        replies.append(await feed_channel.receive())
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass
            assert len(replies) <= 1, "the stranger got more than the member's AUTH"
        assert ga.replication.dropped
        assert ga.replication.dropped[-1][0] == stranger.public_key
        replication = a.feeds.get(repo.discovery_key)
        assert replication is not None
        assert replication.dropped
        assert replication.dropped[-1][0] == stranger.public_key
        # A backup server not authorised for A's key refuses, and holds nothing.
        with pytest.raises(Unauthorized):
            await a.add_backup(ga.id, "{}:{}".format(*c.address))
        assert c.groups() == []


async def test_two_fetches_of_one_blob_at_once_share_one_download(tmp_path: Path) -> None:
    data = os.urandom(5 * 2**20)
    async with (
        Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a,
        Node(tmp_path / "b", listen="127.0.0.2:0", name="bob") as b,
    ):
        ga = await a.create_group("g")
        ga.add_bytes("huge.bin", data)
        gb = await b.join_group(ga.invite().to_uri())
        await until(gb, lambda: names(gb) == {"huge.bin"})
        got: list[bytes] = []
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(lambda: _append_read(gb, "huge.bin", got))
        assert [blake3(x) for x in got] == [blake3(data)] * 3
        assert b.blob_fetcher.fetching() == frozenset()


async def _append_read(group: Group, name: str, into: list[bytes]) -> None:
    into.append(await group.read(name))


class GatedProvider(BlobProvider):
    """Counts the blob channels peers open, and serves none until the gate opens."""

    def __init__(self, store: BlobStore) -> None:
        super().__init__(store)
        self.channels = 0
        self.asked = anyio.Event()
        self.gate = anyio.Event()

    async def serve_channel(self, channel: Channel) -> None:
        self.channels += 1
        self.asked.set()
        await self.gate.wait()
        await super().serve_channel(channel)


async def test_a_group_fetch_and_the_control_blob_get_of_one_blob_share_one_download(tmp_path: Path) -> None:
    data = os.urandom(3 * 2**20)
    async with (
        Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a,
        Node(tmp_path / "b", listen="127.0.0.2:0", name="bob") as b,
    ):
        ga = await a.create_group("g")
        ga.add_bytes("shared.bin", data)
        gb = await b.join_group(ga.invite().to_uri())
        await until(gb, lambda: names(gb) == {"shared.bin"})
        blob_hash = gb.lookup("shared.bin").blob_hash
        provider = a.blob_provider = GatedProvider(a.blobs)
        dest = tmp_path / "got.bin"
        handler, params = lookup("blob.get", {"hash": blob_hash.hex(), "dest": str(dest)})

        async def emit(kind: str, body: Json) -> None:
            raise AssertionError(f"blob.get streams nothing, yet sent {kind}")

        got: list[bytes] = []
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_append_read, gb, "shared.bin", got)
                await provider.asked.wait()  # the group's download has its channel to A
                assert b.blob_fetcher.fetching() == {blob_hash}
                tg.start_soon(handler, Call(b, params, emit))
                await anyio.wait_all_tasks_blocked()  # blob.get waits for the group's download
                provider.gate.set()
        assert got == [data]
        assert dest.read_bytes() == data
        assert provider.channels == 1  # one download, not one per caller
        assert b.blob_fetcher.fetching() == frozenset()
        # Each caller's tag keeps the blob: the group's, and blob.get's own.
        assert {"group-blob/" + blob_hash.hex(), "cli/" + blob_hash.hex()} <= set(b.blobs.tags())


async def test_an_invite_without_addresses_finds_the_group_through_the_dht(tmp_path: Path) -> None:
    async with Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a:
        seed = "{}:{}".format(*a.address)
        async with Node(tmp_path / "b", listen="127.0.0.2:0", bootstrap=[seed]) as b:
            ga = await a.create_group("g")
            ga.add_bytes("found.txt", b"via the DHT")
            await ga.announce()  # done at start too, but by then B may not have been in A's table
            bare = Invite(ga.keys.group_key, ga.keys.secret or b"", "g").to_uri()
            assert "peer=" not in bare
            async with Node(tmp_path / "d", listen="127.0.0.4:0", bootstrap=[seed], name="dora") as d:
                gd = await d.join_group(bare)
                assert {m.advert.name for m in gd.members()} == {"alice", "dora"}
                await gd.sync_all()
                assert await gd.read("found.txt") == b"via the DHT"
            # What the DHT nodes store about the group is sealed: no names, no repo keys.
            stored = b"".join(r.value for r in b.dht.node.store.records())
            assert stored
            assert b"alice" not in stored
            assert ga.own_repo is not None
            assert ga.own_repo.feed.manifest.signers[0] not in stored


async def test_a_fetch_cut_short_resumes_when_the_node_restarts(tmp_path: Path) -> None:
    data = os.urandom(8 * 2**20)
    async with Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a:
        ga = await a.create_group("g")
        ga.add_bytes("big.bin", data)
        uri = ga.invite().to_uri()
        async with Node(tmp_path / "b", listen="127.0.0.2:0", name="bob") as b:
            gb = await b.join_group(uri)
            await until(gb, lambda: names(gb) == {"big.bin"})
            file = gb.lookup("big.bin")
            with anyio.CancelScope() as scope:
                await gb.fetch(file, on_bytes=lambda n: scope.cancel())
            info = b.blobs.info(file.blob_hash)
            assert info is not None
            assert not info.complete  # stopped part way, what was verified kept
        async with Node(tmp_path / "b", listen="127.0.0.2:0", name="bob") as b:
            gb = b.group("g")
            await until(gb, lambda: gb.has_blob(file))
            assert blake3(await gb.read("big.bin")) == blake3(data)


async def test_a_closed_group_stays_closed_across_restarts_until_opened(tmp_path: Path) -> None:
    async with Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a:
        ga = await a.create_group("g")
        ga.add_bytes("kept.txt", b"still here")
        await a.close_group("g")
        assert a.groups() == []
        assert [r.name for r in a.group_manager.closed()] == ["g"]
        with pytest.raises(NotAvailable):
            a.group("g")
    async with Node(tmp_path / "a", listen="127.0.0.1:0") as a:
        assert a.groups() == []  # not run at start
        again = await a.open_group("g")
        assert await again.read("kept.txt") == b"still here"
        assert a.group_manager.closed() == []
        with pytest.raises(NotAvailable):
            await a.open_group("g")  # open already


async def test_a_group_closed_and_opened_while_connected_replicates_again(tmp_path: Path) -> None:
    """Closing a group leaves the node's connections up; opening it again must attach its repos
    afresh on them (the old channels were once left open, and opening failed as 'already open')."""
    async with (
        Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a,
        Node(tmp_path / "b", listen="127.0.0.2:0", name="bob") as b,
    ):
        ga = await a.create_group("g")
        ga.add_bytes("one.txt", b"first")
        gb = await b.join_group(ga.invite().to_uri())
        await until(gb, lambda: names(gb) == {"one.txt"})
        await b.close_group("g")
        gb = await b.open_group("g")
        ga.add_bytes("two.txt", b"second")
        await until(gb, lambda: names(gb) == {"one.txt", "two.txt"})
        assert await gb.read("two.txt") == b"second"
