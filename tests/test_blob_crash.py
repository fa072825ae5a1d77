"""Crash safety of downloads: SIGKILL a downloading process mid-stream, reopen its store,
find only verified groups (at least every flushed one), and resume to the complete blob."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from hyphal import _core
from hyphal.blobs import BlobDownloader, BlobProvider, BlobStore, ProviderConfig
from hyphal.net import ConnectionConfig, connect, listen
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio
CHILD = Path(__file__).parent / "blob_crash_downloader.py"
G = _core.BLOB_GROUP_SIZE
FLUSH = 8 * G
WAIT = 30.0
CONFIG = ConnectionConfig(keepalive_interval=None, idle_timeout=None, close_timeout=1.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_resume_after_sigkill(tmp_path: Path) -> None:
    data = os.urandom(4 * 2**20 + 321)
    src = BlobStore(tmp_path / "src", sync=False)
    h = src.import_bytes(data).hash
    # Slow enough that the kill lands mid-download, while data is still being written.
    provider = BlobProvider(src, ProviderConfig(max_rate=6e6, piece_size=16 * 1024))
    acknowledged = 0
    async with await listen(
        "127.0.0.1", 0, KeyPair.generate(), provider.serve_connection, config=CONFIG
    ) as lst:
        args = [sys.executable, str(CHILD), str(tmp_path / "dst"), str(lst.port), h.hex(), str(FLUSH)]
        async with await anyio.open_process(args, env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
            assert proc.stdout is not None
            buffer = b""
            with anyio.fail_after(WAIT):
                while acknowledged < len(data) // 3:  # reads the pipe: no sleeping
                    chunk = await proc.stdout.receive()
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        assert line != b"done", "finished before the kill"
                        acknowledged = int(line)
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL
    assert acknowledged < len(data)

    with BlobStore(tmp_path / "dst") as dst:
        bits = dst.bits(h)
        assert bits is not None
        assert not bits.complete
        present = sum(min(b * G, len(data)) - a * G for a, b in bits.runs())
        assert present >= acknowledged - FLUSH  # every flushed group survived
        for a, b in bits.runs():  # and every group kept is genuine (reads verify)
            assert dst.read(h, a * G, (b - a) * G) == data[a * G : b * G]
        async with await listen(
            "127.0.0.1", 0, KeyPair.generate(), BlobProvider(src).serve_connection
        ) as lst:
            progress: list[int] = []
            async with (
                await connect("127.0.0.1", lst.port, KeyPair.generate(), config=CONFIG) as conn,
                BlobDownloader(dst, h, on_progress=lambda p: progress.append(p.bytes_done)) as dl,
            ):
                await dl.add_provider(conn)
                await dl.wait(WAIT)
        assert progress[0] > present  # resumed where it stopped
        assert dst.has(h)
        assert dst.read(h) == data
    src.close()
