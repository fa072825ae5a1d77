"""The replicated secret store in the daemon, through the CLI: real processes on 127.0.0.x.

Three daemons share secrets; one put on A is read on C while A is stopped; a fourth
node joins and pulls its share; then one holder stops gracefully (handing its share
off) and one is killed, and every secret is still read from every node left. Then
each user mistake: a typed one-line error, and the daemon still answers.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyphal.control.client import ControlClient
from hyphal.control.process import DaemonProcess, hyphal_command, run_cli
from hyphal.secrets import secret_id

URL1 = "https://api.example.com/v1"
URL2 = "mail.example.com"
HANDOFF = re.compile(
    r"handed off (\d+) secret\(s\): (\d+) push\(es\), (\d+) acknowledged, (\d+) copies already"
)


def daemon(root: Path, name: str, ip: str, *extra: str) -> DaemonProcess:
    command = ["node", "run", "--listen", f"{ip}:0", "--name", name, *extra]
    return DaemonProcess(root / name, command).start()


def hyphal(data: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    command = [*hyphal_command(), "--data-dir", str(data), *args]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=120)


def held_ids(node: DaemonProcess) -> set[str]:
    with ControlClient(node.data_dir) as client:
        return {h["id"] for h in client.call("secret.ls", {"held": True})}


def wait_for(what: str, check: Callable[[], bool], node: DaemonProcess, timeout: float = 60.0) -> None:
    """Poll ``check`` until it holds; between polls, wait on ``node``'s exit (a dead node fails at once)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s ({node.log_tail()})")
        if node.exited(0.1) is not None:
            raise AssertionError(f"{what}: the node exited ({node.log_tail()})")


def handoff(node: DaemonProcess) -> tuple[int, int, int, int]:
    """The stopped node's last hand-off: (secrets, pushes, acknowledged, copies already there)."""
    found = HANDOFF.findall(node.log_path.read_text())
    assert found, node.log_tail(10)
    secrets, pushed, acknowledged, already = (int(n) for n in found[-1])
    return secrets, pushed, acknowledged, already


def test_secrets_survive_a_stop_a_join_a_handoff_and_a_kill(tmp_path: Path) -> None:
    # D's identity first, so A can grant D before D ever runs.
    d_key = run_cli(tmp_path / "d", "init")["public_key"]
    a = daemon(tmp_path, "a", "127.0.0.21")
    b = daemon(tmp_path, "b", "127.0.0.22", "--bootstrap", a.address)
    c = daemon(tmp_path, "c", "127.0.0.23", "--bootstrap", a.address)
    d: DaemonProcess | None = None
    try:
        put = hyphal(a.data_dir, "--json", "secret", "put", URL1, stdin=b"api-key-1")
        assert put.returncode == 0, put.stderr
        (tmp_path / "password").write_bytes(b"hunter2\n")
        run_cli(a.data_dir, "secret", "put", URL2, "--file", str(tmp_path / "password"))
        for url in (URL1, URL2):
            for reader in (c.public_key, d_key):
                run_cli(a.data_dir, "secret", "grant", url, reader)
        owned = run_cli(a.data_dir, "secret", "ls")
        assert [(s["url"], len(s["readers"])) for s in owned] == [(URL1, 2), (URL2, 2)]
        ids = {secret_id(bytes.fromhex(a.public_key), url).hex() for url in (URL1, URL2)}
        assert {s["id"] for s in owned} == ids
        wait_for("C holds both secrets", lambda: held_ids(c) >= ids, c)

        # A stops (handing its copies off), and C reads A's secret without it.
        assert a.stop() == 0
        assert handoff(a)[0] == 2
        assert run_cli(c.data_dir, "secret", "get", a.public_key, URL1)["size"] == len(b"api-key-1")
        got = hyphal(c.data_dir, "secret", "get", a.public_key, URL1)
        assert (got.returncode, got.stdout) == (0, b"api-key-1")

        # A comes back (its list of owned secrets with it); D joins through B and pulls its share.
        a.start()
        assert [s["url"] for s in run_cli(a.data_dir, "secret", "ls")] == [URL1, URL2]
        d = daemon(tmp_path, "d", "127.0.0.24", "--bootstrap", b.address)
        wait_for("D pulled its share", lambda: held_ids(d) >= ids, d)
        assert "answered the pull" in d.log_path.read_text()

        # One holder stops gracefully, handing its share off; another is killed.
        assert b.stop() == 0
        secrets, pushed, acknowledged, already = handoff(b)
        assert secrets == 2
        # Each secret's three successors (A, C, D) hold B's version: confirmed before, or now.
        assert acknowledged == pushed
        assert acknowledged + already == 2 * 3
        c.kill()
        for node, owner in ((a, []), (d, [a.public_key])):
            assert hyphal(node.data_dir, "secret", "get", *owner, URL1).stdout == b"api-key-1"
            assert hyphal(node.data_dir, "secret", "get", *owner, URL2).stdout == b"hunter2\n"
        removed = run_cli(a.data_dir, "secret", "rm", URL2)
        assert removed["url"] == URL2
        gone = hyphal(d.data_dir, "secret", "get", a.public_key, URL2)
        assert gone.returncode == 1
        assert b"deleted" in gone.stderr
        assert [s["url"] for s in run_cli(a.data_dir, "secret", "ls")] == [URL1]
    finally:
        for node in (a, b, c, d):
            if node is not None:
                node.kill()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    root = tmp_path_factory.mktemp("secrets")
    a = daemon(root, "a", "127.0.0.25")
    b = daemon(root, "b", "127.0.0.26", "--bootstrap", a.address)
    try:
        put = hyphal(a.data_dir, "secret", "put", URL1, stdin=b"only for a")
        assert put.returncode == 0, put.stderr
        yield a, b
    finally:
        a.kill()
        b.kill()


def refused(node: DaemonProcess, *args: str, stdin: bytes = b"") -> str:
    """Run a command that must fail: its one-line message, after checking the daemon still answers."""
    done = hyphal(node.data_dir, *args, stdin=stdin)
    assert done.returncode == 1, done.stdout
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1, message
    assert "Traceback" not in message
    still: Any = run_cli(node.data_dir, "secret", "ls")
    assert isinstance(still, list)
    return message


def test_a_bad_key_is_refused(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, _ = pair
    message = refused(a, "secret", "get", "not-hex", URL1)
    assert message == "Error: the owner key is 64 hex digits (`hyphal id` shows a node's public key)"
    assert "reader key is 64 hex digits" in refused(a, "secret", "grant", URL1, "ab" * 31)


def test_a_secret_the_caller_may_not_read_is_refused(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, b = pair
    message = refused(b, "secret", "get", a.public_key, URL1)
    assert message.startswith(f"Error: secret {URL1!r}: secret read refused")
    assert message.endswith("ask its owner to grant this node's key")


def test_a_secret_nobody_has_is_not_available(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, b = pair
    message = refused(b, "secret", "get", a.public_key, "https://never.example")
    assert (
        message
        == "Error: secret 'https://never.example': no node holds it (none of the closest nodes had a copy)"
    )


def test_an_oversized_secret_is_refused(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, _ = pair
    message = refused(a, "secret", "put", "big", stdin=b"x" * 5000)
    assert message == (
        "Error: a secret is at most 4096 bytes, this one is 4097: store the key to the data, not the data"
    )
    assert "big" not in [s["url"] for s in run_cli(a.data_dir, "secret", "ls")]


def test_no_daemon_running(tmp_path: Path) -> None:
    for args in (("secret", "ls"), ("secret", "get", URL1)):
        done = hyphal(tmp_path / "none", *args)
        assert done.returncode == 1
        assert done.stderr.decode().strip() == (
            f"Error: no node is running in {tmp_path / 'none'}; start one with `hyphal node run`"
        )
