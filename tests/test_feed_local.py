"""A feed on its own: create, append, read, wait, truncate, reopen."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import pytest

from hyphal import KeyPair, MerkleTree, _core, errors
from hyphal.feed import Feed, FeedChange, HeadSignature, Manifest
from hyphal.storage import SqliteStorage

WRITER = KeyPair(b"w" * 32)
OTHER = KeyPair(b"o" * 32)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    with SqliteStorage(tmp_path / "feeds.db") as s:
        yield s


def blocks(n: int, start: int = 0) -> list[bytes]:
    return [b"block %d" % i for i in range(start, start + n)]


def expected_tree_hash(data: Sequence[bytes]) -> bytes:
    tree = MerkleTree()
    tree.append(list(data))
    return tree.hash()


def test_a_new_feed_is_a_signed_empty_1_of_1_feed(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    assert feed.manifest == Manifest.single(WRITER.public_key)
    assert feed.key == feed.manifest.key
    assert feed.discovery_key == feed.manifest.discovery_key
    assert feed.writable
    assert (feed.length, feed.byte_length, feed.fork) == (0, 0, 0)
    head = feed.head()
    assert head is not None
    assert head.length == 0
    assert head.tree_hash == _core.tree_hash([])
    head.verify(feed.manifest)
    with pytest.raises(errors.InvalidInput):
        Feed.create(storage, WRITER)  # same manifest, same key: already there
    assert Feed.create(storage, WRITER, label=b"second").key != feed.key


def test_append_returns_the_length_and_signs_the_tree(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    assert feed.append(b"hello") == 1
    assert feed.append_batch(blocks(4, 1)) == 5
    assert feed.append_batch([]) == 5
    data = [b"hello", *blocks(4, 1)]
    head = feed.head()
    assert head is not None
    assert (head.length, head.fork) == (5, 0)
    assert head.tree_hash == expected_tree_hash(data) == feed.tree_hash()
    head.verify(feed.manifest)
    assert feed.byte_length == sum(map(len, data))
    assert feed.has(4)
    assert not feed.has(5)
    assert feed.has_range(0, 5)
    assert not feed.has_range(3, 6)
    assert feed.missing() == []
    assert feed.missing(0, 8) == [(5, 8)]
    assert feed.contiguous_length == 5
    assert feed.downloaded() == 5


def test_append_accepts_any_buffer(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    feed.append_batch([bytearray(b"ab"), memoryview(b"cd")])
    assert feed.get_nowait(0) == b"ab"
    assert feed.get_nowait(1) == b"cd"
    with pytest.raises(errors.InvalidInput):
        feed.append("text")  # type: ignore[arg-type]
    assert feed.length == 2


def test_append_batch_is_one_signature(storage: SqliteStorage) -> None:
    calls: list[bytes] = []

    def signer(message: bytes) -> list[HeadSignature]:
        calls.append(message)
        return [HeadSignature(0, WRITER.sign(message))]

    feed = Feed.create_multisig(storage, Manifest.single(WRITER.public_key, b"cb"), signer)
    feed.append_batch(blocks(100))
    assert len(calls) == 2  # the empty head at creation, then one for the batch
    assert calls[-1] == _core.head_signable(feed.key, feed.tree_hash(), 100, 0)


def test_a_signer_callback_that_signs_wrong_stores_nothing(storage: SqliteStorage) -> None:
    good = True

    def signer(message: bytes) -> list[HeadSignature]:
        return [HeadSignature(0, (WRITER if good else OTHER).sign(message))]

    feed = Feed.create_multisig(storage, Manifest.single(WRITER.public_key), signer)
    feed.append(b"fine")
    good = False
    with pytest.raises(errors.SignatureError):
        feed.append(b"badly signed")
    assert feed.length == 1
    assert not feed.has(1)
    assert Feed.open(storage, feed.key).length == 1


@pytest.mark.anyio
async def test_get_returns_blocks_and_reports_missing_ones(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    feed.append_batch(blocks(3))
    assert await feed.get(2) == b"block 2"
    with pytest.raises(errors.NotAvailable, match="not available"):
        await feed.get(3, wait=False)
    with pytest.raises(errors.NotAvailable, match="not available"):
        feed.get_nowait(3)
    with pytest.raises(TimeoutError):
        await feed.get(3, timeout=0)
    for bad in (-1, 2**62, 1.5, True):
        with pytest.raises(errors.InvalidInput):
            await feed.get(bad)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_get_waits_for_a_later_append(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    got: list[bytes] = []
    waiting = anyio.Event()

    async def reader() -> None:
        waiting.set()
        got.append(await feed.get(1, timeout=5))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await waiting.wait()
            feed.append(b"zero")  # not the one it waits for
            await anyio.lowlevel.checkpoint()
            assert got == []
            feed.append(b"one")
    assert got == [b"one"]


@pytest.mark.anyio
async def test_changes_are_announced(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    seen: list[FeedChange] = []
    unsubscribe = feed.on_change(seen.append)
    feed.on_change(lambda change: 1 / 0)  # a broken listener does not stop the others
    feed.append_batch(blocks(3))
    feed.truncate(1)
    unsubscribe()
    feed.append(b"unseen")
    assert seen == [FeedChange(3, 0, 0, 3), FeedChange(1, 1, 1, 1, truncated_to=1)]

    async def grow() -> None:
        feed.append_batch(blocks(5))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(grow)
            assert await feed.wait_for_length(7) == 7
    with pytest.raises(TimeoutError):
        await feed.wait_for_length(100, timeout=0)


def test_truncate_bumps_the_fork_and_drops_blocks_and_nodes(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    feed.append_batch(blocks(13))
    feed.truncate(5)
    head = feed.head()
    assert head is not None
    assert (head.length, head.fork) == (5, 1)
    assert feed.fork == 1
    assert head.tree_hash == expected_tree_hash(blocks(5))
    head.verify(feed.manifest)
    assert not feed.has(5)
    assert feed.has_range(0, 5)
    assert storage.get_blocks(feed.key, 0, 20).keys() == set(range(5))
    indexes = storage.get_nodes(feed.key, list(range(64))).keys()
    assert all(_core.ft_block_range(i)[1] <= 5 for i in indexes)
    assert feed.append(b"new five") == 6
    assert feed.tree_hash() == expected_tree_hash([*blocks(5), b"new five"])
    feed.truncate(6)  # truncating to the current length just bumps the fork
    assert (feed.length, feed.fork) == (6, 2)
    with pytest.raises(errors.InvalidInput):
        feed.truncate(7)


def test_reopen_restores_everything(storage: SqliteStorage, tmp_path: Path) -> None:
    feed = Feed.create(storage, WRITER)
    feed.append_batch(blocks(9))
    feed.truncate(7)
    feed.append(b"again")
    storage.close()
    with SqliteStorage(tmp_path / "feeds.db") as again:
        reopened = Feed.open(again, feed.key, keypair=WRITER)
        assert reopened.writable
        assert (reopened.length, reopened.fork, reopened.head()) == (8, 1, feed.head())
        assert reopened.tree_hash() == feed.tree_hash()
        assert reopened.get_nowait(7) == b"again"
        assert reopened.append(b"more") == 9
        read_only = Feed.open(again, feed.key, keypair=OTHER)
        assert not read_only.writable
        assert read_only.length == 9
        with pytest.raises(errors.InvalidInput):
            read_only.append(b"x")
        with pytest.raises(errors.InvalidInput):
            read_only.truncate(0)


def test_open_an_unknown_feed(storage: SqliteStorage) -> None:
    manifest = Manifest.single(WRITER.public_key)
    with pytest.raises(errors.InvalidInput):
        Feed.open(storage, manifest.key)
    with pytest.raises(errors.InvalidInput):
        Feed.open(storage, manifest.key, manifest=Manifest.single(OTHER.public_key))
    reader = Feed.open(storage, manifest.key, manifest=manifest)
    assert reader.head() is None
    assert reader.length == 0
    assert not reader.writable
    assert Feed.open(storage, manifest.key).manifest == manifest  # now stored


def test_multisig_feed_needs_a_quorum(storage: SqliteStorage) -> None:
    pairs = [KeyPair(bytes([i]) * 32) for i in range(3)]
    manifest = Manifest(tuple(p.public_key for p in pairs), quorum=2)
    with pytest.raises(errors.InvalidInput):
        Feed.create_multisig(storage, manifest, pairs[:1])
    feed = Feed.create_multisig(storage, manifest, [pairs[2], pairs[0]])
    feed.append(b"agreed")
    head = feed.head()
    assert head is not None
    assert [s.signer for s in head.signatures] == [0, 2]
    head.verify(manifest)
    assert not Feed.open(storage, feed.key, keypair=pairs[1]).writable
    assert Feed.open(storage, feed.key, keypairs=pairs[:2]).writable


def test_multiple_feeds_share_one_database(storage: SqliteStorage) -> None:
    a = Feed.create(storage, WRITER)
    b = Feed.create(storage, OTHER)
    a.append_batch(blocks(3))
    b.append_batch(blocks(2, 100))
    assert a.get_nowait(1) == b"block 1"
    assert b.get_nowait(1) == b"block 101"
    assert not b.has(2)
    assert set(storage.feed_keys()) == {a.key, b.key}


def test_large_batches_in_small_blocks(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    chunk = bytes(range(256)) * 16
    feed.append_batch([chunk] * 4096)  # 16 MiB in 4 KiB blocks
    assert feed.length == 4096
    assert feed.byte_length == 16 * 2**20
    assert feed.get_nowait(4095) == chunk


def test_stored_blocks_are_checked_against_their_leaf(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)
    feed.append_batch(blocks(2))
    # Flip the block's bytes in the data file, behind the storage's back.
    (off, size) = storage._conn.execute("SELECT off, len FROM blocks WHERE idx = 1").fetchone()
    os.pwrite(storage._data_fd, bytes(b ^ 0xFF for b in os.pread(storage._data_fd, size, off)), off)
    with pytest.raises(errors.VerificationError):
        feed.get_nowait(1)
    with pytest.raises(errors.VerificationError):
        feed.get_stored(1)
    storage._conn.execute("DELETE FROM blocks WHERE idx = 0")
    with pytest.raises(errors.DecodeError):
        feed.get_nowait(0)


def test_waiting_works_again_in_a_new_event_loop(storage: SqliteStorage) -> None:
    feed = Feed.create(storage, WRITER)

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await feed.get(0, timeout=0)

    async def wait_then_append() -> bytes:
        waiting = anyio.Event()
        got: list[bytes] = []

        async def waiter() -> None:
            waiting.set()
            await feed.changed()
            got.append(await feed.get(0, wait=False))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                await waiting.wait()
                feed.append(b"zero")
        return got[0]

    anyio.run(give_up)  # leaves a cancelled waiter behind in a loop that is now closed
    assert anyio.run(wait_then_append) == b"zero"
