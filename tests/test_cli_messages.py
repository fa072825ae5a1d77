"""`hyphal msg` against real daemon processes on 127.0.0.x: messages between devices directly, and
only through an always-on node (a backup server) that cannot read them, one device on WebSocket."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hyphal.control.process import DaemonProcess, hyphal_command, read_line, run_cli
from hyphal.groups.channel_format import message_key
from hyphal.groups.invite import Invite
from hyphal.groups.keys import GroupKeys

DEAD = "127.0.0.1:1"
"""An advertised address nobody listens on: the device is out of reach, as behind a NAT."""


def daemon(tmp_path: Path, name: str, *args: str) -> DaemonProcess:
    return DaemonProcess(tmp_path / name, [*args, "--name", name]).start()


@contextmanager
def watching(data_dir: Path, *command: str) -> Iterator[subprocess.Popen[str]]:
    """``hyphal --json COMMAND`` running, once it said it watches; stopped at the end."""
    process = subprocess.Popen(
        [*hyphal_command(), "--data-dir", str(data_dir), "--json", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert "watching" in read_line(process.stderr, 20)
        yield process
    finally:
        process.terminate()
        process.wait(10)


def next_event(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    line = read_line(process.stdout, 30)
    assert line, "no event within 30 s"
    event: dict[str, object] = json.loads(line)
    return event


def peers(data_dir: Path) -> dict[str, dict[str, object]]:
    return {p["public_key"]: p for p in run_cli(data_dir, "peers")}


def test_messages_go_directly_and_show_in_watch(tmp_path: Path) -> None:
    a = daemon(tmp_path, "alice", "node", "run", "--listen", "127.0.0.91:0")
    b = daemon(tmp_path, "bob", "node", "run", "--listen", "127.0.0.92:0")
    try:
        run_cli(a.data_dir, "group", "create", "family")
        run_cli(b.data_dir, "group", "join", run_cli(a.data_dir, "group", "invite")["invite"])
        with watching(b.data_dir, "msg", "watch") as messages, watching(b.data_dir, "watch") as changes:
            sent = run_cli(a.data_dir, "msg", "send", "dinner at 8", "--topic", "chat")
            for process in (messages, changes):
                while (event := next_event(process))["type"] != "message":
                    pass  # `hyphal watch` also reports members and repos
                assert event["text"] == "dinner at 8"
                assert (event["topic"], event["sender_name"], event["direct"]) == ("chat", "alice", True)
                assert event["id"] == sent["id"]
        # Bad input from the CLI is refused with a clear error, and the node still answers.
        too_big = subprocess.run(
            [*hyphal_command(), "--data-dir", str(a.data_dir), "msg", "send", "x" * 16_001],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert too_big.returncode == 1
        assert "at most 16000 bytes" in too_big.stderr
        assert run_cli(a.data_dir, "msg", "status")["sent"] == 1
        assert b.stop() == 0
        assert a.stop() == 0
    finally:
        a.kill()
        b.kill()


def test_a_message_reaches_a_device_only_through_the_always_on_node_which_cannot_read_it(
    tmp_path: Path,
) -> None:
    """W is on WebSocket to the backup server R, B on TCP; W and B cannot reach each other."""
    w = daemon(tmp_path, "w", "node", "run", "--listen", "127.0.0.93:0", "--advertise", DEAD)
    r = daemon(
        tmp_path,
        "r",
        "serve",
        "--backup",
        "--authorize",
        w.public_key,
        "--listen",
        "127.0.0.94:0",
        "--listen-ws",
        "127.0.0.94:0",
        "-v",
    )
    b = daemon(tmp_path, "b", "node", "run", "--listen", "127.0.0.95:0", "--advertise", DEAD)
    try:
        ws_address = r.info["ws_address"]
        assert f"ws://{ws_address}" in r.info["advertised"]
        run_cli(w.data_dir, "group", "create", "family")
        (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 a photo, synced over WebSocket" * 1000)
        run_cli(w.data_dir, "add", str(tmp_path / "photo.jpg"))
        run_cli(w.data_dir, "group", "backup", f"ws://{ws_address}")
        invite = Invite.from_uri(run_cli(w.data_dir, "group", "invite")["invite"])
        through_r = Invite(invite.group_key, invite.secret, invite.name, (r.address,))
        run_cli(b.data_dir, "group", "join", through_r.to_uri())
        # W reaches R over WebSocket, B over TCP; neither reaches the other.
        assert peers(w.data_dir)[r.public_key]["address"] == ws_address
        assert peers(b.data_dir)[r.public_key]["address"] == r.address
        assert w.public_key not in peers(b.data_dir)
        assert b.public_key not in peers(w.data_dir)

        secret_text = "the door code is 4711, burn after reading"
        with watching(b.data_dir, "msg", "watch") as messages:
            run_cli(w.data_dir, "msg", "send", secret_text)
            event = next_event(messages)
        assert event["text"] == secret_text
        assert (event["sender"], event["via"], event["direct"]) == (w.public_key, r.public_key, False)
        relay = run_cli(r.data_dir, "msg", "status")
        assert relay["relay"]
        assert relay["forwarded"] >= 1
        assert relay["delivered"] == 0

        # The file W added went to R over WebSocket and on to B over TCP.
        synced = run_cli(b.data_dir, "sync")
        assert synced["missing"] == []
        run_cli(b.data_dir, "get", "photo.jpg", "-o", str(tmp_path / "got.jpg"))
        assert (tmp_path / "got.jpg").read_bytes() == (tmp_path / "photo.jpg").read_bytes()

        assert r.stop() == 0
        # What R kept and what it forwarded: ciphertext only, and no key that opens it.
        key = message_key(GroupKeys(invite.group_key, invite.secret))
        traffic = [
            line.rsplit(": ", 1)[1]
            for line in r.log_path.read_text().splitlines()
            if "hyphal.groups.channel.traffic" in line and "forwarded message" in line
        ]
        assert traffic, "the relay's traffic log captured nothing"
        captured = b"".join(bytes.fromhex(envelope) for envelope in traffic)
        stored = b"".join(p.read_bytes() for p in r.data_dir.rglob("*") if p.is_file())
        log_text = r.log_path.read_bytes()
        plaintext = secret_text.encode()
        needles = (plaintext, plaintext.hex().encode(), key, key.hex().encode(), invite.secret)
        for haystack in (captured, stored, log_text):
            for needle in (*needles, invite.secret.hex().encode()):
                assert needle not in haystack
        assert w.stop() == 0
        assert b.stop() == 0
    finally:
        for node in (w, r, b):
            node.kill()
