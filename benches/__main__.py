"""``python -m benches SUITE [--quick] [--sim] [--json PATH] [--plain]``.

Exit status: 0 when the suite ran (whether or not its targets were met:
benches report, they don't gate), 1 when a row failed with an exception or
a wrong result, 2 for bad arguments such as an unknown suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from benches import SUITES
from benches.harness import Row, busy_warning, log, machine_info, print_report, write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"

SuiteFn = Callable[[bool], list[Row]]


def load_suite(name: str) -> SuiteFn:
    module_name, _, func_name = SUITES[name].partition(":")
    module = importlib.import_module(module_name)
    return cast(SuiteFn, getattr(module, func_name or "run"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benches",
        description="Run a hyphal benchmark suite; every row measures its baseline in the same run.",
    )
    parser.add_argument("suite", nargs="?", help=f"suite to run: {', '.join(sorted(SUITES))}")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions (smoke run)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="where to write the results (default: benches/results/<suite>.json)",
    )
    parser.add_argument("--plain", action="store_true", help="plain-text table even on a terminal")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument(
        "--sim", action="store_true", help="run the suite in hyphal.sim (suites that have it: dht)"
    )
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(sorted(SUITES)))
        sys.exit(0)
    if args.suite is None:
        parser.error(f"a suite name is required; known suites: {', '.join(sorted(SUITES))}")
    if args.suite not in SUITES:
        parser.error(f"unknown suite {args.suite!r}; known suites: {', '.join(sorted(SUITES))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    suite: str = args.suite
    json_path: Path = args.json if args.json is not None else RESULTS_DIR / f"{suite}.json"

    run = load_suite(suite)
    machine = machine_info()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    log(f"benches {suite}{' --quick' if args.quick else ''}: {machine.get('cpu_model')}")
    warning = busy_warning(machine)
    if warning:
        log(warning)
    if args.sim and "sim" not in inspect.signature(run).parameters:
        log(f"suite {suite!r} has no --sim variant")
        return 2
    rows = run(args.quick, sim=True) if args.sim else run(args.quick)  # type: ignore[call-arg]
    duration = time.perf_counter() - t0

    title = f"hyphal benches: {suite}{' (quick)' if args.quick else ''} — {duration:.1f} s"
    print_report(title, rows, machine, plain=True if args.plain else None)
    write_json(
        json_path,
        suite=suite,
        quick=args.quick,
        rows=rows,
        machine=machine,
        started=started,
        duration_s=duration,
    )
    log(f"results written to {json_path}")
    failed = [r.name for r in rows if r.error is not None]
    if failed:
        log(f"{len(failed)} row(s) failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
