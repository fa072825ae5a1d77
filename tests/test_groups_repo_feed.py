"""A member's repo feed: encrypted for the group, its collection following local and replicated blocks."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from hyphal.errors import InvalidInput
from hyphal.feed import Feed
from hyphal.groups.keys import GroupKeys, new_group_secret
from hyphal.groups.repo import Repo, writer_keypair
from hyphal.net.connection import Connection, connect, listen
from hyphal.replication.driver import FeedReplication
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

KEYS = GroupKeys(bytes(range(32)), new_group_secret())
DEVICE = KeyPair(bytes(range(1, 33)))
H1, H2 = bytes(32), bytes(range(32))


def test_own_repo_survives_a_restart_and_hides_names_at_rest(tmp_path: Path) -> None:
    with SqliteStorage(tmp_path / "a.db") as storage:
        repo = Repo.open_own(storage, DEVICE, KEYS)
        assert repo.put("photos/cat.jpg", H1, 10) == 0
        repo.put("notes.txt", H2, 3)
        assert repo.delete("photos/cat.jpg") == 2
        with pytest.raises(InvalidInput):
            repo.delete("photos/cat.jpg")
        assert list(repo.collection) == ["notes.txt"]
        key = repo.key
        assert all(b"notes.txt" not in repo.feed.get_stored(i) for i in range(3))  # sealed at rest
    assert writer_keypair(DEVICE, KEYS).public_key != DEVICE.public_key
    with SqliteStorage(tmp_path / "a.db") as storage:
        again = Repo.open_own(storage, DEVICE, KEYS)
        assert again.key == key  # derived again, nothing extra stored
        assert list(again.collection) == ["notes.txt"]
        assert again.collection.length == 3
        assert again.feed.writable


@pytest.mark.anyio
async def test_a_member_follows_anothers_repo_live_over_tcp(tmp_path: Path) -> None:
    with SqliteStorage(tmp_path / "a.db") as a_store, SqliteStorage(tmp_path / "b.db") as b_store:
        mine = Repo.open_own(a_store, DEVICE, KEYS)
        mine.put("a.txt", H1, 1)
        async with FeedReplication(mine.feed) as serving:

            async def handler(conn: Connection) -> None:
                await serving.attach(conn)
                await conn.closed.wait()

            async with (
                await listen("127.0.0.1", 0, KeyPair.generate(), handler) as server,
                await connect("127.0.0.1", server.port, KeyPair.generate()) as conn,
            ):
                theirs = Repo.follow(b_store, mine.feed.manifest.signers[0], KEYS)
                async with FeedReplication(theirs.feed) as following:
                    await following.attach(conn)
                    following.start_download(0, None)
                    with anyio.fail_after(10):
                        await theirs.feed.get(0)
                    assert list(theirs.collection) == ["a.txt"]
                    mine.put("b.txt", H2, 2)
                    with anyio.fail_after(10):
                        await theirs.feed.get(1)
                    assert list(theirs.collection) == ["a.txt", "b.txt"]
                    assert not theirs.feed.writable


def test_a_replica_without_the_group_secret_cannot_read_a_repo(tmp_path: Path) -> None:
    with SqliteStorage(tmp_path / "a.db") as storage:
        mine = Repo.open_own(storage, DEVICE, KEYS)
        mine.put("x", H1, 1)
        relay_view = Feed.open(storage, mine.key)  # what a relay or backup holds
        with pytest.raises(InvalidInput):
            Repo(relay_view)


def test_a_malformed_block_stops_the_collection_there(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with SqliteStorage(tmp_path / "a.db") as storage:
        repo = Repo.open_own(storage, DEVICE, KEYS)
        repo.put("a", H1, 1)
        repo.feed.append(b"\x09 not an operation")  # a buggy or hostile member's own feed
        repo.put("b", H2, 2)
        assert repo.bad_block == 1
        assert list(repo.collection) == ["a"]  # nothing past the bad block is applied
        assert "not a repo operation" in caplog.text
