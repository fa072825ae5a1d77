"""Helper for tests/test_feed_crash.py: append to a feed forever, acknowledging each append.

Usage: ``python feed_crash_writer.py DB SEED_HEX SYNCHRONOUS``. Creates the
feed (or reopens it after an earlier kill) and appends deterministic blocks,
alternating single appends and batches. After each append returns, it
prints the new length on its own line and flushes: a printed length is an
acknowledged, committed append. The test kills it with SIGKILL.
"""

from __future__ import annotations

import sys

from hyphal import KeyPair
from hyphal.feed import Feed, Manifest
from hyphal.storage import SqliteStorage


def block(index: int) -> bytes:
    """Block ``index``: a few KiB of bytes that depend on the index."""
    return (b"crash block %d|" % index) * (200 + index % 300)


def main(path: str, seed_hex: str, synchronous: str) -> None:
    keypair = KeyPair(bytes.fromhex(seed_hex))
    storage = SqliteStorage(path, synchronous="FULL" if synchronous == "FULL" else "NORMAL")
    key = Manifest.single(keypair.public_key).key
    feed = (
        Feed.open(storage, key, keypair=keypair) if storage.load_feed(key) else Feed.create(storage, keypair)
    )
    print(f"ready {feed.length}", flush=True)
    while True:
        n = feed.length
        length = feed.append(block(n)) if n % 2 else feed.append_batch([block(n + i) for i in range(5)])
        print(length, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
