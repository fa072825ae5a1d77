"""Feeds shared by key alone, through the CLI and real daemons on 127.0.0.x.

A seed node S starts the DHT; A and B are given only S's address. B finds A's
feeds by their discovery key on the DHT, downloads them with proofs, and
follows live appends.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from hyphal.control.process import DaemonProcess, hyphal_command, run_cli

TIMEOUT = 20.0


def daemon(tmp: Path, name: str, host: str, *extra: str) -> DaemonProcess:
    return DaemonProcess(tmp / name, ["node", "run", "--listen", f"{host}:0", "--name", name, *extra]).start()


def hyphal(data: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    command = [*hyphal_command(), "--data-dir", str(data), *args]
    return subprocess.run(command, capture_output=True, input=stdin, timeout=60)


def ok(data: Path, *args: str, stdin: bytes = b"") -> bytes:
    done = hyphal(data, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def fails(data: Path, *args: str, stdin: bytes = b"") -> str:
    """The one-line error of a command that must fail (exit 1, no traceback)."""
    done = hyphal(data, *args, stdin=stdin)
    assert done.returncode == 1, done.stdout
    error = done.stderr.decode()
    assert error.startswith("Error: "), error
    assert "Traceback" not in error
    return error


def still_answers(node: DaemonProcess) -> None:
    assert run_cli(node.data_dir, "status")["public_key"] == node.public_key


@pytest.fixture(scope="module")
def trio(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DaemonProcess, DaemonProcess, DaemonProcess]]:
    tmp = tmp_path_factory.mktemp("feeds")
    seed = daemon(tmp, "s", "127.0.0.41")
    nodes = [seed]
    try:
        nodes.append(daemon(tmp, "a", "127.0.0.42", "--bootstrap", seed.address))
        nodes.append(daemon(tmp, "b", "127.0.0.43", "--bootstrap", seed.address))
        yield seed, nodes[1], nodes[2]
    finally:
        for node in nodes:
            node.kill()


def follow(node: DaemonProcess, share: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*hyphal_command(), "--data-dir", str(node.data_dir), "feed", "follow", share],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def line(stream: IO[bytes] | None) -> bytes:
    """One line the follower printed (``b""`` after the timeout; a thread does the blocking read)."""
    assert stream is not None
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=TIMEOUT)
    except queue.Empty:
        return b""


def test_a_feed_is_followed_by_key_alone_through_the_dht(
    tmp_path: Path, trio: tuple[DaemonProcess, DaemonProcess, DaemonProcess]
) -> None:
    seed, a, b = trio
    share = ok(a.data_dir, "feed", "create").decode().strip()
    assert share.startswith("hyphal://feed/")
    assert "?r=" not in share
    key = share.removeprefix("hyphal://feed/")
    ok(a.data_dir, "feed", "append", share, stdin=b"first\n")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (256 * 1024 - 1) + b"\n")  # four 64 KiB blocks, one line
    appended = run_cli(a.data_dir, "feed", "append", key, str(big))
    assert (appended["appended_blocks"], appended["length"]) == (4, 5)

    # B knows only the seed: it finds A by the feed's discovery key on the DHT.
    assert ok(b.data_dir, "feed", "cat", share) == b"first\n" + big.read_bytes()
    assert (
        ok(b.data_dir, "feed", "cat", share, "--start", "2", "--end", "4") == big.read_bytes()[65536:196608]
    )
    info = run_cli(b.data_dir, "feed", "info", share)
    assert (info["writable"], info["length"], info["shared"]) == (False, 5, True)

    follower = follow(b, share)
    try:
        assert b"following feed" in line(follower.stderr)
        assert line(follower.stdout) == b"first\n"
        assert line(follower.stdout) == big.read_bytes()
        for i in range(3):
            ok(a.data_dir, "feed", "append", share, stdin=f"live {i}\n".encode())
            returned = time.monotonic()
            assert line(follower.stdout).endswith(f"live {i}\n".encode())
            # A behaviour bound, not a benchmark: pushed over the open connection, not polled.
            assert time.monotonic() - returned < 1.0
    finally:
        follower.terminate()
        follower.wait(10)

    # B announces what it holds: with A gone, a new node C reads the feed from B.
    assert a.stop() == 0
    c = daemon(tmp_path, "c", "127.0.0.44", "--bootstrap", seed.address)
    try:
        assert ok(c.data_dir, "feed", "cat", key, "--start", "5").endswith(b"live 2\n")
    finally:
        c.kill()
        trio[1].start()  # A again, from its data dir: its feeds are shared and announced again
    assert run_cli(a.data_dir, "feed", "info", key)["writable"] is True


def test_a_private_feed_is_read_with_its_share_string_only(
    trio: tuple[DaemonProcess, DaemonProcess, DaemonProcess],
) -> None:
    _, a, b = trio
    share = run_cli(a.data_dir, "feed", "create", "--encrypted")["share"]
    key, secret = share.split("?r=")
    assert len(secret) == 64
    ok(a.data_dir, "feed", "append", share, stdin=b"for readers only\n")

    error = fails(b.data_dir, "feed", "cat", key)
    assert "is private and this node has no read secret for it" in error
    still_answers(b)
    wrong = f"{key}?r={'07' * 32}"
    error = fails(b.data_dir, "feed", "cat", wrong)
    assert "does not decrypt with the read secret in this share" in error
    still_answers(b)

    follower = follow(b, share)
    try:
        assert b"following feed" in line(follower.stderr)
        assert line(follower.stdout) == b"for readers only\n"
        ok(a.data_dir, "feed", "append", share, stdin=b"and live\n")
        assert line(follower.stdout) == b"and live\n"
    finally:
        follower.terminate()
        follower.wait(10)
    assert run_cli(b.data_dir, "feed", "info", key)["encrypted"] is True


BAD_SHARES = [
    "not-a-key",
    "hyphal://feed/zz",
    "hyphal://group/" + "00" * 32,
    "hyphal://feed/" + "00" * 32 + "?r=123",
    "hyphal://feed/" + "00" * 32 + "?x=1",
]


def test_a_bad_key_or_share_string_is_refused(
    trio: tuple[DaemonProcess, DaemonProcess, DaemonProcess],
) -> None:
    _, _, b = trio
    for text in BAD_SHARES:
        error = fails(b.data_dir, "feed", "cat", text)
        assert "a feed share is hyphal://feed/<64 hex>" in error
        assert "123" not in error  # a share's secret part is never echoed
    still_answers(b)


def test_appending_to_a_feed_this_node_cannot_write_is_refused(
    trio: tuple[DaemonProcess, DaemonProcess, DaemonProcess],
) -> None:
    _, a, b = trio
    share = ok(a.data_dir, "feed", "create").decode().strip()
    ok(b.data_dir, "feed", "cat", share)  # B holds it now, as a reader
    error = fails(b.data_dir, "feed", "append", share, stdin=b"not mine")
    assert "this node cannot write feed" in error
    assert "holds it only as a reader" in error
    error = fails(b.data_dir, "feed", "append", "ab" * 32, stdin=b"nobody's")
    assert "does not hold it" in error
    still_answers(b)


def test_a_feed_nobody_announces_is_not_available(
    trio: tuple[DaemonProcess, DaemonProcess, DaemonProcess],
) -> None:
    _, _, b = trio
    error = fails(b.data_dir, "feed", "follow", "cd" * 32, "--timeout", "2")
    assert "no writer or reader of feed cdcdcdcdcdcdcdcd… was found on the DHT in 2 s" in error
    still_answers(b)
