"""A 200 MiB upload streams through the daemon to disk: its peak RSS (VmHWM) grows by far less.

Two figures, both recorded: the peak RSS (VmHWM, before and after), which
also counts the file-backed pages the blob import maps while it hashes (one
:data:`~hyphal.blobs.files.COPY_STEP` of the store's own file at a time),
and the peak anonymous RSS, sampled during the upload, which is where a
daemon holding the upload would show it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_daemons import client, start
from hyphal.blobs.files import COPY_STEP
from hyphal.hashing import Hasher

SIZE = 200 * 2**20
PIECE = 2**20
SLACK = 32 * 2**20
"""Anonymous memory an upload may cost (buffers, the request, the import's bookkeeping): a daemon
that held a sixth of the file would exceed it."""


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def body(seed: bytes) -> Iterator[bytes]:
    """200 MiB in 1 MiB pieces, each different (nothing deduplicates), made as they are sent."""
    base = os.urandom(PIECE)
    for i in range(SIZE // PIECE):
        yield i.to_bytes(8, "big") + seed + base[8 + len(seed) :]


def test_a_200_mib_upload_does_not_grow_the_daemon(tmp_path: Path) -> None:
    daemon = start(tmp_path, "big", "127.0.0.35")
    try:
        with client(daemon) as api:
            gid = api.post("/groups", json={"name": "big"}).json()["id"]
            assert api.get("/status").status_code == 200  # warm: the app's first request is done
            before = status_kib(daemon.pid, "VmHWM") * 1024
            anon_before = status_kib(daemon.pid, "RssAnon") * 1024
            hasher = Hasher()
            pieces = list(body(b"seed"))  # reused below; the test process may hold it, the daemon may not
            for piece in pieces:
                hasher.update(piece)
            boundary = "hyphal-test-boundary"
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            tail = f"\r\n--{boundary}--\r\n".encode()
            peak_anon = [0]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.02):
                    peak_anon[0] = max(peak_anon[0], status_kib(daemon.pid, "RssAnon") * 1024)

            def stream() -> Iterator[bytes]:
                yield head
                yield from pieces
                yield tail

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                added = api.post(
                    f"/groups/{gid}/files",
                    content=stream(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                    timeout=300,
                )
            finally:
                done.set()
                sampler.join()
            assert added.status_code == 200, added.text
            after = status_kib(daemon.pid, "VmHWM") * 1024
            assert added.json()["size"] == SIZE
            assert added.json()["hash"] == hasher.finalize().hex()
            growth, anon_growth = after - before, peak_anon[0] - anon_before
            print(
                f"daemon VmHWM {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB (+{growth / 2**20:.1f}); "
                f"RssAnon {anon_before / 2**20:.1f} MiB -> peak {peak_anon[0] / 2**20:.1f} MiB"
            )
            assert anon_growth < SLACK, f"the daemon's anonymous memory grew {anon_growth / 2**20:.0f} MiB"
            assert growth < COPY_STEP + SLACK, f"the daemon's peak RSS grew {growth / 2**20:.0f} MiB"
            # The upload's temp file is gone; the blob is whole in the store.
            assert not any((daemon.data_dir / "http-uploads").iterdir())
            ranged = api.get(f"/groups/{gid}/files/big.bin", headers={"Range": f"bytes={SIZE - 10}-"})
            assert ranged.status_code == 206
            assert ranged.content == pieces[-1][-10:]
    finally:
        daemon.stop()


@pytest.fixture(autouse=True)
def _needs_proc() -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the daemon's peak RSS from /proc")
