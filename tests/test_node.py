"""The Node over real sockets on 127.0.0.x: feeds and blobs between nodes, restart, sealed identity."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from hyphal.blobs import BlobDownloader
from hyphal.errors import InvalidInput, WrongPassphrase
from hyphal.node import DHT_TABLE, Node

pytestmark = pytest.mark.anyio
WAIT = 15.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_two_nodes_share_a_feed_and_a_blob_over_one_connection() -> None:
    with anyio.fail_after(WAIT):
        async with Node(listen="127.0.0.1:0") as a, Node(listen="127.0.0.2:0") as b:
            notes = await a.own_feed("notes")
            notes.feed.append_batch([b"first", b"second"])
            photo = a.blobs.import_bytes(b"pixels " * 50_000)
            conn = await b.connect(*a.address, expected_remote=a.public_key)
            copy = await b.follow_feed(notes.feed.key, notes.feed.manifest)
            copy.start_download(0, None)
            assert await copy.feed.get(1) == b"second"
            notes.feed.append(b"live")
            assert await copy.feed.get(2) == b"live"
            async with BlobDownloader(b.blobs, photo.hash) as download:
                await download.add_provider(conn)
                await download.wait(timeout=WAIT)
            assert b.blobs.read(photo.hash, offset=0, length=6) == b"pixels"
            assert a.router.rejected == {}


async def test_a_restart_keeps_identity_feeds_blobs_and_the_dht_table(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with Node(listen="127.0.0.3:0") as seed:
            async with Node(
                tmp_path / "n", listen="127.0.0.4:0", bootstrap=[f"{seed.address[0]}:{seed.address[1]}"]
            ) as node:
                public_key = node.public_key
                feed = await node.own_feed("diary")
                feed.feed.append(b"day one")
                blob = node.blobs.import_bytes(b"kept")
                node.blobs.set_tag("kept", blob.hash)
                assert len(node.dht.node.table) >= 1  # it met the seed
            assert (tmp_path / "n" / DHT_TABLE).exists()
            async with Node(tmp_path / "n", listen="127.0.0.4:0") as again:
                assert again.public_key == public_key
                diary = await again.own_feed("diary")
                assert diary.feed.writable  # the writer key is derived again, not stored
                assert await diary.feed.get(0) == b"day one"
                diary.feed.append(b"day two")
                assert again.blobs.read(blob.hash, offset=0, length=4) == b"kept"


async def test_a_sealed_identity_needs_its_passphrase(tmp_path: Path) -> None:
    async with Node(tmp_path / "n", passphrase="correct horse") as node:
        public_key = node.public_key
    async with Node(tmp_path / "n", passphrase="correct horse") as node:
        assert node.public_key == public_key
    with pytest.raises(WrongPassphrase):
        async with Node(tmp_path / "n", passphrase="wrong"):
            pass


async def test_bad_settings_are_typed_errors_and_nothing_runs(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        Node(listen="no port here")
    node = Node(tmp_path / "n")
    with pytest.raises(InvalidInput, match="not running"):
        await node.connect("127.0.0.1", 1)
    with pytest.raises(InvalidInput):
        node.feed_writer("x")  # no identity before the node runs
