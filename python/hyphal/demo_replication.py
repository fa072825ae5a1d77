"""The multi-node part of `make demo`: three nodes replicate a feed over encrypted TCP.

Each node has its own SQLite storage in a temporary directory and its own
identity. The writer stores the file as a signed feed; node B downloads all
of it; node C, which wants one block only, fetches exactly that block from B
and the writer at once; then the writer appends and B receives the new block
live on the same connection.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from hyphal.feed import Feed
from hyphal.net.connection import Connection, Listener, connect, listen
from hyphal.replication.driver import FeedReplication
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

TIMEOUT = 60.0


async def _serve(replication: FeedReplication, keypair: KeyPair) -> Listener:
    async def on_connection(conn: Connection) -> None:
        await replication.attach(conn)
        await conn.closed.wait()

    return await listen("127.0.0.1", 0, keypair, on_connection)


async def _nodes(blocks: Sequence[bytes], directory: Path, check: Callable[[bool, str], None]) -> None:
    ids = {name: KeyPair.generate() for name in ("writer", "B", "C")}
    with (
        SqliteStorage(directory / "writer.db") as ws,
        SqliteStorage(directory / "b.db") as bs,
        SqliteStorage(directory / "c.db") as cs,
    ):
        feed = Feed.create(ws, ids["writer"])
        feed.append_batch(blocks)
        b = Feed.open(bs, feed.key, manifest=feed.manifest)
        c = Feed.open(cs, feed.key, manifest=feed.manifest)
        async with (
            FeedReplication(feed) as wrep,
            FeedReplication(b) as brep,
            FeedReplication(c) as crep,
            await _serve(wrep, ids["writer"]) as wlisten,
            await _serve(brep, ids["B"]) as blisten,
        ):
            print(
                f"   writer serves discovery key {feed.discovery_key.hex()[:16]}… on 127.0.0.1:{wlisten.port}"
            )
            b_to_w = await connect(
                "127.0.0.1", wlisten.port, ids["B"], expected_remote=ids["writer"].public_key
            )
            async with b_to_w:
                check(
                    b_to_w.remote_public_key == ids["writer"].public_key,
                    "B authenticated the writer (Noise XX)",
                )
                await brep.attach(b_to_w)
                t0 = time.perf_counter()
                await brep.download(0, feed.length, timeout=TIMEOUT)
                elapsed = time.perf_counter() - t0
                size = sum(map(len, blocks))
                print(
                    f"   B downloaded {b.length} blocks in {elapsed * 1e3:.0f} ms "
                    f"({size / elapsed / 1e6:.0f} MB/s)"
                )
                check(
                    b.tree_hash() == feed.tree_hash() and b.downloaded() == feed.length,
                    "B holds the whole feed, verified",
                )

                c_to_w = await connect("127.0.0.1", wlisten.port, ids["C"])
                c_to_b = await connect("127.0.0.1", blisten.port, ids["C"])
                async with c_to_w, c_to_b:
                    await crep.attach(c_to_w)
                    await crep.attach(c_to_b)
                    wanted = len(blocks) // 2
                    await crep.download(wanted, wanted + 1, timeout=TIMEOUT)
                    check(
                        c.downloaded() == 1 and c.get_nowait(wanted) == blocks[wanted],
                        f"C, connected to B and the writer, fetched only block {wanted}",
                    )

                brep.start_download(0, None)  # B follows the feed live
                feed.append(b"appended while B is connected")
                with anyio.fail_after(TIMEOUT):
                    got = await b.get(len(blocks))
                check(got == b"appended while B is connected", "B received the new block live, no re-join")


def run_nodes(blocks: Sequence[bytes], check: Callable[[bool, str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="hyphal-demo-") as tmp:
        anyio.run(_nodes, blocks, Path(tmp), check)


__all__ = ["run_nodes"]
