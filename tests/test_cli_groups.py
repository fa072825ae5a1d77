"""The ``hyphal`` CLI against real daemon processes on 127.0.0.1: groups, files, restart, errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyphal.control.process import CliError, DaemonProcess, hyphal_command, read_line, run_cli
from hyphal.hashing import blake3

LISTEN = ("--listen", "127.0.0.1:0")


def daemon(tmp_path: Path, name: str, *extra: str) -> DaemonProcess:
    return DaemonProcess(tmp_path / name, ["node", "run", *LISTEN, "--name", name, *extra]).start()


def hyphal(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*hyphal_command(), "--data-dir", str(data), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    a = daemon(tmp_path, "a")
    b = daemon(tmp_path, "b", "--bootstrap", a.address)
    try:
        yield a, b
    finally:
        for node in (a, b):
            node.kill()


def test_two_nodes_create_join_add_sync_get_watch_rm_leave(
    tmp_path: Path, two: tuple[DaemonProcess, DaemonProcess]
) -> None:
    a, b = two
    made = hyphal(a.data_dir, "group", "create", "family", "--as", "alice")
    assert made.returncode == 0, made.stderr
    assert "invite: hyphal://group/" in made.stdout
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 8000)
    added = run_cli(a.data_dir, "add", str(big))
    assert added["size"] == big.stat().st_size
    run_cli(a.data_dir, "add", str(big), "--as", "dir/secret.bin", "--private")
    loose = tmp_path / "loose.bin"
    loose.write_bytes(b"in A's store, in no repo" * 100)
    loose_hash = run_cli(a.data_dir, "blob", "add", str(loose))["hash"]
    invite = run_cli(a.data_dir, "group", "invite")["invite"]
    joined = run_cli(b.data_dir, "group", "join", invite, "--as", "bob")
    assert joined["connected"] == 1
    # The low-level `blob get` fetches from connected peers what the store lacks.
    run_cli(b.data_dir, "blob", "get", loose_hash, "-o", str(tmp_path / "loose.got"))
    assert (tmp_path / "loose.got").read_bytes() == loose.read_bytes()
    synced = run_cli(b.data_dir, "sync")
    assert synced["missing"] == []
    listed = {f["name"]: f["local"] for f in run_cli(b.data_dir, "ls")}
    assert listed == {"big.bin": True, "dir/secret.bin": True}
    for name in ("big.bin", "dir/secret.bin"):
        got = run_cli(b.data_dir, "get", name, "-o", str(tmp_path / "got"))
        assert got["member_name"] == "alice"
        assert blake3((tmp_path / "got").read_bytes()) == blake3(big.read_bytes())
    info = run_cli(b.data_dir, "group", "info", "family")
    assert sorted((m["name"], m["files"], m["self"]) for m in info["member_list"]) == [
        ("alice", 2, False),
        ("bob", 0, True),
    ]

    # watch: B sees A's new file and its removal live, as JSON lines.
    watch = subprocess.Popen(
        [*hyphal_command(), "--data-dir", str(b.data_dir), "watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stderr is not None
        assert watch.stdout is not None
        assert "watching group family" in read_line(watch.stderr, 20)
        (tmp_path / "new.txt").write_text("new")
        run_cli(a.data_dir, "add", str(tmp_path / "new.txt"))
        event = json.loads(read_line(watch.stdout, 20))
        assert (event["type"], event["name"], event["member_name"]) == ("file_added", "new.txt", "alice")
        run_cli(a.data_dir, "rm", "new.txt")
        event = json.loads(read_line(watch.stdout, 20))
        assert (event["type"], event["name"]) == ("file_removed", "new.txt")
    finally:
        watch.terminate()
        watch.wait(10)

    # Only a file's owner removes it; leaving drops the group here.
    not_mine = hyphal(b.data_dir, "rm", "big.bin")
    assert not_mine.returncode == 1
    assert "only its owner can remove it" in not_mine.stderr
    assert run_cli(b.data_dir, "group", "leave")["name"] == "family"
    assert run_cli(b.data_dir, "group", "list") == []
    assert a.stop() == 0
    assert b.stop() == 0


def test_watch_ends_cleanly_when_the_node_stops(tmp_path: Path) -> None:
    a = daemon(tmp_path, "a")
    try:
        run_cli(a.data_dir, "group", "create", "solo")
        watch = subprocess.Popen(
            [*hyphal_command(), "--data-dir", str(a.data_dir), "watch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert watch.stderr is not None
            assert "watching group solo" in read_line(watch.stderr, 20)
            assert a.stop() == 0
            assert watch.wait(20) == 0
            assert "the node stopped" in watch.stderr.read()
        finally:
            watch.kill()
            watch.wait(10)
    finally:
        a.kill()


def test_a_restart_keeps_identity_address_groups_and_files(tmp_path: Path) -> None:
    a = daemon(tmp_path, "a")
    try:
        group = run_cli(a.data_dir, "group", "create", "solo")
        (tmp_path / "f.txt").write_text("kept")
        run_cli(a.data_dir, "add", str(tmp_path / "f.txt"))
        first = dict(a.info)
        assert a.stop() == 0
        a = daemon(tmp_path, "a")
        assert (a.public_key, a.address) == (first["public_key"], first["address"])
        assert [g["id"] for g in run_cli(a.data_dir, "group", "list")] == [group["id"]]
        assert [f["name"] for f in run_cli(a.data_dir, "ls")] == ["f.txt"]
        run_cli(a.data_dir, "get", "f.txt", "-o", str(tmp_path / "out.txt"))
        assert (tmp_path / "out.txt").read_text() == "kept"
        assert len(run_cli(a.data_dir, "blob", "ls")) == 1
        assert any(f["writable"] for f in run_cli(a.data_dir, "feed", "list"))
        # Closed here, the group stays listed (as closed) and its files wait for `group open`.
        assert run_cli(a.data_dir, "group", "close")["closed"] is True
        assert [g["closed"] for g in run_cli(a.data_dir, "group", "list")] == [True]
        assert hyphal(a.data_dir, "ls").returncode == 1
        assert run_cli(a.data_dir, "group", "open", "solo")["id"] == group["id"]
        assert [f["name"] for f in run_cli(a.data_dir, "ls")] == ["f.txt"]
    finally:
        assert a.stop() == 0


def test_every_node_restarts_and_they_find_each_other_again(tmp_path: Path) -> None:
    """Both members stop; both come back (on their saved ports, 127.0.0.1 and .2) and
    reconnect from the adverts they saved, with no invite or bootstrap."""
    a = DaemonProcess(tmp_path / "a", ["node", "run", "--listen", "127.0.0.1:0", "--name", "a"]).start()
    b = DaemonProcess(tmp_path / "b", ["node", "run", "--listen", "127.0.0.2:0", "--name", "b"]).start()
    try:
        uri = run_cli(a.data_dir, "group", "create", "pair")["invite"]
        run_cli(b.data_dir, "group", "join", uri)
        assert a.stop() == 0
        assert b.stop() == 0
        a, b = a.start(), b.start()
        (tmp_path / "after.txt").write_text("written after both restarted")
        run_cli(a.data_dir, "add", str(tmp_path / "after.txt"))
        assert run_cli(b.data_dir, "sync")["missing"] == []
        run_cli(b.data_dir, "get", "after.txt", "-o", str(tmp_path / "got.txt"))
        assert (tmp_path / "got.txt").read_text() == "written after both restarted"
    finally:
        a.kill()
        b.kill()


def test_user_mistakes_are_one_line_errors_without_secrets(tmp_path: Path) -> None:
    nobody = hyphal(tmp_path / "none", "ls")
    assert nobody.returncode == 1
    assert nobody.stderr.strip() == (
        f"Error: no node is running in {tmp_path / 'none'}; start one with `hyphal node run`"
    )
    a = daemon(tmp_path, "a")
    try:
        secret = "mysecretpartthatmustnotleak"
        cases = [
            (("group", "join", f"hyphal://group/abc?s={secret}"), "group id"),
            (("group", "join", f"https://example.com/?s={secret}"), "hyphal://group/"),
            (("ls",), "not in any group"),
            (("group", "create", "g"), None),
            (("add", str(tmp_path / "missing.txt")), "is not a file"),
            (("ls", "--group", "nope"), "not in a group 'nope'"),
            (("get", "nothing.txt"), "no file named 'nothing.txt'"),
            (("group", "backup", "not-an-address"), "host:port"),
        ]
        for args, expected in cases:
            done = hyphal(a.data_dir, *args)
            if expected is None:
                assert done.returncode == 0, done.stderr
                continue
            assert done.returncode == 1, (args, done.stdout)
            assert expected in done.stderr, (args, done.stderr)
            assert "Traceback" not in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert secret not in done.stderr
        with pytest.raises(CliError, match="already running"):
            run_cli(a.data_dir, "node", "run", *LISTEN)
    finally:
        assert a.stop() == 0
    assert secret not in a.log_path.read_text()
    no_key = hyphal(tmp_path / "c", "serve", "--backup", *LISTEN)
    assert no_key.returncode == 1
    assert "needs --authorize" in no_key.stderr
