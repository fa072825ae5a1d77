"""The ``replicate`` suite: feed replication between two processes over encrypted TCP loopback.

A writer process (:mod:`benches.replicate_writer`) appends a feed and serves
it; this process is the reader, with its own SQLite storage, and downloads
over a Noise-encrypted connection. In the same run it measures raw TCP
loopback between two processes (:mod:`benches.loopback`), the baseline of
the download rows. hypercore itself can't run here (no npm registry), so
its figures from the anchors in benches/README.md appear in the notes only.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from benches.harness import Row, ServingProcess, check, log, loopback_row
from benches.loopback import tcp_loopback_best
from hyphal.feed import Feed, Manifest
from hyphal.net.connection import connect
from hyphal.replication.driver import FeedReplication
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True, slots=True)
class Case:
    total: int
    block: int


FULL = {"big": Case(256 * MiB, 64 * KiB), "small": Case(64 * MiB, 4 * KiB)}
QUICK = {"big": Case(32 * MiB, 64 * KiB), "small": Case(8 * MiB, 4 * KiB)}
SPARSE_FRACTION = 0.01
DOWNLOAD_REPEAT = 3


class Writer(ServingProcess):
    """The writer process: started, appended, serving; closed by closing its stdin."""

    def __init__(self, directory: Path, case: Case) -> None:
        super().__init__("benches.replicate_writer", directory, case.total, case.block)
        info = self.info
        self.port: int = info["port"]
        self.key = bytes.fromhex(info["key"])
        self.manifest = Manifest.decode(bytes.fromhex(info["manifest"]))
        self.length: int = info["length"]
        self.append_s: float = info["append_s"]
        self.blake3_bps: float = info["blake3_bps"]


def warm_guest_memory(directory: Path, size: int) -> None:
    """Write and delete ``size`` bytes of file, so later page-cache writes reuse freed pages.

    On a VM just booted, the first touch of guest RAM the host has not backed
    yet costs ~10x a normal write (here 450-650 MB/s against ~5 GB/s): a
    property of the machine's age, not of the code. It would land on whichever
    row first grows the page cache. This takes it out of every row alike.
    """
    path = directory / "warm-up"
    chunk = bytes(8 * MiB)
    with path.open("wb") as f:
        for _ in range(size // len(chunk)):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def _remove_reader_files(database: Path) -> None:
    """A reader's database, WAL and block file: freed so the next reader reuses their pages."""
    for path in database.parent.glob(database.name + "*"):
        path.unlink()


async def _download(
    writer: Writer, directory: Path, blocks: list[int] | None
) -> tuple[float, Feed, SqliteStorage]:
    """Time a fresh reader fetching ``blocks`` (None: all): (seconds, its feed, its storage)."""
    storage = SqliteStorage(directory / f"reader-{time.monotonic_ns()}.db")
    reader = Feed.open(storage, writer.key, manifest=writer.manifest)
    conn = await connect("127.0.0.1", writer.port, KeyPair.generate())
    async with conn, FeedReplication(reader) as replication:
        await replication.attach(conn)
        t0 = time.perf_counter()
        if blocks is None:
            await replication.download(0, writer.length, timeout=600)
        else:
            handles = [replication.start_download(i, i + 1) for i in blocks]
            for h in handles:
                await replication.wait(h, timeout=600)
        elapsed = time.perf_counter() - t0
    return elapsed, reader, storage


def _rows_for(
    name: str, case: Case, directory: Path, loopback: Callable[[], float], quick: bool
) -> list[Row]:
    """The rows of one case; ``loopback()`` measures raw loopback once more (bytes/s)."""
    loopback_bps = loopback()
    size = f"{case.total // MiB} MiB in {case.block // KiB} KiB blocks"
    log(f"   writer: appending {size}")
    (directory / name).mkdir()
    writer = Writer(directory / name, case)
    rows: list[Row] = []
    try:
        append_bps = case.total / writer.append_s
        rows.append(
            Row(
                name=f"append, {size}",
                figure=append_bps / 1e6,
                unit="MB/s",
                baseline_name="blake3 pkg hashing the same bytes",
                baseline_figure=writer.blake3_bps / 1e6,
                ratio=append_bps / writer.blake3_bps,
                ratio_kind="throughput",
                target="≥ 500 MB/s" if case.block == 64 * KiB else "",
                met=(append_bps >= 500e6) if case.block == 64 * KiB else None,
                note="includes SQLite WAL commits and one head signature per batch",
            )
        )
        samples = []
        for attempt in range(1 if quick else DOWNLOAD_REPEAT):
            log(f"   reader: full download ({attempt + 1})")
            seconds, reader, storage = anyio.run(_download, writer, directory / name, None)
            try:
                check(reader.length == writer.length, f"reader length {reader.length}, not {writer.length}")
                check(reader.downloaded() == writer.length, "reader is missing blocks after a full download")
                reader_hash = reader.tree_hash()
            finally:
                storage.close()
                _remove_reader_files(Path(storage.path))
            check(len(reader_hash) == 32, "no tree hash")
            samples.append(seconds)
            # Loopback again beside every download: the best of all its samples is the baseline,
            # so a sample that met a busy moment cannot flatter the ratio.
            loopback_bps = max(loopback_bps, loopback())
        # Best of N fresh readers, like every other row: the least noisy estimate on shared machines.
        seconds = min(samples)
        bps = case.total / seconds
        if case.block == 64 * KiB:
            rows.append(
                loopback_row(
                    f"full download, {size}",
                    bps,
                    loopback_bps,
                    target_ratio=0.25,
                    note="hypercore 11 (benches/README.md anchors): 60-75 MB/s, ~3% of loopback",
                )
            )
        else:
            per_s = writer.length / seconds
            rows.append(
                Row(
                    name=f"full download, {size}",
                    figure=per_s,
                    unit="blocks/s",
                    baseline_name="raw TCP loopback, same bytes",
                    baseline_figure=loopback_bps / case.block,
                    ratio=per_s / (loopback_bps / case.block),
                    ratio_kind="throughput",
                    target="≥ 40,000 blocks/s",
                    met=per_s >= 40_000,
                    note="hypercore 11 (benches/README.md anchors): 4k blocks/s",
                )
            )
        if case.block == 64 * KiB:
            rng = random.Random(7)
            count = max(1, int(writer.length * SPARSE_FRACTION))
            picks = sorted(rng.sample(range(writer.length), count))
            log(f"   reader: sparse fetch of {count} random blocks")
            seconds, reader, storage = anyio.run(_download, writer, directory / name, picks)
            try:
                check(reader.downloaded() == count, f"sparse reader holds {reader.downloaded()}, not {count}")
                check(all(reader.has(i) for i in picks), "sparse reader lacks a picked block")
            finally:
                storage.close()
                _remove_reader_files(Path(storage.path))
            rows.append(
                Row(
                    name=f"sparse 1% random fetch, {size}",
                    figure=count / seconds,
                    unit="blocks/s",
                    baseline_name="hypercore 11 (benches/README.md anchors, not this run)",
                    baseline_figure=400.0,
                    ratio=(count / seconds) / 400.0,
                    ratio_kind="throughput",
                    note="hypercore's figure is from the anchors in benches/README.md, not measured here",
                )
            )
    finally:
        writer.close()
    return rows


def run(quick: bool) -> list[Row]:
    cases = QUICK if quick else FULL
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hyphal-bench-") as tmp:
        directory = Path(tmp)
        log("-- warming guest memory")
        warm_guest_memory(directory, 2 * max(case.total for case in cases.values()) + 256 * MiB)
        log("-- raw TCP loopback")
        loopback_total = (256 if not quick else 64) * MiB
        best = 0.0

        def loopback() -> float:
            nonlocal best
            best = max(best, loopback_total / tcp_loopback_best(loopback_total, repeat=1))
            return best

        for _ in range(2):
            loopback()
        for name, case in cases.items():
            log(f"-- {name}")
            rows += _rows_for(name, case, directory, loopback, quick)
    return rows


__all__ = ["run"]
