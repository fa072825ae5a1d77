"""Shared pieces of the benchmark suites: timing, result rows, printing and JSON.

A suite is a function ``run(quick: bool) -> list[Row]`` registered in
:data:`benches.SUITES`. It times its subject and its baseline in the same
process, interleaved (see :func:`measure_interleaved`), and turns the two
figures into one :class:`Row` with :func:`throughput_row` or
:func:`latency_row`, which make the direction of the ratio explicit.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, TextIO

RatioKind = Literal["throughput", "speedup", ""]

# -- timing ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall-clock samples of one callable; each sample is one call of it."""

    samples_ns: tuple[int, ...]

    @property
    def best_ns(self) -> int:
        return min(self.samples_ns)

    @property
    def median_ns(self) -> float:
        return float(statistics.median(self.samples_ns))

    @property
    def best_s(self) -> float:
        return self.best_ns / 1e9

    @property
    def median_s(self) -> float:
        return self.median_ns / 1e9

    def summary(self) -> dict[str, Any]:
        return {
            "samples": len(self.samples_ns),
            "best_s": self.best_s,
            "median_s": self.median_s,
            "worst_s": max(self.samples_ns) / 1e9,
        }


def measure_interleaved(
    fns: Mapping[str, Callable[[], object]], *, repeat: int, warmup: int = 1
) -> dict[str, Timing]:
    """Time each callable ``repeat`` times, round-robin, with the garbage collector off.

    Round-robin means slow drift of the machine (frequency scaling, a noisy
    neighbour) hits every contender alike, so the ratios stay fair. Each
    callable also runs ``warmup`` times first, untimed.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[int]] = {name: [] for name in fns}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, fn in fns.items():
                t0 = time.perf_counter_ns()
                fn()
                samples[name].append(time.perf_counter_ns() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing(tuple(s)) for name, s in samples.items()}


def measure(fn: Callable[[], object], *, repeat: int, warmup: int = 1) -> Timing:
    """Time one callable ``repeat`` times (see :func:`measure_interleaved`)."""
    return measure_interleaved({"fn": fn}, repeat=repeat, warmup=warmup)["fn"]


def call_loop(fn: Callable[..., object], args: Sequence[object], calls: int) -> Callable[[], None]:
    """A callable that makes ``calls`` calls of ``fn(*args)`` in a tight loop.

    Specialised for up to three arguments, so no ``*args`` unpacking is
    timed. The loop's own cost (a few tens of ns per call) is included.
    """
    if len(args) == 0:

        def run0() -> None:
            for _ in repeat(None, calls):
                fn()

        return run0
    if len(args) == 1:
        (a,) = args

        def run1() -> None:
            for _ in repeat(None, calls):
                fn(a)

        return run1
    if len(args) == 2:
        a, b = args

        def run2() -> None:
            for _ in repeat(None, calls):
                fn(a, b)

        return run2
    if len(args) == 3:
        a, b, c = args

        def run3() -> None:
            for _ in repeat(None, calls):
                fn(a, b, c)

        return run3

    def run_n() -> None:
        for _ in repeat(None, calls):
            fn(*args)

    return run_n


# -- results ---------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One line of a report: our figure, the baseline's, their ratio and the target.

    ``ratio`` is always oriented so that **> 1 means hyphal is better**:
    for throughputs (``ratio_kind == "throughput"``) it is ours / baseline;
    for times (``ratio_kind == "speedup"``) it is baseline time / our time.
    ``met`` is None for informational rows (no target) and for failed rows.
    """

    name: str
    figure: float | None
    unit: str
    baseline_name: str | None = None
    baseline_figure: float | None = None
    ratio: float | None = None
    ratio_kind: RatioKind = ""
    target: str = ""
    target_ratio: float | None = None
    met: bool | None = None
    higher_is_better: bool = True
    note: str = ""
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def informational(self) -> bool:
        return not self.target


def _met(ratio: float, target_ratio: float | None, strict: bool) -> bool | None:
    if target_ratio is None:
        return None
    return ratio > target_ratio if strict else ratio >= target_ratio


def _target_text(target_ratio: float | None, strict: bool, kind: str) -> str:
    if target_ratio is None:
        return ""
    op = ">" if strict else "≥"
    return f"{op} {target_ratio:g}x {kind}"


def throughput_row(
    name: str,
    *,
    work: float,
    unit: str,
    ours: Timing,
    baseline_name: str | None = None,
    baseline: Timing | None = None,
    baseline_work: float | None = None,
    target_ratio: float | None = None,
    strict: bool = False,
    target: str | None = None,
    note: str = "",
) -> Row:
    """A higher-is-better row: ``work`` units per best sample; ratio = ours / baseline.

    ``work`` is how much one sample does, already in ``unit``s (e.g. GB, or
    signatures); the figure is ``work / best seconds``.
    """
    figure = work / ours.best_s
    details: dict[str, Any] = {"ours": ours.summary(), "ours_median_figure": work / ours.median_s}
    row = Row(name=name, figure=figure, unit=unit, ratio_kind="throughput", note=note, details=details)
    if baseline is not None:
        bwork = work if baseline_work is None else baseline_work
        row.baseline_name = baseline_name
        row.baseline_figure = bwork / baseline.best_s
        row.ratio = figure / row.baseline_figure
        details["baseline"] = baseline.summary()
        details["baseline_median_figure"] = bwork / baseline.median_s
        details["median_ratio"] = details["ours_median_figure"] / details["baseline_median_figure"]
        row.target_ratio = target_ratio
        row.met = _met(row.ratio, target_ratio, strict)
    row.target = target if target is not None else _target_text(target_ratio, strict, "throughput")
    return row


def latency_row(
    name: str,
    *,
    ours: Timing,
    per_sample: int = 1,
    unit: Literal["s", "ms", "µs", "ns", "ns/call", "µs/call"] = "ms",
    baseline_name: str | None = None,
    baseline: Timing | None = None,
    baseline_per_sample: int | None = None,
    target_ratio: float | None = None,
    strict: bool = False,
    max_figure: float | None = None,
    target: str | None = None,
    note: str = "",
) -> Row:
    """A lower-is-better row: time per operation; ratio = baseline time / our time (speedup).

    ``per_sample`` is how many operations one sample makes (e.g. the calls
    of a tight loop). ``max_figure`` sets an absolute target instead of (or
    besides) ``target_ratio``: met when the figure is below it.
    """
    scale = {"s": 1.0, "ms": 1e3, "µs": 1e6, "ns": 1e9, "ns/call": 1e9, "µs/call": 1e6}[unit]
    figure = ours.best_s / per_sample * scale
    details: dict[str, Any] = {
        "ours": ours.summary(),
        "ours_median_figure": ours.median_s / per_sample * scale,
    }
    row = Row(
        name=name,
        figure=figure,
        unit=unit,
        ratio_kind="speedup",
        higher_is_better=False,
        note=note,
        details=details,
    )
    met: list[bool] = []
    if baseline is not None:
        bper = per_sample if baseline_per_sample is None else baseline_per_sample
        row.baseline_name = baseline_name
        row.baseline_figure = baseline.best_s / bper * scale
        row.ratio = row.baseline_figure / figure
        details["baseline"] = baseline.summary()
        details["baseline_median_figure"] = baseline.median_s / bper * scale
        details["median_ratio"] = details["baseline_median_figure"] / details["ours_median_figure"]
        row.target_ratio = target_ratio
        ratio_met = _met(row.ratio, target_ratio, strict)
        if ratio_met is not None:
            met.append(ratio_met)
    texts: list[str] = []
    if target_ratio is not None:
        texts.append(_target_text(target_ratio, strict, "speedup"))
    if max_figure is not None:
        texts.append(f"< {max_figure:g} {unit}")
        met.append(figure < max_figure)
    row.met = all(met) if met else None
    row.target = target if target is not None else " and ".join(texts)
    return row


def failed_row(name: str, exc: BaseException) -> Row:
    return Row(name=name, figure=None, unit="", error=f"{type(exc).__name__}: {exc}")


class ResultMismatch(AssertionError):
    """The code under test (or a baseline) returned a wrong result."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`ResultMismatch` unless ``condition``: benches never time wrong answers."""
    if not condition:
        raise ResultMismatch(message)


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


def run_sections(sections: Iterable[tuple[str, Callable[[], list[Row]]]]) -> list[Row]:
    """Run each section; one that raises becomes a failed row and the others still run."""
    rows: list[Row] = []
    for title, section in sections:
        log(f"-- {title}")
        t0 = time.perf_counter()
        try:
            rows.extend(section())
        except Exception as exc:
            traceback.print_exc()
            rows.append(failed_row(title, exc))
        log(f"   {title}: {time.perf_counter() - t0:.1f} s")
    return rows


# -- machine info ----------------------------------------------------------------


def _read_first(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Where the figures come from: enough to tell two runs' machines apart."""
    try:
        import hyphal

        hyphal_version: str | None = hyphal.__version__
    except Exception as exc:  # the report should still say what it could
        hyphal_version = f"unavailable ({type(exc).__name__}: {exc})"
    flags = (_read_first("/proc/cpuinfo", "flags") or "").split()
    simd = [f for f in ("sse4_1", "avx2", "avx512f", "avx512vl", "sha_ni", "neon") if f in flags]
    try:
        usable_cpus: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cpus = None
    mem_kb = _read_first("/proc/meminfo", "MemTotal")
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _read_first("/proc/cpuinfo", "model name") or platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "simd": simd,
        "mem_total": mem_kb,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "hyphal": hyphal_version,
        "blake3_pkg": _version("blake3"),
        "pynacl": _version("pynacl"),
        "loadavg_at_start": load,
    }


# -- output ----------------------------------------------------------------------


def fmt_num(x: float | None) -> str:
    """Three significant digits or so; thousands separated."""
    if x is None:
        return "-"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _met_text(row: Row) -> str:
    if row.error is not None:
        return "ERROR"
    if row.met is None:
        return "info"
    return "yes" if row.met else "NO"


def _ratio_text(row: Row) -> str:
    if row.ratio is None:
        return "-"
    return f"{fmt_num(row.ratio)}x"


HEADERS = ("benchmark", "hyphal", "unit", "baseline", "baseline fig.", "ratio", "target", "met")


def _cells(row: Row) -> tuple[str, ...]:
    if row.error is not None:
        return (row.name, "-", "", "-", "-", "-", row.target, "ERROR")
    return (
        row.name,
        fmt_num(row.figure),
        row.unit,
        row.baseline_name or "-",
        fmt_num(row.baseline_figure),
        _ratio_text(row),
        row.target or "-",
        _met_text(row),
    )


RATIO_LEGEND = (
    "ratio: > 1 means hyphal is better. Throughput rows: ours / baseline. "
    "Time rows (ms, ns/call): baseline time / our time. Figures: best of N, "
    "each contender timed round-robin in the same run."
)


def _machine_line(machine: Mapping[str, Any]) -> str:
    load = machine.get("loadavg_at_start")
    return (
        f"{machine.get('cpu_model')} ({machine.get('usable_cpus')}/{machine.get('cpu_count')} cpus, "
        f"{' '.join(machine.get('simd') or []) or 'no simd info'}), {machine.get('python')}, "
        f"hyphal {machine.get('hyphal')}, blake3 {machine.get('blake3_pkg')}, pynacl {machine.get('pynacl')}"
        + (f", load {load[0]:g} at start" if load else "")
    )


def busy_warning(machine: Mapping[str, Any]) -> str | None:
    """A warning when other work already loads the machine: its figures (threaded ones above all) suffer."""
    load = machine.get("loadavg_at_start")
    cpus = machine.get("usable_cpus") or machine.get("cpu_count") or 1
    if load and load[0] > 0.5:
        return (
            f"warning: 1-minute load average is {load[0]:g} on {cpus} cpus before the run; "
            "other processes compete for the cores, so figures (parallel ones above all) may be low"
        )
    return None


def _print_plain(title: str, rows: Sequence[Row], machine: Mapping[str, Any], out: TextIO) -> None:
    table = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    right = {1, 4, 5}

    def fmt(line: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    print(title, file=out)
    print(_machine_line(machine), file=out)
    print(fmt(HEADERS), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for line in table[1:]:
        print(fmt(line), file=out)
    for row in rows:
        if row.error is not None:
            print(f"ERROR in {row.name}: {row.error}", file=out)
    notes = [r for r in rows if r.note]
    for row in notes:
        print(f"note ({row.name}): {row.note}", file=out)
    print(RATIO_LEGEND, file=out)
    warning = busy_warning(machine)
    if warning:
        print(warning, file=out)


def _print_rich(title: str, rows: Sequence[Row], machine: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=title, caption=_machine_line(machine), show_lines=False)
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="right" if i in (1, 4, 5) else "left", overflow="fold")
    style = {"yes": "green", "NO": "bold red", "ERROR": "bold red", "info": "dim"}
    for row in rows:
        cells = list(_cells(row))
        cells[-1] = f"[{style[cells[-1]]}]{cells[-1]}[/]"
        table.add_row(*cells)
    console.print(table)
    for row in rows:
        if row.error is not None:
            console.print(f"[bold red]ERROR[/] in {row.name}: {row.error}", markup=True, highlight=False)
    for row in rows:
        if row.note:
            console.print(f"note ({row.name}): {row.note}", markup=False, highlight=False)
    console.print(RATIO_LEGEND, style="dim", markup=False, highlight=False)
    warning = busy_warning(machine)
    if warning:
        console.print(warning, style="yellow", markup=False, highlight=False)


def print_report(
    title: str, rows: Sequence[Row], machine: Mapping[str, Any], *, plain: bool | None = None
) -> None:
    """A rich table on a terminal; a plain-text table otherwise (logs, CI, pipes)."""
    if plain is None:
        plain = not sys.stdout.isatty()
    if plain:
        _print_plain(title, rows, machine, sys.stdout)
    else:
        _print_rich(title, rows, machine)


def write_json(
    path: Path,
    *,
    suite: str,
    quick: bool,
    rows: Sequence[Row],
    machine: Mapping[str, Any],
    started: _dt.datetime,
    duration_s: float,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "suite": suite,
        "quick": quick,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 3),
        "machine": dict(machine),
        "ratio_convention": RATIO_LEGEND,
        "rows": [asdict(r) for r in rows],
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def loopback_row(
    name: str,
    bps: float,
    loopback_bps: float,
    *,
    target_ratio: float | None = None,
    note: str = "",
    details: dict[str, Any] | None = None,
) -> Row:
    """A transfer row in MB/s against raw TCP loopback between two processes."""
    ratio = bps / loopback_bps
    return Row(
        name=name,
        figure=bps / 1e6,
        unit="MB/s",
        baseline_name="raw TCP loopback, 2 processes",
        baseline_figure=loopback_bps / 1e6,
        ratio=ratio,
        ratio_kind="throughput",
        target=None if target_ratio is None else f"≥ {target_ratio:g}x loopback",
        target_ratio=target_ratio,
        met=None if target_ratio is None else ratio >= target_ratio,
        note=note,
        details=details or {},
    )


class ServingProcess:
    """A bench peer in its own process: ``python -m module args...`` prints one JSON line
    when it serves (kept as :attr:`info`), and exits when its stdin is closed."""

    def __init__(self, module: str, *args: object) -> None:
        self.module = module
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{module} exited with {self.process.wait()} before serving")
        self.info: dict[str, Any] = json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        if self.process.wait(timeout=60) != 0:
            raise RuntimeError(f"{self.module} exited with {self.process.returncode}")


__all__ = [
    "ResultMismatch",
    "Row",
    "ServingProcess",
    "Timing",
    "call_loop",
    "check",
    "failed_row",
    "fmt_num",
    "latency_row",
    "log",
    "loopback_row",
    "machine_info",
    "measure",
    "measure_interleaved",
    "print_report",
    "run_sections",
    "throughput_row",
    "write_json",
]
