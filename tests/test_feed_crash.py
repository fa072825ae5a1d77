"""Crash safety: SIGKILL a writer process mid-stream, reopen, and find every acknowledged append."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import nacl.signing
import pytest

from feed_crash_writer import block  # tests/ is on sys.path, as for reference.py
from hyphal import KeyPair, MerkleTree
from hyphal.feed import Feed, Manifest
from hyphal.storage import SqliteStorage

WRITER_SCRIPT = Path(__file__).parent / "feed_crash_writer.py"
SEED = bytes(range(32))


def run_and_kill(db: Path, synchronous: str, acknowledgements: int) -> tuple[int, int]:
    """Start the writer, wait for it to acknowledge appends, SIGKILL it. Returns (first, last) length seen."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER_SCRIPT), str(db), SEED.hex(), synchronous],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        ready = proc.stdout.readline().split()
        assert ready[:1] == [b"ready"], proc.stderr.read() if proc.stderr else ready
        start = int(ready[1])
        acked = []
        while len(acked) < acknowledgements:  # blocks on the pipe: no sleeping
            line = proc.stdout.readline()
            assert line, "the writer exited early"
            acked.append(int(line))
        proc.send_signal(signal.SIGKILL)  # it is still appending: killed mid-stream
    finally:
        proc.kill()
        proc.wait()
    # Lines printed before the kill are acknowledgements too.
    acked += [int(line) for line in proc.stdout.read().split()]
    proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert acked == sorted(acked)
    assert acked[0] > start
    return start, acked[-1]


def check_intact(db: Path, acknowledged: int) -> None:
    keypair = KeyPair(SEED)
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with SqliteStorage(db) as storage:
        feed = Feed.open(storage, Manifest.single(keypair.public_key).key, keypair=keypair)
        assert feed.length >= acknowledged
        assert feed.missing() == []
        data = [feed.get_nowait(i) for i in range(feed.length)]
        assert data == [block(i) for i in range(feed.length)]
        # Recompute the tree from the blocks alone and check the stored head's signature.
        tree = MerkleTree()
        tree.append(data)
        head = feed.head()
        assert head is not None
        assert head.tree_hash == tree.hash()
        assert head.fork == 0
        signable = tree.signable(feed.key, fork=0)
        nacl.signing.VerifyKey(keypair.public_key).verify(signable, head.signatures[0].signature)
        # And it is not corrupt: it takes appends again, which a fresh open sees.
        n = feed.length
        assert feed.append(block(n)) == n + 1
    with SqliteStorage(db) as storage:
        again = Feed.open(storage, Manifest.single(keypair.public_key).key)
        assert again.length == n + 1
        assert again.get_nowait(n) == block(n)


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_a_killed_writer_loses_no_acknowledged_append(tmp_path: Path, synchronous: str) -> None:
    db = tmp_path / "crash.db"
    start, acknowledged = run_and_kill(db, synchronous, acknowledgements=60)
    assert start == 0
    check_intact(db, acknowledged)
    # A second writer process resumes the feed where the first one (and the check) left it.
    start, acknowledged = run_and_kill(db, synchronous, acknowledgements=60)
    assert start > 0
    check_intact(db, acknowledged)
