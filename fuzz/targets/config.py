"""The node's config file (config.py ``NodeConfig.load``), as the daemon reads it from disk.

The input is the file's bytes. Refusal: ``InvalidInput`` (naming the file
and the key), as the CLI shows it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fuzz.harness import Target
from hyphal.config import NodeConfig
from hyphal.errors import InvalidInput

_DIR = Path(tempfile.mkdtemp(prefix="hyphal-fuzz-config-"))
atexit.register(shutil.rmtree, _DIR, True)
PATH = _DIR / "config.toml"


def run(data: bytes) -> None:
    PATH.write_bytes(data)
    NodeConfig.load(PATH, data_dir=_DIR)


def seeds() -> Iterator[bytes]:
    yield b""
    yield (
        b'name = "laptop"\nlisten = "0.0.0.0:7300"\nbootstrap = ["seed.example:7300"]\n'
        b'advertise = ["203.0.113.7:7300"]\nbackup_authorize = ["ab"]\ndata_dir = "~/hyphal"\n'
        b"[dht]\nk = 8\nalpha = 2\ndisjoint_paths = 2\nrecord_ttl = 60\nclient = true\n"
        b"[connection]\nidle_timeout = 30.5\nkeepalive_interval = false\nmax_frame = 65536\n"
        b"[replication]\nmax_window = 8\nrequest_timeout = 5\n"
        b"[blobs]\ngc_interval = 120\n"
        b"[secrets]\nreplicas = 3\nhandoff_timeout = 4\n"
    )
    yield b"[blobs]\ngc_interval = false\n"
    yield b"[dht]\nalpha = 'three'\n"
    yield b"[connection]\nhandshake_timeout = 0\n"
    yield b'bootstrap = [1, "a:1"]\n[dht]\nrate = -1.5e3\n'


TARGET = Target("config", run, (InvalidInput,), seeds)
