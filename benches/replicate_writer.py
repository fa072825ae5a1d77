"""The writer node of the ``replicate`` bench, run as its own process.

``python -m benches.replicate_writer DIR TOTAL_BYTES BLOCK_SIZE`` creates a
feed in ``DIR``, appends ``TOTAL_BYTES`` of random blocks (timed, together
with the ``blake3`` package hashing the same bytes as a reference), then
serves it on 127.0.0.1 until its stdin closes. It prints one JSON line:
port, feed key, manifest, and the append and baseline timings.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import anyio
import blake3 as blake3_pkg

from hyphal.feed import Feed
from hyphal.net.connection import Connection, listen
from hyphal.replication.driver import FeedReplication
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

BATCH_BYTES = 16 << 20


async def main(directory: Path, total: int, block_size: int) -> None:
    keypair = KeyPair.generate()
    pool = os.urandom(BATCH_BYTES)
    view = memoryview(pool)
    batch = [view[o : o + block_size] for o in range(0, BATCH_BYTES, block_size)]
    with SqliteStorage(directory / "writer.db") as storage:
        feed = Feed.create(storage, keypair)
        t0 = time.perf_counter()
        written = 0
        while written < total:
            n = min(BATCH_BYTES, total - written)
            feed.append_batch(batch[: n // block_size])
            written += n
        append_s = time.perf_counter() - t0
        reps = max(1, total // BATCH_BYTES)
        t0 = time.perf_counter()
        for _ in range(reps):
            blake3_pkg.blake3(pool).digest()
        blake3_bps = reps * BATCH_BYTES / (time.perf_counter() - t0)

        async with FeedReplication(feed) as replication:

            async def handler(conn: Connection) -> None:
                await replication.attach(conn)
                await conn.closed.wait()

            async with await listen("127.0.0.1", 0, keypair, handler) as listener:
                line = {
                    "port": listener.port,
                    "key": feed.key.hex(),
                    "manifest": feed.manifest.encode().hex(),
                    "length": feed.length,
                    "append_s": append_s,
                    "blake3_bps": blake3_bps,
                }
                print(json.dumps(line), flush=True)
                # Serve until the bench closes our stdin.
                await anyio.to_thread.run_sync(sys.stdin.read)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
