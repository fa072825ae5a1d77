"""``hyphal pair`` and ``hyphal device`` against real daemon processes on 127.0.0.146-149:
an origin, a third device it approves, a second device the third approves, a wrong code,
a read-only write, `watch` events, and a removal."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hyphal.control.process import DaemonProcess, hyphal_command, read_line, run_cli

WAIT = 30.0


def daemon(tmp: Path, name: str, host: str, *extra: str) -> DaemonProcess:
    return DaemonProcess(tmp / name, ["node", "run", "--listen", f"{host}:0", "--name", name, *extra]).start()


def hyphal(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*hyphal_command(), "--data-dir", str(data), *args], capture_output=True, text=True, timeout=60
    )


class Watch:
    """``hyphal watch --json`` on a node: wait for the event a test expects (with a timeout)."""

    def __init__(self, node: DaemonProcess) -> None:
        self.process = subprocess.Popen(
            [*hyphal_command(), "--data-dir", str(node.data_dir), "watch", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        assert "watching group" in read_line(self.process.stderr, 20)

    def wait_for(self, kind: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            event: dict[str, Any] = json.loads(read_line(self.process.stdout, WAIT))
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@contextmanager
def watching(node: DaemonProcess) -> Iterator[Watch]:
    watch = Watch(node)
    try:
        yield watch
    finally:
        watch.close()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[DaemonProcess, DaemonProcess, DaemonProcess]]:
    origin = daemon(tmp_path, "origin", "127.0.0.146")
    started = [origin]
    try:
        started.append(daemon(tmp_path, "third", "127.0.0.147", "--bootstrap", origin.address))
        started.append(daemon(tmp_path, "second", "127.0.0.148", "--bootstrap", origin.address))
        yield origin, started[1], started[2]
    finally:
        for node in started:
            node.kill()


def test_pair_approve_by_another_device_write_and_remove(
    tmp_path: Path, nodes: tuple[DaemonProcess, DaemonProcess, DaemonProcess]
) -> None:
    origin, third, second = nodes
    run_cli(origin.data_dir, "group", "create", "family", "--as", "origin")
    (tmp_path / "o.txt").write_text("from the origin")
    run_cli(origin.data_dir, "add", str(tmp_path / "o.txt"))
    assert "on the new device: hyphal pair join " in hyphal(origin.data_dir, "pair", "code").stdout
    shown = run_cli(origin.data_dir, "pair", "code")  # a new code replaces the one shown before
    account, code = shown["account"], shown["code"]

    # The third device signs in through the DHT; the origin's watch reports its request.
    with watching(origin) as on_origin:
        joined = run_cli(third.data_dir, "pair", "join", account, "--code", code, "--as", "phone")
        assert joined["writer"] is False
        assert joined["name"] == "family"
        event = on_origin.wait_for("pairing_requested")
    assert (event["request"], event["code"], event["name"]) == (joined["request"], joined["code"], "phone")

    # Read-only until approved: a clear error, nothing written.
    (tmp_path / "t.txt").write_text("from the third")
    refused = hyphal(third.data_dir, "add", str(tmp_path / "t.txt"))
    assert refused.returncode == 1
    assert "read-only" in refused.stderr
    listed = run_cli(origin.data_dir, "pair", "requests")
    assert [(r["id"], r["code"]) for r in listed] == [(joined["request"], joined["code"])]
    with watching(third) as on_third:
        run_cli(origin.data_dir, "pair", "approve", joined["request"][:6])
        on_third.wait_for("device_approved", device=third.public_key)
    run_cli(third.data_dir, "add", str(tmp_path / "t.txt"))

    # A wrong code: a typed error and a log line; nothing joined; the device still answers.
    code = run_cli(third.data_dir, "pair", "code")["code"]
    wrong = hyphal(second.data_dir, "pair", "join", account, "--code", "2345-6789", "--peer", third.address)
    assert wrong.returncode == 1
    assert "wrong pairing code or password" in wrong.stderr
    assert run_cli(second.data_dir, "group", "list") == []
    assert "pairing refused" in third.log_tail(50)
    assert run_cli(third.data_dir, "status")["public_key"] == third.public_key

    # The third device (approved) approves the second; the second writes; the origin sees it.
    with watching(third) as on_third:
        joined = run_cli(
            second.data_dir,
            "pair",
            "join",
            account,
            "--code",
            code,
            "--as",
            "laptop",
            "--peer",
            third.address,
        )
        on_third.wait_for("pairing_requested", request=joined["request"])
    with watching(second) as on_second:
        run_cli(third.data_dir, "pair", "approve", joined["request"])
        on_second.wait_for("device_approved", device=second.public_key)
    (tmp_path / "s.txt").write_text("from the second")
    with watching(origin) as on_origin:
        run_cli(second.data_dir, "add", str(tmp_path / "s.txt"))
        on_origin.wait_for("file_added", name="s.txt", member_name="laptop")

    devices = run_cli(origin.data_dir, "device", "ls")["devices"]
    assert {d["name"]: d["role"] for d in devices} == {
        "origin": "origin",
        "phone": "writer",
        "laptop": "writer",
    }

    # Removal: the second's old file stays, its new writes are refused, locally too.
    with watching(second) as on_second:
        run_cli(origin.data_dir, "device", "rm", joined["request"])
        on_second.wait_for("device_removed", device=second.public_key)
    (tmp_path / "late.txt").write_text("too late")
    late = hyphal(second.data_dir, "add", str(tmp_path / "late.txt"))
    assert late.returncode == 1
    assert "removed" in late.stderr
    assert "s.txt" in {f["name"] for f in run_cli(origin.data_dir, "ls")}
    roles = {d["name"]: d["role"] for d in run_cli(third.data_dir, "device", "ls")["devices"]}
    assert roles["laptop"] == "removed"


def test_a_device_moves_to_new_hardware_with_export_and_import(tmp_path: Path) -> None:
    origin = daemon(tmp_path, "origin", "127.0.0.149")
    moved: DaemonProcess | None = None
    try:
        run_cli(origin.data_dir, "group", "create", "family", "--as", "origin")
        old = daemon(tmp_path, "old", "127.0.0.150", "--bootstrap", origin.address)
        try:
            invite = run_cli(origin.data_dir, "group", "invite")["invite"]
            run_cli(old.data_dir, "group", "join", invite, "--as", "laptop")
            (tmp_path / "a.txt").write_text("written on the old machine")
            with watching(origin) as on_origin:
                run_cli(old.data_dir, "add", str(tmp_path / "a.txt"))
                on_origin.wait_for("file_added", name="a.txt")
            bundle = tmp_path / "laptop.hyphal-device"
            env = {**os.environ, "HYPHAL_DEVICE_PASSPHRASE": "correct horse"}
            exported = subprocess.run(
                [*hyphal_command(), "--data-dir", str(old.data_dir), "device", "export", str(bundle)],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            assert exported.returncode == 0, exported.stderr
            key = old.public_key
        finally:
            assert old.stop() == 0
        new_dir = tmp_path / "new"
        wrong = subprocess.run(
            [*hyphal_command(), "--data-dir", str(new_dir), "device", "import", str(bundle)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "HYPHAL_DEVICE_PASSPHRASE": "nope"},
        )
        assert wrong.returncode == 1
        assert "wrong passphrase for this device bundle" in wrong.stderr
        assert not (new_dir / "identity").exists()
        imported = subprocess.run(
            [*hyphal_command(), "--data-dir", str(new_dir), "device", "import", str(bundle)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert imported.returncode == 0, imported.stderr
        moved = DaemonProcess(new_dir, ["node", "run", "--listen", "127.0.0.151:0"]).start()
        assert moved.public_key == key  # the same device
        with watching(moved) as on_moved:
            # Its own repo comes back from the origin before it writes again (repo_added says so).
            if run_cli(moved.data_dir, "device", "ls")["restoring"]:
                on_moved.wait_for("repo_added", member=key)
        assert "a.txt" in {f["name"] for f in run_cli(moved.data_dir, "ls")}
        (tmp_path / "b.txt").write_text("written on the new machine")
        with watching(origin) as on_origin:
            run_cli(moved.data_dir, "add", str(tmp_path / "b.txt"))
            on_origin.wait_for("file_added", name="b.txt", member=key)
        assert {f["name"] for f in run_cli(origin.data_dir, "ls")} == {"a.txt", "b.txt"}
    finally:
        origin.kill()
        if moved is not None:
            moved.kill()
