"""The ``group`` suite: a new device syncs a whole group from two members and a backup.

Setup (untimed): member A creates a group and adds half of the files, member
B joins and adds the other half, both sync everything, and backup server C
is asked to hold the group and fetches every blob. The three are then
restarted as separate processes from their data dirs, on 127.0.0.1-3.

Timed: a fresh device D (this process) joins with the invite and runs
``sync_all``: connecting, fetching the members' repos, and every blob, each
striped across the providers that hold it. The figure is the files' bytes
over that time; the baseline is raw TCP loopback moving the same bytes
between two processes (:mod:`benches.loopback`), measured in the same run.
Every file D got is checked against its BLAKE3.

Files: 1,000 (quick: 60), sizes log-uniform from 1 KiB to 4 MiB (quick:
256 KiB), seeded, so every run syncs the same group.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import tempfile
import time
from pathlib import Path

import anyio
import blake3

from benches.harness import Row, ServingProcess, check, log, loopback_row
from benches.loopback import tcp_loopback_best
from hyphal.groups.group import Group
from hyphal.node import Node

KiB, MiB = 1024, 1024 * 1024
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
WAIT = 600.0


def _sizes(count: int, largest: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    low, high = math.log(KiB), math.log(largest)
    return [int(math.exp(rng.uniform(low, high))) for _ in range(count)]


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _write_files(directory: Path, sizes: list[int]) -> dict[str, bytes]:
    """The files, named f0000.bin...; returns name → BLAKE3."""
    directory.mkdir(parents=True)
    hashes = {}
    for i, size in enumerate(sizes):
        data = os.urandom(size)
        name = f"f{i:04d}.bin"
        (directory / name).write_bytes(data)
        hashes[name] = blake3.blake3(data).digest()
    return hashes


async def _until_complete(group: Group, count: int) -> None:
    with anyio.fail_after(WAIT):
        while not (len(group.files()) == count and all(group.has_blob(f) for f in group.files())):
            await group.fetched.wait()


async def _setup(root: Path, files: Path, names: list[str], addresses: list[str]) -> str:
    """A and B hold the group and every blob, C backs it up; returns an invite from A."""
    half = len(names) // 2
    a_addr, b_addr, c_addr = addresses
    async with (
        Node(root / "a", listen=a_addr, name="a") as a,
        Node(root / "c", listen=c_addr, name="backup", backup_for=[a.public_key]) as c,
    ):
        ga = await a.create_group("bench")
        for name in names[:half]:
            await ga.add_file(files / name)
        async with Node(root / "b", listen=b_addr, name="b") as b:
            gb = await b.join_group(ga.invite().to_uri())
            for name in names[half:]:
                await gb.add_file(files / name)
            check((await gb.sync_all()).missing == (), "B synced everything")
            check((await ga.sync_all()).missing == (), "A synced everything")
            await a.add_backup(ga.id, c_addr)
            await _until_complete(c.group(ga.id), len(names))
            return ga.invite().to_uri()


async def _sync_new_device(directory: Path, uri: str, hashes: dict[str, bytes]) -> tuple[float, int]:
    """Join and sync as a fresh device; returns (seconds, bytes fetched)."""
    async with Node(directory, listen="127.0.0.4:0", name="d") as d:
        started = time.perf_counter()
        group = await d.join_group(uri)
        result = await group.sync_all(timeout=WAIT)
        elapsed = time.perf_counter() - started
        check(result.missing == (), f"D fetched every file (missing: {result.missing[:3]})")
        got = {f.name: f for f in group.files()}
        check(set(got) == set(hashes), "D lists every file")
        for name, digest in hashes.items():
            check(blake3.blake3(await group.read(name)).digest() == digest, f"{name} matches")
        return elapsed, result.bytes_fetched


def run(quick: bool) -> list[Row]:
    count, largest, repeat = (60, 256 * KiB, 2) if quick else (1000, 4 * MiB, 2)
    sizes = _sizes(count, largest)
    total = sum(sizes)
    root = Path(tempfile.mkdtemp(prefix="hyphal-bench-group-"))
    try:
        log(f"   {count} files, {total / MiB:.0f} MiB; setting up A, B and backup C")
        hashes = _write_files(root / "files", sizes)
        addresses = [f"{host}:{_free_port(host)}" for host in HOSTS]
        uri = anyio.run(_setup, root, root / "files", sorted(hashes), addresses)
        peers = [
            ServingProcess("benches.group_peer", root / n, a) for n, a in zip("abc", addresses, strict=True)
        ]
        try:
            samples, loopback_bps = [], 0.0
            for i in range(repeat):
                seconds, fetched = anyio.run(_sync_new_device, root / f"d{i}", uri, hashes)
                check(fetched == total, f"D fetched {fetched} bytes, the files hold {total}")
                samples.append(seconds)
                shutil.rmtree(root / f"d{i}")
                # Loopback beside every sync; its best sample is the baseline (as in `replicate`).
                loopback_bps = max(loopback_bps, total / tcp_loopback_best(total, repeat=1))
                log(f"   sync {i + 1}: {seconds:.2f} s")
        finally:
            for peer in peers:
                peer.close()
        best = min(samples)
        return [
            loopback_row(
                f"new device syncs {count} files ({total / MiB:.0f} MiB) from 2 members + 1 backup",
                total / best,
                loopback_bps,
                note=f"best of {repeat}: {best:.2f} s (join, repos, blobs; each file verified)",
                details={"seconds": samples, "files": count, "bytes": total},
            )
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
