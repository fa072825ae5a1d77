"""Child process of test_blob_crash.py: download a blob, printing progress, until killed.

argv: store directory, provider port, blob hash (hex), flush bytes. Prints one
line ``<bytes done>`` after every stored piece (so everything up to
``bytes done - flush bytes`` has been flushed when a line is printed).
"""

from __future__ import annotations

import sys

import anyio

from hyphal.blobs import BlobDownloader, BlobStore, DownloadConfig, Progress
from hyphal.net import ConnectionConfig, connect
from hyphal.signing import KeyPair


def report(p: Progress) -> None:
    print(p.bytes_done, flush=True)


async def main(path: str, port: int, hash_hex: str, flush_bytes: int) -> None:
    with BlobStore(path) as store:
        config = ConnectionConfig(keepalive_interval=None, idle_timeout=None)
        async with (
            await connect("127.0.0.1", port, KeyPair.generate(), config=config) as conn,
            BlobDownloader(
                store,
                bytes.fromhex(hash_hex),
                config=DownloadConfig(request_groups=4, window=2),
                on_progress=report,
                flush_bytes=flush_bytes,
            ) as dl,
        ):
            await dl.add_provider(conn)
            await dl.wait(60)
    print("done", flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
