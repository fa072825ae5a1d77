"""A group member or backup process for the ``group`` suite.

``python -m benches.group_peer DATA_DIR HOST:PORT``: runs the node saved in
DATA_DIR (its groups, repos and blobs) on HOST:PORT, prints one JSON line
``{"key": ...}`` once it serves, and serves until its stdin closes.
"""

from __future__ import annotations

import json
import sys

import anyio

from hyphal.node import Node


async def main(data_dir: str, listen: str) -> None:
    async with Node(data_dir, listen=listen) as node:
        print(json.dumps({"key": node.public_key.hex()}), flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
