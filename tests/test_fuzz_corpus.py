"""The fuzz targets in the normal suite: every seed, and seeded mutations of it, is decoded or refused.

The long runs are ``make fuzz`` (atheris, coverage-guided); this checks in a
few seconds that every target and its committed corpus still hold the fixed
point, that the corpus is what the encoders make today, and that the
atheris runner works end to end.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fuzz package lives at the top of the repo, beside tests/

from fuzz.harness import check, join, quiet, split  # noqa: E402
from fuzz.targets import TARGETS, load  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"
MUTATIONS = 150
SLOW = 2.0  # seconds: one input taking longer is a hang for this suite


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    quiet()
    yield
    logging.disable(logging.NOTSET)  # the rest of the suite reads log lines


def _timed(name: str, data: bytes) -> None:
    started = time.monotonic()
    check(load(name), data)
    assert time.monotonic() - started < SLOW, f"{name}: one input took over {SLOW} s: {data[:64]!r}"


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(4)
        at = rng.randrange(len(out) + 1)
        if choice == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1:
            del out[at:]
        elif choice == 2:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif out:
            out[min(at, len(out) - 1)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF))
    return bytes(out)


@pytest.mark.parametrize("name", TARGETS)
def test_every_seed_is_decoded_or_refused(name: str) -> None:
    files = sorted((CORPUS / name).iterdir())
    assert files, f"fuzz/corpus/{name} is empty: run python -m fuzz.corpus {name}"
    for path in files:
        _timed(name, path.read_bytes())


@pytest.mark.parametrize("name", TARGETS)
def test_mutated_seeds_are_decoded_or_refused(name: str) -> None:
    rng = random.Random(name)
    seeds = [p.read_bytes() for p in sorted((CORPUS / name).iterdir())]
    for _ in range(MUTATIONS):
        _timed(name, mutate(rng, rng.choice(seeds)))


@pytest.mark.parametrize("name", TARGETS)
def test_the_corpus_is_what_the_encoders_make_today(name: str) -> None:
    committed = {p.read_bytes() for p in (CORPUS / name).glob("seed-*")}
    assert committed == set(load(name).seeds()), f"stale seeds: run python -m fuzz.corpus {name}"


def test_the_registry_names_every_target_module() -> None:
    modules = {p.stem for p in (ROOT / "fuzz" / "targets").glob("*.py")} - {"__init__"}
    assert modules == set(TARGETS)
    assert all(load(name).name == name for name in TARGETS)


def test_pieces_split_back_into_what_was_joined() -> None:
    pieces = [b"", b"a", bytes(300), b"\x00\x01"]
    assert split(join(pieces)) == pieces
    assert split(b"\x05\x00ab") == [b"ab"]  # a short last piece is kept as it is
    assert split(b"\x01") == [b"\x01"]


def test_the_fuzzer_runs_a_target_and_reports_its_coverage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fuzz", "--seconds", "2", "--markdown", "blob_messages"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("| blob_messages"))
    _, _, _, execs, cov, _, crashes, _ = row.split("|")
    assert int(execs) > 100, row
    assert int(cov) > 10, row
    assert int(crashes) == 0, row


def test_one_input_can_be_replayed_outside_the_fuzzer(tmp_path: Path) -> None:
    good = tmp_path / "refused"
    good.write_bytes(b"\xff")
    ok = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "replication", "--reproduce", str(good)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no crash" in ok.stdout
