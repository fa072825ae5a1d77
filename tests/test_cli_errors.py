"""User mistakes and unreachable peers through the CLI on real daemons: one line saying what to do,
a non-zero exit, and the daemon still answering afterwards."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

from hyphal.control.process import DaemonProcess, hyphal_command, run_cli
from hyphal.groups.invite import Invite


def daemon(tmp_path: Path, name: str, ip: str = "127.0.0.1", *extra: str) -> DaemonProcess:
    command = ["node", "run", "--listen", f"{ip}:0", "--name", name, *extra]
    return DaemonProcess(tmp_path / name, command).start()


def hyphal(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [*hyphal_command(), "--data-dir", str(data), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def one_line_error(done: subprocess.CompletedProcess[str], expected: str, *, after_bar: bool = False) -> None:
    """Exit 1 and one line on stderr (after the progress bar's, for a command that shows one)."""
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    if after_bar:
        lines = lines[-1:]
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: "), lines[0]
    assert expected in lines[0], lines[0]


def still_answers(node: DaemonProcess) -> None:
    assert run_cli(node.data_dir, "status")["public_key"] == node.public_key


def test_a_forged_invite_is_refused_and_nothing_is_joined(tmp_path: Path) -> None:
    a = daemon(tmp_path, "a")
    b = daemon(tmp_path, "b", "127.0.0.2")
    try:
        run_cli(a.data_dir, "group", "create", "family")
        real = Invite.from_uri(run_cli(a.data_dir, "group", "invite")["invite"])
        forged = Invite(real.group_key, secrets.token_bytes(32), real.name, real.peers)
        done = hyphal(b.data_dir, "group", "join", forged.to_uri())
        one_line_error(done, "the invite was refused")
        assert "declined the group" in done.stderr
        assert "ask a member for a new one" in done.stderr
        assert run_cli(b.data_dir, "group", "list") == []
        still_answers(b)
        # The real invite still joins, and says whom it reached.
        joined = run_cli(b.data_dir, "group", "join", real.to_uri(), "--as", "bob")
        assert (joined["name"], joined["reached"], joined["unreachable"]) == ("family", ["a"], [])
    finally:
        a.kill()
        b.kill()


def test_sync_with_every_member_stopped_says_who_and_why_and_exits_non_zero(tmp_path: Path) -> None:
    a = daemon(tmp_path, "a")
    b = daemon(tmp_path, "b", "127.0.0.2")
    try:
        run_cli(a.data_dir, "group", "create", "family", "--as", "alice")
        (tmp_path / "f.txt").write_text("only on A")
        run_cli(a.data_dir, "add", str(tmp_path / "f.txt"))
        run_cli(b.data_dir, "group", "join", run_cli(a.data_dir, "group", "invite")["invite"])
        address = a.address
        assert a.stop() == 0
        done = hyphal(b.data_dir, "--json", "sync")
        one_line_error(done, "nothing fetched", after_bar=True)
        result = json.loads(done.stdout)
        assert result["files_fetched"] == 0
        assert result["reached"] == []
        [line] = result["unreachable"]
        assert line.startswith(f"alice ({address}: ")
        assert "refused the connection" in line
        still_answers(b)
    finally:
        a.kill()
        b.kill()


def test_a_blob_no_peer_has_is_a_one_line_error(tmp_path: Path) -> None:
    a = daemon(tmp_path, "a")
    try:
        unknown = secrets.token_bytes(32).hex()
        done = hyphal(a.data_dir, "blob", "get", unknown, "-o", str(tmp_path / "out"))
        one_line_error(done, f"blob {unknown} is not here, and no peer is connected")
        still_answers(a)
    finally:
        a.kill()


def test_a_wrong_passphrase_and_no_daemon_are_one_line_errors(tmp_path: Path) -> None:
    data = tmp_path / "sealed"
    made = hyphal(data, "init", "--passphrase-env", env={"HYPHAL_PASSPHRASE": "right"})
    assert made.returncode == 0, made.stderr
    wrong = hyphal(
        data, "node", "run", "--listen", "127.0.0.1:0", "--passphrase-env", env={"HYPHAL_PASSPHRASE": "wrong"}
    )
    one_line_error(wrong, "wrong passphrase for this identity")
    one_line_error(hyphal(data, "status"), "hyphal node run")


def test_a_bad_config_file_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[dht]\nalpha = 'three'\n")
    done = subprocess.run(
        [*hyphal_command(), "--config", str(config), "--data-dir", str(tmp_path / "n"), "node", "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    one_line_error(done, "dht.alpha must be an integer")
