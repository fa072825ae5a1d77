"""The sans-I/O layers stay pure: importing one loads no event loop, no database and no sockets.

Each module is imported in a fresh interpreter, because this test process has
long since loaded anyio and sqlite3 for the other tests. A module that fails
here gained an import of an I/O module, directly or through a package face
(``__init__``) that imports eagerly; see ``hyphal/_lazy.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("anyio", "sqlite3", "socket", "asyncio")

PURE_MODULES = [
    # the core's typed faces
    "hyphal",
    "hyphal.aead",
    "hyphal.errors",
    "hyphal.codec",
    "hyphal.flat_tree",
    "hyphal.hashing",
    "hyphal.merkle",
    "hyphal.signing",
    "hyphal.signed_value",
    "hyphal.xor",
    # feeds' formats
    "hyphal.feed.head",
    "hyphal.feed.manifest",
    "hyphal.feed.bitfield",
    "hyphal.feed.encryption",
    "hyphal.feed.share",
    # connections
    "hyphal.net.address",
    "hyphal.net.noise",
    "hyphal.net.handshake",
    "hyphal.net.frames",
    "hyphal.net.mux",
    "hyphal.net.mux_events",
    "hyphal.net.config",
    "hyphal.net.endpoint",
    # feed replication
    "hyphal.replication.messages",
    "hyphal.replication.ranges",
    "hyphal.replication.capability",
    "hyphal.replication.actions",
    "hyphal.replication.state",
    "hyphal.replication.scheduler",
    "hyphal.replication.replicator",
    # blobs
    "hyphal.blobs.messages",
    "hyphal.blobs.transfer",
    "hyphal.blobs.actions",
    "hyphal.blobs.bitfield",
    # the DHT and the secret store
    "hyphal.dht.ids",
    "hyphal.dht.records",
    "hyphal.dht.messages",
    "hyphal.dht.routing",
    "hyphal.dht.lookup",
    "hyphal.dht.rtt",
    "hyphal.dht.tokens",
    "hyphal.dht.limits",
    "hyphal.dht.operation",
    "hyphal.dht.config",
    "hyphal.dht.timers",
    "hyphal.dht.record_store",
    "hyphal.dht.rpc",
    "hyphal.dht.core",
    "hyphal.dht.holder",
    "hyphal.dht.record_client",
    "hyphal.dht.node",
    "hyphal.secrets.records",
    "hyphal.secrets.config",
    # groups
    "hyphal.groups.state",
    "hyphal.groups.session",
    "hyphal.groups.members",
    "hyphal.groups.keys",
    "hyphal.groups.invite",
    "hyphal.groups.messages",
    "hyphal.groups.membership",
    "hyphal.groups.pairing",
    "hyphal.groups.pairing_requests",
    "hyphal.groups.device_bundle",
    "hyphal.groups.channel_format",
    "hyphal.groups.channel_core",
    # the mainline DHT bridge's sans-I/O node
    "hyphal.mainline",
    "hyphal.mainline.ids",
    "hyphal.mainline.messages",
    "hyphal.mainline.items",
    "hyphal.mainline.routing",
    "hyphal.mainline.lookup",
    "hyphal.mainline.store",
    "hyphal.mainline.server",
    "hyphal.mainline.config",
    "hyphal.mainline.records",
    "hyphal.mainline.core",
    "hyphal.mainline.node",
]

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])))
"""


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io(module: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, module, *FORBIDDEN], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    loaded = json.loads(run.stdout)
    assert loaded == [], f"importing {module} loaded {loaded}"


def test_probe_sees_io_modules() -> None:
    """The probe itself works: the node, which does I/O, is caught loading anyio and sqlite3."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "hyphal.node", *FORBIDDEN],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    loaded = set(json.loads(out))
    assert {"anyio", "sqlite3", "socket"} <= loaded
