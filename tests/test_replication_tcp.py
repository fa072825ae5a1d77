"""Feed replication between real nodes over encrypted TCP on 127.0.0.1.

Each node has its own SQLite storage; the writer serves, readers attach
and download. Waits are on events with timeouts, never sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from hyphal import errors
from hyphal.feed import Feed, Manifest
from hyphal.net.connection import Connection, connect, listen
from hyphal.replication.driver import FeedReplication
from hyphal.replication.manifest_exchange import PROTOCOL as MANIFEST_PROTOCOL
from hyphal.replication.manifest_exchange import fetch_manifest
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio
TIMEOUT = 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def blocks(n: int, size: int = 1000) -> list[bytes]:
    return [i.to_bytes(4, "little") * (size // 4) for i in range(n)]


@asynccontextmanager
async def serving(
    replications: list[FeedReplication], keypair: KeyPair
) -> AsyncIterator[tuple[int, list[Connection]]]:
    """A listener on 127.0.0.1 attaching every accepted connection to ``replications``."""
    accepted: list[Connection] = []

    async def handler(conn: Connection) -> None:
        accepted.append(conn)
        for replication in replications:
            await replication.attach(conn)
        await conn.closed.wait()

    listener = await listen("127.0.0.1", 0, keypair, handler)
    async with listener:
        yield listener.port, accepted


async def dial(port: int, keypair: KeyPair) -> Connection:
    return await connect("127.0.0.1", port, keypair)


async def until(check: Callable[[], bool], changed: Callable[[], Awaitable[None]]) -> None:
    with anyio.fail_after(TIMEOUT):
        while not check():
            await changed()


async def test_full_download(tmp_path: Path) -> None:
    writer_kp, reader_kp = KeyPair.generate(), KeyPair.generate()
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = Feed.create(ws, writer_kp)
        data = blocks(300)
        writer.append_batch(data)
        reader = Feed.open(rs, writer.key, manifest=writer.manifest)
        async with FeedReplication(writer) as wrep, serving([wrep], writer_kp) as (port, _):
            conn = await dial(port, reader_kp)
            async with conn, FeedReplication(reader) as rrep:
                await rrep.attach(conn)
                await rrep.download(0, 300, timeout=TIMEOUT)
        assert reader.length == 300
        assert reader.downloaded() == 300
        assert reader.tree_hash() == writer.tree_hash()
        assert [reader.get_nowait(i) for i in range(300)] == data
    # Persisted: a reopened reader still has everything, verified.
    with SqliteStorage(tmp_path / "r.db") as rs:
        again = Feed.open(rs, writer.key)
        assert again.length == 300
        assert again.get_nowait(299) == data[299]


async def test_sparse_read_fetches_only_what_it_needs(tmp_path: Path) -> None:
    writer_kp, reader_kp = KeyPair.generate(), KeyPair.generate()
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = Feed.create(ws, writer_kp)
        data = blocks(9)
        writer.append_batch(data)
        reader = Feed.open(rs, writer.key, manifest=writer.manifest)
        async with FeedReplication(writer) as wrep, serving([wrep], writer_kp) as (port, _):
            conn = await dial(port, reader_kp)
            async with conn, FeedReplication(reader) as rrep:
                await rrep.attach(conn)
                await rrep.download(0, 9, timeout=TIMEOUT)
                assert reader.length == 9
                writer.append_batch(blocks(11)[9:])
                # The reader wants block 10 only: it gets it, and not block 9.
                await rrep.download(10, 11, timeout=TIMEOUT)
                assert reader.length == 11
                assert reader.has(10)
                assert not reader.has(9)
                assert await reader.get(10, wait=False) == blocks(11)[10]
                assert reader.downloaded() == 10


async def test_live_updates_without_rejoining(tmp_path: Path) -> None:
    writer_kp, reader_kp = KeyPair.generate(), KeyPair.generate()
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = Feed.create(ws, writer_kp)
        writer.append(b"first")
        reader = Feed.open(rs, writer.key, manifest=writer.manifest)
        async with FeedReplication(writer) as wrep, serving([wrep], writer_kp) as (port, _):
            conn = await dial(port, reader_kp)
            async with conn, FeedReplication(reader) as rrep:
                await rrep.attach(conn)
                rrep.start_download(0, None)  # everything, including future blocks
                for i in range(1, 6):
                    writer.append(b"block %d" % i)
                    with anyio.fail_after(TIMEOUT):
                        assert await reader.get(i) == b"block %d" % i
                assert reader.length == 6
                assert conn.closed.is_set() is False


async def test_three_nodes_share_the_load(tmp_path: Path) -> None:
    # Writer -> reader A (full copy); reader B downloads from both writer and A.
    kps = [KeyPair.generate() for _ in range(3)]
    with (
        SqliteStorage(tmp_path / "w.db") as ws,
        SqliteStorage(tmp_path / "a.db") as sa,
        SqliteStorage(tmp_path / "b.db") as sb,
    ):
        writer = Feed.create(ws, kps[0])
        data = blocks(400, 4000)
        writer.append_batch(data)
        a = Feed.open(sa, writer.key, manifest=writer.manifest)
        b = Feed.open(sb, writer.key, manifest=writer.manifest)
        async with (
            FeedReplication(writer) as wrep,
            FeedReplication(a) as arep,
            FeedReplication(b) as brep,
            serving([wrep], kps[0]) as (wport, _),
            serving([arep], kps[1]) as (aport, _),
        ):
            ca = await dial(wport, kps[1])
            async with ca:
                await arep.attach(ca)
                await arep.download(0, 400, timeout=TIMEOUT)
                cbw = await dial(wport, kps[2])
                cba = await dial(aport, kps[2])
                async with cbw, cba:
                    await brep.attach(cbw)
                    await brep.attach(cba)
                    assert brep.peer_count == 2
                    await brep.download(0, 400, timeout=TIMEOUT)
        assert b.tree_hash() == writer.tree_hash()
        assert [b.get_nowait(i) for i in range(400)] == data


async def test_multisig_feed_replicates(tmp_path: Path) -> None:
    signers = [KeyPair.generate() for _ in range(3)]
    manifest = Manifest(tuple(k.public_key for k in signers), quorum=2)
    reader_kp = KeyPair.generate()
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = Feed.create_multisig(ws, manifest, signers[:2])
        writer.append_batch(blocks(20))
        head = writer.head()
        assert head is not None
        assert len(head.signatures) == 2
        reader = Feed.open(rs, writer.key, manifest=manifest)
        async with FeedReplication(writer) as wrep, serving([wrep], signers[0]) as (port, _):
            conn = await dial(port, reader_kp)
            async with conn, FeedReplication(reader) as rrep:
                await rrep.attach(conn)
                await rrep.download(0, 20, timeout=TIMEOUT)
        assert reader.length == 20
        assert reader.head() == writer.head()


async def test_a_peer_with_another_feed_key_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An impostor answers on the writer's discovery key (which is public) but
    # knows only its own feed key: its capability MAC cannot match, so the
    # reader drops it at AUTH and stores nothing.
    writer_kp, other_kp, reader_kp = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = Feed.create(ws, writer_kp)
        writer.append_batch(blocks(5))
        impostor = Feed.create(ws, other_kp)
        impostor.append_batch(blocks(7))
        reader = Feed.open(rs, writer.key, manifest=writer.manifest)
        caplog.set_level(logging.INFO, "hyphal")
        imp_rep = FeedReplication(impostor)
        # The impostor answers on the writer's discovery key but knows only its own feed key.
        imp_rep.feed = _Relabelled(impostor, writer.discovery_key)  # type: ignore[assignment]
        async with imp_rep, serving([imp_rep], other_kp) as (port, _):
            conn = await dial(port, reader_kp)
            async with conn, FeedReplication(reader) as rrep:
                await rrep.attach(conn)
                await until(lambda: bool(rrep.dropped), lambda: anyio.wait_all_tasks_blocked())
                assert rrep.dropped[0][1] == "bad-auth"
        assert reader.length == 0
        assert reader.downloaded() == 0


class _Relabelled:
    """A feed that claims another feed's discovery key (for the impostor test)."""

    def __init__(self, feed: Feed, discovery_key: bytes) -> None:
        self._feed = feed
        self.discovery_key = discovery_key

    def __getattr__(self, name: str) -> object:
        return getattr(self._feed, name)


async def test_a_reader_starts_from_the_feed_key_alone(tmp_path: Path) -> None:
    writer_kp, reader_kp = KeyPair.generate(), KeyPair.generate()
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = Feed.create(ws, writer_kp)
        writer.append_batch(blocks(10))
        async with FeedReplication(writer) as wrep, serving([wrep], writer_kp) as (port, _):
            conn = await dial(port, reader_kp)
            async with conn:
                manifest = await fetch_manifest(conn, writer.key, timeout=TIMEOUT)
                assert manifest == writer.manifest
                reader = Feed.open(rs, writer.key, manifest=manifest)
                async with FeedReplication(reader) as rrep:
                    await rrep.attach(conn)
                    await rrep.download(0, 10, timeout=TIMEOUT)
                assert reader.tree_hash() == writer.tree_hash()
            # A peer that cannot produce the feed's capability gets no manifest.
            prober = await dial(port, KeyPair.generate())
            async with prober:
                channel = await prober.open_channel(MANIFEST_PROTOCOL, writer.discovery_key)
                await channel.send(bytes(32))
                with anyio.fail_after(TIMEOUT), pytest.raises(anyio.EndOfStream):
                    await channel.receive()


async def test_a_local_storage_failure_neither_crashes_nor_blames_the_peer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer_kp, reader_kp = KeyPair.generate(), KeyPair.generate()
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = Feed.create(ws, writer_kp)
        writer.append_batch(blocks(50))
        reader = Feed.open(rs, writer.key, manifest=writer.manifest)
        real_apply = reader.apply_remote
        failures = []

        def flaky_apply(*args: object, **kwargs: object) -> int:
            if not failures:
                failures.append(1)
                raise OSError("disk full (simulated)")
            return real_apply(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(reader, "apply_remote", flaky_apply)
        async with FeedReplication(writer) as wrep, serving([wrep], writer_kp) as (port, _):
            conn = await dial(port, reader_kp)
            async with conn, FeedReplication(reader) as rrep:
                await rrep.attach(conn)
                await rrep.download(0, 50, timeout=TIMEOUT)
                assert rrep.dropped == []
                assert rrep.peer_count == 1
        assert failures == [1]
        assert reader.tree_hash() == writer.tree_hash()


async def test_large_and_mixed_blocks_replicate(tmp_path: Path) -> None:
    from hyphal.feed.feed import MAX_BLOCK_SIZE

    writer_kp, reader_kp = KeyPair.generate(), KeyPair.generate()
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = Feed.create(ws, writer_kp)
        # Mostly small blocks (so requests ask for many) with full-size ones among them:
        # a reply that would not fit a message is refused and asked for in smaller parts.
        data = [bytes([i]) * (MAX_BLOCK_SIZE if i in (7, 8, 60) else 100) for i in range(120)]
        writer.append_batch(data)
        with pytest.raises(errors.InvalidInput):
            writer.append(bytes(MAX_BLOCK_SIZE + 1))
        reader = Feed.open(rs, writer.key, manifest=writer.manifest)
        async with FeedReplication(writer) as wrep, serving([wrep], writer_kp) as (port, _):
            conn = await dial(port, reader_kp)
            async with conn, FeedReplication(reader) as rrep:
                await rrep.attach(conn)
                await rrep.download(0, 120, timeout=TIMEOUT)
                assert rrep.dropped == []
        assert [reader.get_nowait(i) for i in range(120)] == data
