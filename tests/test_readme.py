"""The README's examples run as written (so the README stays true)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def run_example(needle: str, directory: Path) -> list[str]:
    """Run the README's one example that mentions ``needle``; its output lines."""
    (example,) = [b for b in python_blocks() if needle in b]
    script = directory / "example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_feed_example_replicates_over_tcp(tmp_path: Path) -> None:
    assert run_example("FeedReplication", tmp_path) == ["b'world'", "b'live'"]
    assert (tmp_path / "reader.db").exists()


def test_blob_example_downloads_and_exports(tmp_path: Path) -> None:
    assert run_example("BlobDownloader", tmp_path) == ["['photo.jpg']", "b'not really a photo'"]
    assert (tmp_path / "copy.jpg").read_bytes() == (tmp_path / "photo.jpg").read_bytes()


@pytest.mark.parametrize("needle", ["make demo", "make test"])
def test_readme_opens_with_the_two_commands(needle: str) -> None:
    head = README.read_text().split("## ", 1)[0]
    assert needle in head


def test_dht_example_puts_announces_and_keeps_a_secret(tmp_path: Path) -> None:
    assert run_example("SecretClient", tmp_path) == [
        "b'profile v1'",
        "[(('127.0.0.1', 7300),)]",
        "b'app password'",
    ]


def test_group_example_shares_a_file_between_two_nodes(tmp_path: Path) -> None:
    assert run_example("join_group", tmp_path) == ["['plan.txt']", "b'day 1: the coast'"]
