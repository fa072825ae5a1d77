"""Every fuzz target in turn: ``python -m fuzz [--seconds N] [TARGET...]``, then a table.

Each target runs in its own process (libFuzzer owns the process it runs
in) for ``--seconds`` (default ``$FUZZ_SECONDS``, else 60). The table gives
per target the executions, the coverage (libFuzzer's ``cov``: instrumented
edges of hyphal reached; ``ft``: its finer "features") and whether it
crashed; ``--markdown`` prints it for a note. Logs are kept in
``fuzz/.work/logs/``. The exit status is 1 if any target crashed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fuzz.targets import TARGETS

HERE = Path(__file__).parent
LOGS = HERE / ".work" / "logs"
_EXECS = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_COVERAGE = re.compile(rb"cov: (\d+) ft: (\d+)")


@dataclass
class Row:
    target: str
    seconds: float
    execs: int
    cov: int
    ft: int
    crashed: bool


def fuzz_one(name: str, seconds: int, timeout: int) -> Row:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    command = [sys.executable, "-m", "fuzz.run", name, f"--seconds={seconds}", f"--timeout={timeout}"]
    started = time.monotonic()
    with log.open("wb") as out:
        try:
            code = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=HERE.parent, timeout=2 * seconds + 120
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    text = log.read_bytes()
    execs = _EXECS.findall(text)
    coverage = _COVERAGE.findall(text)
    cov, ft = (int(coverage[-1][0]), int(coverage[-1][1])) if coverage else (0, 0)
    return Row(name, time.monotonic() - started, int(execs[-1]) if execs else 0, cov, ft, code != 0)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"default: all of {', '.join(TARGETS)}")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take (a hang)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args()
    names = args.targets or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"no fuzz target {unknown[0]!r}")
    rows: list[Row] = []
    print(f"fuzzing {len(names)} targets for {args.seconds} s each", flush=True)
    for name in names:
        row = fuzz_one(name, args.seconds, args.timeout)
        rows.append(row)
        verdict = "CRASH (see fuzz/.work/logs)" if row.crashed else "ok"
        print(f"  {name:16} {row.execs:>10} execs  cov {row.cov:>5}  ft {row.ft:>6}  {verdict}", flush=True)
        if row.crashed:
            sys.stdout.write((LOGS / f"{name}.log").read_text(errors="replace")[-4000:])
    if args.markdown:
        print("\n| target | seconds | executions | coverage (cov) | features (ft) | crashes |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r.target} | {r.seconds:.0f} | {r.execs} | {r.cov} | {r.ft} | {int(r.crashed)} |")
        total = sum(r.seconds for r in rows)
        print(
            f"| **all {len(rows)}** | {total:.0f} | {sum(r.execs for r in rows)} | | | "
            f"{sum(r.crashed for r in rows)} |"
        )
    crashed = [r.target for r in rows if r.crashed]
    if crashed:
        print(
            f"crashed: {', '.join(crashed)}; reproduce with python -m fuzz.run TARGET --reproduce FILE "
            "(the input is in fuzz/.work/crashes/)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
