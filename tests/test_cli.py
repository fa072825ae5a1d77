"""The `hyphal` console script: init and id, JSON output, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import blake3

HYPHAL = Path(sys.executable).with_name("hyphal")


def hyphal(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HYPHAL), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": os.environ.get("HOME", "/tmp"), **(env or {})},
    )


def test_init_then_id_agree_and_init_keeps_the_identity(tmp_path: Path) -> None:
    data = tmp_path / "node"
    first = hyphal("--data-dir", str(data), "--json", "init")
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)
    assert made["created"] is True
    again = json.loads(hyphal("--data-dir", str(data), "--json", "init").stdout)
    assert again == {**made, "created": False}
    shown = json.loads(hyphal("--data-dir", str(data), "--json", "id").stdout)
    public = bytes.fromhex(shown["public_key"])
    assert shown["public_key"] == made["public_key"]
    assert shown["node_id"] == blake3.blake3(public).hexdigest()
    assert shown["sealed"] is False
    plain = hyphal("--data-dir", str(data), "id")
    assert f"public key: {made['public_key']}" in plain.stdout


def test_a_sealed_identity_shows_its_id_without_the_passphrase(tmp_path: Path) -> None:
    data = tmp_path / "node"
    made = hyphal("--data-dir", str(data), "init", "--passphrase-env", env={"HYPHAL_PASSPHRASE": "pw"})
    assert made.returncode == 0, made.stderr
    shown = json.loads(hyphal("--data-dir", str(data), "--json", "id").stdout)
    assert shown["sealed"] is True
    # Re-running init must unlock it: the wrong passphrase is a one-line error.
    wrong = hyphal("--data-dir", str(data), "init", "--passphrase-env", env={"HYPHAL_PASSPHRASE": "nope"})
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "Error: wrong passphrase for this identity (or the file was altered)"


def test_user_mistakes_are_one_line_errors_not_tracebacks(tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("listen = [")
    typo = tmp_path / "typo.toml"
    typo.write_text('lisen = "0.0.0.0:1"\n')
    cases = [
        (("--data-dir", str(tmp_path / "empty"), "id"), "run `hyphal init` first"),
        (("--config", str(bad_toml), "id"), "is not valid TOML"),
        (("--config", str(typo), "id"), "unknown key 'lisen'"),
        (("--data-dir", str(tmp_path / "x"), "init", "--passphrase-env"), "HYPHAL_PASSPHRASE"),
    ]
    for args, expected in cases:
        done = hyphal(*args, env={"HYPHAL_PASSPHRASE": ""})
        assert done.returncode == 1, args
        assert expected in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
