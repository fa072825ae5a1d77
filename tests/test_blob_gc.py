"""Blob removal and garbage collection: ``blob rm`` and ``blob gc`` on a daemon, and what GC keeps."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from hyphal.blobs import BlobFormat
from hyphal.blobs.collection import Collection
from hyphal.config import BlobsConfig
from hyphal.control.process import CliError, DaemonProcess, run_cli
from hyphal.node import Node


def daemon(tmp_path: Path, name: str) -> DaemonProcess:
    return DaemonProcess(tmp_path / name, ["node", "run", "--listen", "127.0.0.1:0", "--name", name]).start()


def test_a_removed_blob_is_gone_after_gc_and_a_group_file_is_kept(tmp_path: Path) -> None:
    a = daemon(tmp_path, "a")
    try:
        loose, shared = tmp_path / "loose.bin", tmp_path / "shared.txt"
        loose.write_bytes(b"nobody needs this" * 1000)
        shared.write_bytes(b"in the group" * 100)
        loose_hash = run_cli(a.data_dir, "blob", "add", str(loose))["hash"]
        run_cli(a.data_dir, "group", "create", "g")
        shared_hash = run_cli(a.data_dir, "add", str(shared))["hash"]
        # Tagged by `blob add` too: untagging it leaves the group's reason to keep it.
        run_cli(a.data_dir, "blob", "add", str(shared))
        kept = run_cli(a.data_dir, "blob", "rm", shared_hash)
        assert kept["kept_by"] == ["a group file"]
        assert run_cli(a.data_dir, "blob", "rm", loose_hash) == {
            "hash": loose_hash,
            "untagged": True,
            "kept_by": [],
        }
        collected = run_cli(a.data_dir, "blob", "gc")
        assert collected == {"deleted": [loose_hash], "freed_bytes": loose.stat().st_size}
        assert {b["hash"] for b in run_cli(a.data_dir, "blob", "ls")} == {shared_hash}
        # Removed from the group, the file's blob is referenced by nothing: the next GC frees it.
        run_cli(a.data_dir, "rm", "shared.txt")
        assert run_cli(a.data_dir, "blob", "gc")["deleted"] == [shared_hash]
        assert run_cli(a.data_dir, "blob", "ls") == []
        with pytest.raises(CliError, match=r"no blob \w+ here"):
            run_cli(a.data_dir, "blob", "rm", loose_hash)
        assert run_cli(a.data_dir, "blob", "gc") == {"deleted": [], "freed_bytes": 0}
    finally:
        a.kill()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_gc_keeps_what_a_kept_collection_names_and_runs_on_a_schedule(tmp_path: Path) -> None:
    async with Node(tmp_path / "n", blobs=BlobsConfig(gc_interval=0.05)) as node:
        blobs = node.blobs
        with blobs.import_bytes(b"child") as child, blobs.import_bytes(b"orphan") as orphan:
            collection = blobs.import_collection(Collection({"child": child.hash}))
            blobs.set_tag("album", collection.hash, BlobFormat.COLLECTION)
            collection.release()
        deleted, freed = await node.collect_garbage()
        assert (deleted, freed) == ([orphan.hash], len(b"orphan"))
        assert blobs.has(child.hash)
        assert blobs.has(collection.hash)
        # Untagged, the collection and what it names go at the next scheduled GC.
        collected = anyio.Event()
        gc = blobs.gc

        def gc_and_tell() -> list[bytes]:
            deleted = gc()
            if deleted:
                anyio.from_thread.run_sync(collected.set)
            return deleted

        blobs.gc = gc_and_tell  # type: ignore[method-assign]
        blobs.delete_tag("album")
        with anyio.fail_after(10):
            await collected.wait()
        assert blobs.blobs() == []
