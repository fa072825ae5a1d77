"""Records, signed values, the DHT and peers through the CLI, against real daemons on 127.0.0.x."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyphal.control.process import DaemonProcess, hyphal_command, read_line, run_cli
from hyphal.dht.ids import immutable_key

TIMEOUT = 20


def daemon(tmp_path: Path, name: str, host: str, *extra: str) -> DaemonProcess:
    command = ["node", "run", "--listen", f"{host}:0", "--name", name, *extra]
    return DaemonProcess(tmp_path / name, command).start()


def hyphal(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*hyphal_command(), "--data-dir", str(data), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    a = daemon(tmp_path, "a", "127.0.0.1")
    b = daemon(tmp_path, "b", "127.0.0.2", "--bootstrap", a.address)
    try:
        yield a, b
    finally:
        for node in (a, b):
            node.kill()


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[DaemonProcess, DaemonProcess, DaemonProcess]]:
    a = daemon(tmp_path, "a", "127.0.0.1")
    b = daemon(tmp_path, "b", "127.0.0.2", "--bootstrap", a.address)
    c = daemon(tmp_path, "c", "127.0.0.3", "--bootstrap", a.address)
    try:
        yield a, b, c
    finally:
        for node in (a, b, c):
            node.kill()


def test_records_across_three_daemons(three: tuple[DaemonProcess, DaemonProcess, DaemonProcess]) -> None:
    a, b, c = three
    put = run_cli(a.data_dir, "record", "put", "hello, dht")
    assert (put["mutable"], put["stored"], put["key"]) == (False, 2, immutable_key(b"hello, dht").hex())
    for other in (b, c):
        got = run_cli(other.data_dir, "record", "get", put["key"])
        assert (got["mutable"], got["value_text"]) == (False, "hello, dht")
    shown = hyphal(c.data_dir, "record", "get", put["key"])
    assert shown.stdout == "hello, dht\n(immutable, 10 bytes)\n"

    first = run_cli(a.data_dir, "record", "put", "--mutable", "--salt", "status", "up", "--cas", "0")
    assert (first["seq"], first["key"], first["salt"]) == (1, a.public_key, "status")
    second = run_cli(a.data_dir, "record", "put", "--mutable", "--salt", "status", "--cas", "1", "still up")
    assert second["seq"] == 2
    got = run_cli(c.data_dir, "record", "get", a.public_key, "--salt", "status")
    assert (got["mutable"], got["seq"], got["value_text"]) == (True, 2, "still up")
    # A binary value from a file comes back byte for byte.
    blob = a.data_dir.parent / "value.bin"
    blob.write_bytes(bytes(range(256)))
    binary = run_cli(a.data_dir, "record", "put", "--file", str(blob))
    assert bytes.fromhex(run_cli(b.data_dir, "record", "get", binary["key"])["value_hex"]) == bytes(
        range(256)
    )
    shown = hyphal(a.data_dir, "record", "put", "--mutable", "plain")
    assert shown.returncode == 0, shown.stderr
    assert f"get it with: hyphal record get {a.public_key}\n" in shown.stdout


def test_the_only_holder_of_a_record_reads_it(two: tuple[DaemonProcess, DaemonProcess]) -> None:
    """Two nodes: what A puts lands on B alone (a lookup never asks the node running it), and B
    reads it from its own store."""
    a, b = two
    put = run_cli(a.data_dir, "record", "put", "on b only")
    assert put["stored"] == 1
    assert run_cli(b.data_dir, "dht", "status")["records_by_kind"]["immutable"] == 1
    assert run_cli(b.data_dir, "record", "get", put["key"])["value_text"] == "on b only"
    run_cli(a.data_dir, "record", "put", "--mutable", "--salt", "s", "mutable on b")
    got = run_cli(b.data_dir, "record", "get", a.public_key, "--salt", "s")
    assert (got["seq"], got["value_text"]) == (1, "mutable on b")


def test_dht_status_peers_lookup_and_peers(three: tuple[DaemonProcess, DaemonProcess, DaemonProcess]) -> None:
    a, b, c = three
    status = run_cli(a.data_dir, "dht", "status")
    assert status["address"] == a.address
    assert status["table_size"] == 2
    assert sum(status["buckets"]) == 2
    listed = {p["address"] for p in run_cli(a.data_dir, "dht", "peers")}
    assert listed == {b.address, c.address}
    text = hyphal(a.data_dir, "dht", "status").stdout
    assert f"address:  {a.address} (UDP)" in text
    assert "table:    2 node(s)" in text

    run_cli(a.data_dir, "value", "set", "mood", "sunny")
    found = run_cli(b.data_dir, "dht", "lookup", a.public_key)
    assert {n["address"] for n in found["closest"]} == {a.address, c.address}
    value_id = run_cli(b.data_dir, "value", "get", a.public_key, "--salt", "mood")["id"]
    announced = run_cli(c.data_dir, "dht", "lookup", value_id)["announces"]
    assert [(x["public_key"], x["addresses"]) for x in announced] == [(a.public_key, [a.address])]

    assert run_cli(b.data_dir, "peers") == []
    assert hyphal(b.data_dir, "peers").stdout == "no connections\n"


def test_a_value_set_on_a_is_watched_live_on_b(two: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, b = two
    set_one = run_cli(a.data_dir, "value", "set", "mood", "sunny")
    assert (set_one["seq"], set_one["stored"], set_one["key"]) == (1, 1, a.public_key)
    got = run_cli(b.data_dir, "value", "get", a.public_key, "--salt", "mood")
    assert (got["seq"], got["value_text"]) == (1, "sunny")
    watch = subprocess.Popen(
        [
            *hyphal_command(),
            "--data-dir",
            str(b.data_dir),
            "--json",
            "value",
            "watch",
            a.public_key,
            "--salt",
            "mood",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        assert watch.stderr is not None
        assert "watching value mood of" in read_line(watch.stderr, TIMEOUT)
        assert json.loads(read_line(watch.stdout, TIMEOUT))["value_text"] == "sunny"
        run_cli(a.data_dir, "value", "set", "mood", "rainy")
        version = json.loads(read_line(watch.stdout, TIMEOUT))
        assert (version["seq"], version["value_text"]) == (2, "rainy")
        # B dialled A from the announce on the value's id: one connection, the value's channel on it.
        connections = run_cli(b.data_dir, "peers")
        assert [p["public_key"] for p in connections] == [a.public_key]
        assert [ch["protocol"] for ch in connections[0]["channels"]] == ["hyphal/value/1"]
        assert "hyphal/value/1" in hyphal(a.data_dir, "peers").stdout
        # The watch ends cleanly when B's daemon stops.
        assert b.stop() == 0
        assert watch.wait(TIMEOUT) == 0
        assert "the node stopped" in watch.stderr.read()
    finally:
        watch.kill()
        watch.wait(10)
    stale = hyphal(a.data_dir, "value", "set", "mood", "x", "--cas", "1")
    assert stale.returncode == 1
    assert "the value's seq is 2, not 1; read it again and retry with --cas 2" in stale.stderr


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    tmp_path = tmp_path_factory.mktemp("errors")
    a = daemon(tmp_path, "a", "127.0.0.1")
    b = daemon(tmp_path, "b", "127.0.0.2", "--bootstrap", a.address)
    try:
        run_cli(a.data_dir, "record", "put", "--mutable", "--salt", "s", "one")
        run_cli(a.data_dir, "record", "put", "--mutable", "--salt", "s", "two")
        yield a, b
    finally:
        for node in (a, b):
            node.kill()


def refused(node: DaemonProcess, *args: str) -> str:
    """The one-line error of a command that must fail, after checking the daemon still answers."""
    done = hyphal(node.data_dir, *args)
    assert done.returncode == 1, done.stdout
    assert run_cli(node.data_dir, "dht", "status")["table_size"] == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_stale_cas_is_a_seq_conflict(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, _ = pair
    message = refused(a, "record", "put", "--mutable", "--salt", "s", "--cas", "1", "three")
    assert message == (
        "Error: compare-and-swap failed: the record's seq is 2, not 1; read it again "
        f"(`hyphal record get {a.public_key} --salt s`) and retry with --cas 2"
    )


def test_an_oversized_value_is_refused_with_the_limit(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, _ = pair
    message = refused(a, "record", "put", "x" * 1001)
    assert message.startswith("Error: a record value is at most 1000 bytes, and this one is 1001;")
    message = refused(a, "value", "set", "big", "y" * 1500)
    assert message.startswith("Error: a signed value is at most 1000 bytes, and this one is 1500;")


def test_a_bad_key_is_refused(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    _, b = pair
    message = refused(b, "record", "get", "not-a-key")
    assert message.startswith("Error: 'not-a-key' is not a record's key: a key is 64 hex digits")
    message = refused(b, "value", "watch", "abcd")
    assert message.startswith("Error: 'abcd' is not a value's key (its writer's public key)")
    assert "64 hex digits" in refused(b, "dht", "lookup", "00ff")


def test_a_record_nobody_has_is_not_available(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, b = pair
    nobody = "ab" * 32
    message = refused(b, "record", "get", nobody)
    assert message == f"Error: no record under {nobody}: no DHT node asked holds one (1 peers known)"
    message = refused(b, "record", "get", a.public_key, "--salt", "missing")
    assert message.startswith(f"Error: no record under {a.public_key} with salt 'missing'")
    message = refused(b, "value", "get", a.public_key, "--salt", "missing")
    assert message == f"Error: no value 'missing' of {a.public_key} here or in the DHT"
