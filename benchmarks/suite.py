"""The suite: options, the order of the benchmarks, the table and the JSON report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from benchmarks import dispatch, local, slurm, startup
from benchmarks.measure import BenchmarkError, Row

GROUPS = ("startup", "plan", "cached", "status", "local", "slurm")
DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (200,)
QUICK_LOCAL_SIZE = 40
HEADER = ("benchmark", "N", "median", "min", "max", "peak MB", "target", "met", "note")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="reflow's benchmark suite: prints a table of median/min/max seconds and "
        "peak memory, and compares them with the targets of docs/performance.md.",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        help="fan-out sizes for the turn and status benchmarks "
        "(default 1000,10000,100000; add 1000000 for the largest)",
    )
    parser.add_argument("--repeat", type=int, help="repetitions of each benchmark (default 5)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the smoke version: size 200, one repetition, 40 local elements, no Slurm",
    )
    parser.add_argument(
        "--only",
        type=_groups,
        metavar="NAMES",
        help=f"comma-separated groups to run, of: {', '.join(GROUPS)}",
    )
    parser.add_argument(
        "--local-size",
        type=int,
        help="elements of the local executor run (default 1000)",
    )
    parser.add_argument(
        "--work-dir", type=Path, help="where run directories are built (default: a temp dir)"
    )
    return parser.parse_args(argv)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from err
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _groups(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown group {unknown}; choose from {GROUPS}")
    return names


def main(argv: Sequence[str] | None = None, out: IO[str] = sys.stdout) -> int:
    args = parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeat = args.repeat or (1 if args.quick else 5)
    local_size = args.local_size or (QUICK_LOCAL_SIZE if args.quick else 1000)
    groups = set(args.only or GROUPS)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="reflow-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows: list[Row] = []

    def attempt(label: str, make: Callable[[], list[Row]], fallback: list[Row]) -> None:
        out.write(f"# {label} ...\n")
        out.flush()
        try:
            rows.extend(make())
        except (BenchmarkError, OSError, ValueError, KeyError, RuntimeError) as err:
            traceback.print_exc(file=sys.stderr)
            for row in fallback:
                row.error = f"{type(err).__name__}: {err}"
            rows.extend(fallback)

    try:
        _run_all(attempt, groups, sizes, repeat, local_size, work, args.quick, rows)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    out.write(render(rows))
    out.write(f"# {len(rows)} rows in {time.monotonic() - started:.0f} s\n")
    if args.json is not None:
        args.json.write_text(json.dumps(report(rows, sizes, repeat), indent=2) + "\n")
    return 1 if any(row.error for row in rows) else 0


def _run_all(
    attempt: Callable[[str, Callable[[], list[Row]], list[Row]], None],
    groups: set[str],
    sizes: Sequence[int],
    repeat: int,
    local_size: int,
    work: Path,
    quick: bool,
    rows: list[Row],
) -> None:
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    if "startup" in groups:
        attempt("start-up", lambda: startup.run(repeat), [Row(group="startup", name="start-up")])
    bare = next((r.median for r in rows if r.name == startup.BARE and r.samples), None)
    for size in sizes if groups & {"plan", "cached", "status"} else ():
        built: list[dispatch.Templates] = []
        attempt(
            f"build run directories of {size}",
            lambda size=size: _build(built, work, size),  # type: ignore[misc]
            [Row(group="plan", name="build run directories", size=size)],
        )
        if not built:
            continue
        if groups & {"plan", "cached"}:
            attempt(
                f"dispatcher turns, {size}",
                lambda: _keep(dispatch.run_turns(built[0], repeat, scratch), groups),
                [Row(group="plan", name="turn", size=size)],
            )
        if "status" in groups:
            attempt(
                f"status, {size}",
                lambda: dispatch.run_status(built[0], repeat, bare),
                [Row(group="status", name="status", size=size)],
            )
        shutil.rmtree(built[0].planned.root, ignore_errors=True)
        shutil.rmtree(built[0].finished.root, ignore_errors=True)
    if "local" in groups:
        attempt(
            "local executor",
            lambda: [
                local.run_fanout(local_size, repeat, scratch),
                local.run_demo(repeat, scratch),
            ],
            [Row(group="local", name="local executor", size=local_size)],
        )
    if "slurm" in groups:
        problem = "--quick" if quick else slurm.cluster_problem()
        if problem is not None:
            rows.extend(slurm.skipped_rows(problem))
        else:
            attempt(
                "slurm",
                lambda: slurm.run(min(repeat, 2), scratch),
                slurm.skipped_rows("failed"),
            )


def _build(built: list[dispatch.Templates], work: Path, size: int) -> list[Row]:
    started = time.perf_counter()
    built.append(dispatch.build(work, size))
    sys.stderr.write(f"built run directories of {size} in {time.perf_counter() - started:.1f}s\n")
    return []


def _keep(rows: list[Row], groups: set[str]) -> list[Row]:
    return [row for row in rows if row.group in groups]


def render(rows: Sequence[Row]) -> str:
    """The table: one line per row, columns aligned."""
    lines = [list(HEADER)]
    for row in rows:
        size = "" if row.size is None else f"{row.size:,}"
        if row.skipped or row.error or not row.samples:
            reason = f"skipped: {row.skipped}" if row.skipped else f"ERROR: {row.error}"
            lines.append([row.name, size, "-", "-", "-", "-", row.target, "-", reason])
            continue
        times = row.times
        peak = "" if row.peak_mb is None else f"{row.peak_mb:.0f}"
        met = "" if row.met is None else ("yes" if row.met else "MISS")
        cells = [_seconds(row.median), _seconds(min(times)), _seconds(max(times))]
        lines.append([row.name, size, *cells, peak, row.target, met, row.note])
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
    right = {1, 2, 3, 4, 5}
    text = []
    for line in lines:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line[:-1])
        ]
        text.append("  ".join([*cells, line[-1]]).rstrip())
    return "\n".join(text) + "\n"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def report(rows: Sequence[Row], sizes: Sequence[int], repeat: int) -> dict[str, Any]:
    """The JSON document: the machine, the options, and every row with its samples."""
    return {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "sizes": list(sizes),
        "repeat": repeat,
        "rows": [row.to_json() for row in rows],
    }
