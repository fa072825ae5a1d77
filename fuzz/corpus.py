"""Write each target's seed corpus, ``fuzz/corpus/<target>/``, from its ``seeds()``.

``python -m fuzz.corpus [TARGET...]``. The seeds are real messages made by
the encoders as the tests make them, with fixed keys and seeded randomness,
so the files are the same on every run; stale seeds are removed. What a
fuzzing run discovers goes to ``fuzz/.work/`` (not committed), never here.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from fuzz.harness import check, quiet
from fuzz.targets import TARGETS, load

CORPUS = Path(__file__).parent / "corpus"


def write(name: str) -> int:
    target = load(name)
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, bytes] = {}
    for seed in target.seeds():
        check(target, seed)  # a seed that crashes its own target is a bug in the target
        wanted[f"seed-{hashlib.sha256(seed).hexdigest()[:16]}"] = seed
    for old in folder.glob("seed-*"):
        if old.name not in wanted:
            old.unlink()
    for file_name, seed in wanted.items():
        (folder / file_name).write_bytes(seed)
    return sum(len(s) for s in wanted.values())


def main(argv: list[str]) -> int:
    quiet()
    for name in argv or TARGETS:
        size = write(name)
        print(f"{name:16} {len(list((CORPUS / name).iterdir())):3} seeds {size:7} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
