"""A blob provider process for the ``blobs`` suite.

``python -m benches.blobs_provider STORE_DIR FILE MAX_RATE``: imports FILE into
a store at STORE_DIR, listens on 127.0.0.1, prints one JSON line
``{"port": ..., "hash": ...}`` and serves until its stdin closes. MAX_RATE
is bytes per second per channel, 0 for no cap.
"""

from __future__ import annotations

import json
import sys

import anyio

from hyphal.blobs import BlobProvider, BlobStore, ProviderConfig
from hyphal.net.connection import listen
from hyphal.signing import KeyPair


async def main(directory: str, path: str, max_rate: float) -> None:
    with BlobStore(directory, sync=False) as store:
        tag = store.import_file(path)
        provider = BlobProvider(store, ProviderConfig(max_rate=max_rate or None))
        async with await listen("127.0.0.1", 0, KeyPair.generate(), provider.serve_connection) as listener:
            print(json.dumps({"port": listener.port, "hash": tag.hash.hex()}), flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], float(sys.argv[3]))
