"""The ``blobs`` suite: importing a file, and downloading a blob from 1 and 3 providers.

- **Import**: :meth:`BlobStore.import_file` of a 1 GiB file (copied into the
  store, hashed, outboard written) against the ``blake3`` package hashing the
  same file with the same 8 MiB reads, one thread (its default). Measured
  durable (the data fdatasync'ed, the default) and with ``sync=False``.
- **Download**: provider processes (:mod:`benches.blobs_provider`), each with
  its own store holding the blob, serve over Noise-encrypted TCP loopback;
  this process downloads into a fresh store (durable: fdatasync'ed every
  32 MiB). One uncapped provider is compared with raw TCP loopback between
  two processes, measured in the same run; then 1 and 3 providers, each
  capped at the same rate, are compared with each other.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import blake3

from benches.harness import Row, ServingProcess, check, log
from benches.loopback import tcp_loopback_best
from hyphal.blobs import BlobDownloader, BlobStore
from hyphal.net.connection import connect
from hyphal.signing import KeyPair

MiB = 2**20
GiB = 2**30
READ = 8 * MiB
# The link import first: the copying ones leave the most writeback behind them.
IMPORT_CASES = (("link", True, "link"), ("nosync", False, "copy"), ("durable", True, "copy"))


class Provider(ServingProcess):
    """A provider process: imports the file, serves it; closed by closing its stdin."""

    def __init__(self, directory: Path, source: Path, max_rate: float) -> None:
        super().__init__("benches.blobs_provider", directory, source, max_rate)
        self.port: int = self.info["port"]
        self.hash = bytes.fromhex(self.info["hash"])


def _rate_row(
    name: str,
    rates: tuple[float, float, float, str],
    baseline_name: str,
    target: float,
    note: str,
    details: dict[str, Any] | None = None,
) -> Row:
    """A throughput row: ``rates`` is (ours, baseline, unit scale, unit), both in bytes/s."""
    ours, base, scale, unit = rates
    return Row(
        name=name,
        figure=ours / scale,
        unit=unit,
        baseline_name=baseline_name,
        baseline_figure=base / scale,
        ratio=ours / base,
        ratio_kind="throughput",
        target=f"≥ {target:g}x",
        target_ratio=target,
        met=ours / base >= target,
        note=note,
        details=details or {},
    )


def _make_source(path: Path, size: int) -> bytes:
    """A file of ``size`` incompressible bytes (a rotated 64 MiB random block); returns its BLAKE3."""
    block = os.urandom(64 * MiB)
    hasher = blake3.blake3()
    with open(path, "wb") as f:
        written = 0
        i = 0
        while written < size:
            piece = (block[i:] + block[:i])[: size - written]
            f.write(piece)
            hasher.update(piece)
            written += len(piece)
            i += 4099
    return hasher.digest()


def _blake3_file(path: Path) -> bytes:
    hasher = blake3.blake3()
    buf = bytearray(READ)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            hasher.update(view[:n])
    return hasher.digest()


def _import_rows(directory: Path, source: Path, size: int, digest: bytes, repeat: int) -> list[Row]:
    samples: dict[str, list[float]] = {"blake3": [], "durable": [], "nosync": [], "link": []}
    for i in range(repeat):
        # Every sample starts with no dirty pages, so none pays for another's writeback.
        os.sync()
        t0 = time.perf_counter()
        check(_blake3_file(source) == digest, "blake3 package disagrees with itself")
        samples["blake3"].append(time.perf_counter() - t0)
        for name, sync, mode in (
            ("durable", True, "copy"),
            ("nosync", False, "copy"),
            ("link", True, "link"),
        ):
            store_dir = directory / f"import-{name}-{i}"
            os.sync()
            with BlobStore(store_dir, sync=sync) as store:
                t0 = time.perf_counter()
                tag = store.import_file(source, mode=mode)  # type: ignore[arg-type]
                samples[name].append(time.perf_counter() - t0)
                check(tag.hash == digest, "import id is not the blake3 of the file")
            shutil.rmtree(store_dir)
    base = size / min(samples["blake3"])
    rows = []
    for name, label, note in (
        (
            "durable",
            "import, durable (fdatasync)",
            "copy_file_range + hash in Rust + outboard; data synced to disk",
        ),
        ("nosync", "import, sync=False", "same without fdatasync: survives process crashes, not power loss"),
        ("link", "import, mode=link", "hard link instead of a copy (opt-in: the store shares the file)"),
    ):
        ours = size / min(samples[name])
        rows.append(
            _rate_row(
                f"{label}, {size // MiB} MiB file",
                (ours, base, 1e9, "GB/s"),
                "blake3 pkg hashing the file, 1 thread",
                0.8,
                note,
                details={name: samples[name], "blake3": samples["blake3"]},
            )
        )
    return rows


async def _download(directory: Path, providers: list[Provider], size: int) -> float:
    """Seconds for a fresh store to download the blob from ``providers``."""
    store_dir = directory / f"dst-{time.monotonic_ns()}"
    h = providers[0].hash
    try:
        with BlobStore(store_dir) as store:
            async with contextlib.AsyncExitStack() as stack:
                me = KeyPair.generate()
                conns = [
                    await stack.enter_async_context(await connect("127.0.0.1", p.port, me)) for p in providers
                ]
                t0 = time.perf_counter()
                async with BlobDownloader(store, h) as dl:
                    for conn in conns:
                        await dl.add_provider(conn)
                    await dl.wait(600)
                elapsed = time.perf_counter() - t0
                check(not dl.dropped, f"providers dropped: {dl.dropped}")
            info = store.info(h)
            check(info is not None and info.complete and info.size == size, "download incomplete")
            check(
                sum(len(p) for p in store.iter_verified(h, 64 * MiB)) == size,
                "downloaded blob does not verify",
            )
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    return elapsed


def _best_download(directory: Path, providers: list[Provider], size: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        os.sync()  # the providers' imports leave dirty pages: write them back before timing
        best = min(best, anyio.run(_download, directory, providers, size))
    return best


def _striping_row(directory: Path, source: Path, size: int, cap: float) -> Row:
    """1 and then 3 providers, each capped at ``cap`` bytes/s: does striping scale?"""
    log(f"-- download from 1 and 3 providers capped at {cap / 1e6:g} MB/s each")
    capped = [Provider(directory / f"capped{i}", source, cap) for i in range(3)]
    try:
        one = _best_download(directory, capped[:1], size, 1)
        three = _best_download(directory, capped, size, 1)
    finally:
        for i, p in enumerate(capped):
            p.close()
            shutil.rmtree(directory / f"capped{i}", ignore_errors=True)
    one_bps, three_bps = size / one, size / three
    return _rate_row(
        f"download {size // MiB} MiB, 3 providers capped at {cap / 1e6:g} MB/s",
        (three_bps, one_bps, 1e6, "MB/s"),
        "1 provider under the same cap",
        2.5,
        "one blob striped over all three; iroh-blobs fetches a blob from one provider",
    )


def run(quick: bool) -> list[Row]:
    size = 64 * MiB if quick else GiB
    # Caps the client can take three of even on a busy 2-core machine, and one it may not.
    caps = [25e6, 50e6] if quick else [40e6, 80e6]
    repeat = 2 if quick else 3
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hyphal-bench-blobs-") as tmp:
        directory = Path(tmp)
        source = directory / "source.bin"
        log(f"-- writing a {size // MiB} MiB source file")
        digest = _make_source(source, size)
        log("-- import")
        rows += _import_rows(directory, source, size, digest, repeat)

        log("-- raw TCP loopback")
        loopback_total = min(size, 512 * MiB)
        loopback_bps = loopback_total / tcp_loopback_best(loopback_total, repeat=3)
        log("-- download from 1 uncapped provider")
        provider = Provider(directory / "uncapped", source, 0)
        try:
            check(provider.hash == digest, "provider id is not the blake3 of the file")
            seconds = _best_download(directory, [provider], size, 1 if quick else 2)
        finally:
            provider.close()
            shutil.rmtree(directory / "uncapped")
        loopback_bps = max(loopback_bps, loopback_total / tcp_loopback_best(loopback_total, repeat=1))
        bps = size / seconds
        rows.append(
            _rate_row(
                f"download {size // MiB} MiB, 1 provider",
                (bps, loopback_bps, 1e6, "MB/s"),
                "raw TCP loopback, 2 processes",
                0.25,
                "Noise-encrypted, verified per 16 KiB group, stored durably",
            )
        )

        for cap in caps:
            rows.append(_striping_row(directory, source, size, cap))
    return rows


__all__ = ["run"]
