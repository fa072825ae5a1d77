"""`make demo`: real node processes share files in a group, with a backup server.

Each node is a `hyphal node run` (or `hyphal serve --backup`) process on
127.0.0.1 with its own data dir, driven by the `hyphal` CLI as a user would:

1. A creates a group and adds files, one of several MB (and one private).
2. B joins with A's invite, syncs, and checks every file's BLAKE3 hash.
3. C runs as a backup server authorised for A's key; A asks it to hold the group.
4. A tablet T pairs with a one-time code A shows (SPAKE2): it holds the group
   read-only and its write is refused; its request reaches A, which approves it;
   T's file then reaches B.
5. A stops.
6. B adds a file; a new device D joins with B's invite and syncs from B and C,
   and checks every file again, A's included, and how many bytes each served it.
7. B creates a feed and shares its key; D finds it through the DHT alone and reads it.
8. B stores a secret in the replicated store for D and stops; D still reads it.

Exits non-zero if anything does not hold; every node process is stopped at the end.
Usage: ``python -m hyphal.demo_group``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from hyphal.control.process import DaemonProcess, hyphal_command, run_cli
from hyphal.errors import HyphalError
from hyphal.hashing import blake3

BIG_FILE_SIZE = 6 * 2**20
BACKUP_DEADLINE = 30.0
POLL_INTERVAL = 0.2
SECRET = b"sk-demo-8c1f2e"


class DemoFailure(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailure(what)
    print(f"   ok: {what}")


class Demo:
    def __init__(self, root: Path, stack: ExitStack) -> None:
        self.root = root
        self._stack = stack
        self.originals: dict[str, bytes] = {}
        """File name -> BLAKE3 of what was added."""

    def start(self, name: str, *command: str) -> DaemonProcess:
        node = DaemonProcess(self.root / name, [*command, "--listen", "127.0.0.1:0", "--name", name])
        self._stack.enter_context(node)
        print(f"   {name}: {node.info['public_key'][:16]}… listening on {node.address}")
        return node

    def write(self, name: str, data: bytes) -> Path:
        path = self.root / "files" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        self.originals[name] = blake3(data)
        return path

    def verify_all(self, node: DaemonProcess) -> None:
        """`hyphal get` every file on ``node`` and compare its hash with the original's."""
        listed = {f["name"] for f in run_cli(node.data_dir, "ls")}
        check(listed == set(self.originals), f"{node.data_dir.name} lists all {len(listed)} files")
        out = self.root / f"{node.data_dir.name}-got"
        out.mkdir(exist_ok=True)
        for name, expected in sorted(self.originals.items()):
            run_cli(node.data_dir, "get", name, "-o", str(out / name))
            got = blake3((out / name).read_bytes())
            check(got == expected, f"{name}: blake3 {got.hex()[:16]}… matches the original")

    def wait_backup(self, backup: DaemonProcess) -> None:
        """Poll the backup's file list until it holds every blob, with a deadline."""
        deadline = time.monotonic() + BACKUP_DEADLINE
        while True:
            files = run_cli(backup.data_dir, "ls")
            held = [f for f in files if f["local"]]
            if files and len(held) == len(files) and {f["name"] for f in files} == set(self.originals):
                check(True, f"the backup holds all {len(held)} files' blobs (private ones as ciphertext)")
                return
            if time.monotonic() > deadline:
                raise DemoFailure(f"the backup holds {len(held)} of {len(self.originals)} files")
            time.sleep(POLL_INTERVAL)


def wait_for(check_now: Callable[[], Any], what: str) -> Any:
    """Poll a CLI query until it returns something true, with a deadline."""
    deadline = time.monotonic() + BACKUP_DEADLINE
    while not (found := check_now()):
        if time.monotonic() > deadline:
            raise DemoFailure(f"timed out waiting for {what}")
        time.sleep(POLL_INTERVAL)
    return found


def sync(node: DaemonProcess) -> dict[str, Any]:
    # stderr passes through: the progress bar shows on the terminal.
    result: dict[str, Any] = run_cli(node.data_dir, "sync", stderr=None)
    reached = ", ".join(result["reached"])
    fetched = f"{result['files_fetched']} files, {result['bytes_fetched']:,} bytes fetched from {reached}"
    check(not result["missing"], f"sync: {fetched}")
    return result


def cli_output(data_dir: Path, *args: str) -> bytes:
    """What ``hyphal --data-dir DATA_DIR ARGS`` prints for a person (its stdout, as bytes)."""
    done = subprocess.run(
        [*hyphal_command(), "--data-dir", str(data_dir), *args], capture_output=True, timeout=120
    )
    if done.returncode != 0:
        raise DemoFailure(f"hyphal {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def served_to(provider: DaemonProcess, reader: DaemonProcess) -> int:
    """Blob bytes ``provider`` has sent to ``reader`` (from its status)."""
    return int(run_cli(provider.data_dir, "status")["blobs_served"].get(reader.public_key, 0))


def run(root: Path, stack: ExitStack) -> None:
    demo = Demo(root, stack)
    print("1. A starts, creates a group and adds files")
    a = demo.start("alice", "node", "run")
    group = run_cli(a.data_dir, "group", "create", "family", "--as", "alice")
    print(f"   group 'family' id {group['id'][:20]}…")
    files = {
        "notes.txt": b"shopping: bread, tea\n",
        "photo.jpg": os.urandom(300_000),
        "video.bin": os.urandom(BIG_FILE_SIZE),
    }
    for name, data in files.items():
        added = run_cli(a.data_dir, "add", str(demo.write(name, data)))
        print(f"   added {name} ({added['size']:,} bytes)")
    run_cli(a.data_dir, "add", str(demo.write("diary.txt", b"dear diary\n")), "--private")
    print("   added diary.txt as private: only members can read it, not the backup")

    print("2. B starts, joins with A's invite, syncs and checks every file")
    b = demo.start("bob", "node", "run", "--bootstrap", a.address)
    invite = run_cli(a.data_dir, "group", "invite")["invite"]
    joined = run_cli(b.data_dir, "group", "join", invite, "--as", "bob")
    check(bool(joined["reached"]), f"B joined and reached {', '.join(joined['reached'])}")
    sync(b)
    demo.verify_all(b)

    print("3. C starts as a backup server for A's key; A asks it to hold the group")
    c = demo.start("backup", "serve", "--backup", "--authorize", a.public_key, "--bootstrap", a.address)
    run_cli(a.data_dir, "group", "backup", c.address)
    demo.wait_backup(c)
    info = run_cli(c.data_dir, "group", "info")
    check(any(m["self"] and m["backup"] for m in info["member_list"]), "C is in the group as a backup")

    print("4. A tablet T pairs with a code A shows; read-only until A approves it")
    t = demo.start("tablet", "node", "run", "--bootstrap", a.address)
    shown = run_cli(a.data_dir, "pair", "code")
    print(f"   A shows code {shown['code']}; T runs: hyphal pair join {shown['account'][:12]}… --code …")
    paired = run_cli(t.data_dir, "pair", "join", shown["account"], "--code", shown["code"], "--as", "tablet")
    check(
        not paired["writer"], f"T joined '{paired['name']}' read-only; its screen shows code {paired['code']}"
    )
    refused = subprocess.run(
        [*hyphal_command(), "--data-dir", str(t.data_dir), "add", str(demo.write("tablet.txt", b"from T\n"))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    check(refused.returncode == 1 and "read-only" in refused.stderr, "T's write is refused until approved")
    request = wait_for(lambda: run_cli(a.data_dir, "pair", "requests"), "T's request to reach A")[0]
    check(
        request["code"] == paired["code"],
        f"A's screen shows T's request with the same code {request['code']}",
    )
    run_cli(a.data_dir, "pair", "approve", request["id"])
    wait_for(lambda: run_cli(t.data_dir, "device", "ls")["writer"], "the approval to reach T")
    run_cli(t.data_dir, "add", str(demo.root / "files" / "tablet.txt"))
    on_b = wait_for(lambda: [f for f in run_cli(b.data_dir, "ls") if f["name"] == "tablet.txt"], "T's file")
    check(on_b[0]["member_name"] == "tablet", "A approved T; T wrote tablet.txt and B lists it as T's")
    demo.wait_backup(c)
    roles = {d["name"]: d["role"] for d in run_cli(b.data_dir, "device", "ls")["devices"]}
    print("   devices: " + ", ".join(f"{name} ({role})" for name, role in sorted(roles.items())))
    check(t.stop() == 0, "T exited cleanly on SIGTERM")

    print("5. A stops")
    check(a.stop() == 0, "A exited cleanly (status 0) on SIGTERM")

    print("6. B adds a file; a new device D joins with B's invite and syncs from B and C")
    run_cli(b.data_dir, "add", str(demo.write("bob.txt", b"hello from bob\n")))
    d = demo.start("dora", "node", "run", "--bootstrap", c.address)
    invite = run_cli(b.data_dir, "group", "invite")["invite"]
    joined = run_cli(d.data_dir, "group", "join", invite, "--as", "dora")
    check(bool(joined["reached"]), f"D joined and reached {', '.join(joined['reached'])} (A is gone)")
    sync(d)
    demo.verify_all(d)
    served = {node.data_dir.name: served_to(node, d) for node in (b, c)}
    print("   bytes served to D: " + ", ".join(f"{name} {n:,}" for name, n in served.items()))
    check(served["backup"] > 0, "the backup served D bytes of A's files")

    print("7. B shares a feed by its key alone; D reads it through the DHT, given no address of B")
    share = run_cli(b.data_dir, "feed", "create")["share"]
    lines = b"".join(f"reading {i}: {i * 7 % 100} C\n".encode() for i in range(20_000))
    appended = run_cli(b.data_dir, "feed", "append", share, str(demo.write("readings.log", lines)))
    print(f"   share string {share[:40]}… ({appended['length']} blocks)")
    read = cli_output(d.data_dir, "feed", "cat", share)
    check(read == lines, f"D read all {len(read):,} bytes of B's feed, every block verified")

    print("8. B keeps a secret in the replicated store for D, then stops; D still reads it")
    url = "https://api.example.com"
    run_cli(b.data_dir, "secret", "put", url, "--file", str(demo.write("api-key", SECRET)))
    run_cli(b.data_dir, "secret", "grant", url, d.public_key)
    check(b.stop() == 0, "B exited cleanly on SIGTERM (handing its share of the secrets on)")
    got = run_cli(d.data_dir, "secret", "get", b.public_key, url)
    check(base64.b64decode(got["value"]) == SECRET, f"D read B's secret for {url} with B gone")
    for node in (c, d):
        check(node.stop() == 0, f"{node.data_dir.name} exited cleanly on SIGTERM")
    print("All checks held.")


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hyphal-demo-") as tmp, ExitStack() as stack:
        try:
            run(Path(tmp), stack)
        except (DemoFailure, HyphalError, OSError) as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
