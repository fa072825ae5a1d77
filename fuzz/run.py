"""One fuzz target under atheris (libFuzzer): ``python -m fuzz.run TARGET [--seconds N]``.

hyphal's modules are instrumented for coverage as the target imports them.
The committed seeds (``fuzz/corpus/<target>/``) are read; what the run
discovers goes to ``fuzz/.work/corpus/<target>/`` and crashing inputs to
``fuzz/.work/crashes/``. ``--reproduce FILE`` runs one input in plain Python
and shows the traceback. Extra libFuzzer flags follow ``--``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).parent
WORK = HERE / ".work"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz (default 60)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take (default 10)")
    parser.add_argument("--rss-mb", type=int, default=1536, help="memory the process may reach")
    parser.add_argument("--reproduce", type=Path, help="run this one input and show what it raises")
    parser.add_argument("libfuzzer", nargs="*", help="more libFuzzer flags (after --)")
    args = parser.parse_args()

    from fuzz.harness import check, quiet

    quiet()
    if args.reproduce is not None:
        from fuzz.targets import load

        try:
            check(load(args.target), args.reproduce.read_bytes())
        except BaseException:
            traceback.print_exc()
            return 1
        print("no crash: decoded or refused with a documented error")
        return 0

    import atheris  # type: ignore[import-untyped]

    with atheris.instrument_imports(include=["hyphal"]):
        from fuzz.targets import load

        target = load(args.target)
    found = WORK / "corpus" / target.name
    crashes = WORK / "crashes"
    found.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.argv[0],
        str(found),
        str(HERE / "corpus" / target.name),
        f"-max_total_time={args.seconds}",
        f"-max_len={target.max_len}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        f"-artifact_prefix={crashes}/{target.name}-",
        "-print_final_stats=1",
        *args.libfuzzer,
    ]
    atheris.Setup(argv, lambda data: check(target, data))
    atheris.Fuzz()
    return 0  # not reached: libFuzzer exits the process


if __name__ == "__main__":
    sys.exit(main())
