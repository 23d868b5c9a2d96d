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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks import dispatch, local, migration, packing, slurm, startup, trust
from benchmarks.measure import BenchmarkError, Row

GROUPS = (
    "startup",
    "plan",
    "cached",
    "status",
    "migrate",
    "trust",
    "ingest",
    "local",
    "slurm",
)
DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (200,)
QUICK_LOCAL_SIZE = 40
HEADER = ("benchmark", "N", "median", "min", "max", "CPU", "peak MB", "target", "met", "note")


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
        "--work-dir",
        type=Path,
        help="build the run directories here and keep them (default: a temporary folder)",
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
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="reflow-bench-"))
    suite = _Suite(
        sizes=args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES),
        repeat=args.repeat or (1 if args.quick else 5),
        local_size=args.local_size or (QUICK_LOCAL_SIZE if args.quick else 1000),
        groups=set(args.only or GROUPS),
        quick=args.quick,
        work=work,
        keep=args.work_dir is not None,
        out=out,
    )
    started = time.monotonic()
    try:
        suite.run()
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    out.write(render(suite.rows))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out.write(
        f"# {len(suite.rows)} rows in {time.monotonic() - started:.0f} s;"
        f" {os.cpu_count()} CPUs, load average {load:.1f} at the end\n"
    )
    if args.json is not None:
        document = report(suite.rows, suite.sizes, suite.repeat)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(row.error for row in suite.rows) else 0


@dataclass(kw_only=True)
class _Suite:
    """The selected benchmarks, run in order; a failing one becomes rows with its error."""

    sizes: Sequence[int]
    repeat: int
    local_size: int
    groups: set[str]
    quick: bool
    work: Path
    keep: bool
    out: IO[str]
    rows: list[Row] = field(default_factory=list)

    @property
    def scratch(self) -> Path:
        return self.work / "scratch"

    def run(self) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        if "startup" in self.groups:
            self._attempt("start-up", lambda: startup.run(self.repeat), "startup", "start-up")
        if self.groups & {"plan", "cached", "status"}:
            for size in self.sizes:
                self._run_size(size)
        if "migrate" in self.groups:
            self._attempt(
                migration.NAME,
                lambda: migration.run(self.repeat, self.scratch),
                "migrate",
                migration.NAME,
                migration.SIZE,
            )
        if "trust" in self.groups:
            self._attempt(
                "trust", lambda: trust.run(self.repeat, self.scratch, quick=self.quick), "trust"
            )
        if "ingest" in self.groups:
            size = packing.QUICK_INGEST_SIZE if self.quick else packing.INGEST_SIZE
            self._attempt(
                packing.INGEST,
                lambda: packing.run_ingest(size, self.repeat, self.scratch),
                "ingest",
                packing.INGEST,
                size,
            )
        if "local" in self.groups:
            self._attempt("local executor", self._local, "local", "local executor")
        if "slurm" in self.groups:
            problem = "--quick" if self.quick else slurm.cluster_problem()
            if problem is not None:
                self.rows.extend(slurm.skipped_rows(problem))
                self.rows.extend(packing.slurm_rows(problem))
            else:
                # Every repetition is a pair (reflow, then Slurm alone): the ratios are the
                # median of the pairs, and need them all on a machine whose speed drifts.
                self._attempt("slurm", lambda: slurm.run(self.repeat, self.scratch))
                self._attempt(
                    "slurm, packed",
                    lambda: packing.run_slurm(self.repeat, self.scratch),
                    "slurm-packed",
                )

    def _run_size(self, size: int) -> None:
        built: list[dispatch.Templates] = []

        def build() -> list[Row]:
            started = time.perf_counter()
            built.append(dispatch.build(self.work, size))
            took = time.perf_counter() - started
            sys.stderr.write(f"built the run directories of {size} in {took:.1f} s\n")
            return []

        self._attempt(f"run directories of {size:,}", build, "plan", "setup", size)
        if not built:
            return
        templates = built[0]
        if self.groups & {"plan", "cached"}:
            self._attempt(
                f"dispatcher turns, {size:,}",
                lambda: [
                    row
                    for row in dispatch.run_turns(templates, self.repeat, self.scratch)
                    if row.group in self.groups
                ],
                "plan",
                "turn",
                size,
            )
        if "status" in self.groups:
            self._attempt(
                f"status, {size:,}",
                lambda: dispatch.run_status(templates, self.repeat, self._bare_s()),
                "status",
                "status",
                size,
            )
        if not self.keep:
            shutil.rmtree(templates.planned.root, ignore_errors=True)
            shutil.rmtree(templates.finished.root, ignore_errors=True)

    def _local(self) -> list[Row]:
        return [
            local.run_fanout(self.local_size, self.repeat, self.scratch),
            local.run_demo(self.repeat, self.scratch),
        ]

    def _bare_s(self) -> float | None:
        return next((r.median for r in self.rows if r.name == startup.BARE and r.samples), None)

    def _attempt(
        self,
        label: str,
        make: Callable[[], list[Row]],
        group: str = "slurm",
        name: str = "",
        size: int | None = None,
    ) -> None:
        self.out.write(f"# {label} ...\n")
        self.out.flush()
        try:
            self.rows.extend(make())
        except (BenchmarkError, OSError, ValueError, KeyError, RuntimeError) as err:
            traceback.print_exc(file=sys.stderr)
            failed = [Row(group=group, name=name or label, size=size)]
            if group == "slurm":
                failed = slurm.skipped_rows("")
            elif group == "slurm-packed":
                failed = packing.slurm_rows("")
            for row in failed:
                row.skipped = ""
                row.error = f"{type(err).__name__}: {err}"
            self.rows.extend(failed)


def render(rows: Sequence[Row]) -> str:
    """The table: one line per row, columns aligned."""
    lines = [list(HEADER)]
    for row in rows:
        size = "" if row.size is None else f"{row.size:,}"
        if row.skipped or row.error or not row.samples:
            reason = f"skipped: {row.skipped}" if row.skipped else f"ERROR: {row.error}"
            lines.append([row.name, size, "-", "-", "-", "-", "-", row.target, "-", reason])
            continue
        times = row.times
        peak = "" if row.peak_mb is None else f"{row.peak_mb:.0f}"
        met = "" if row.met is None else ("yes" if row.met else "MISS")
        cells = [_seconds(row.median), _seconds(min(times)), _seconds(max(times))]
        cells.append(_seconds(row.cpu_s))
        lines.append([row.name, size, *cells, peak, row.target, met, row.note])
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
    right = {1, 2, 3, 4, 5, 6}
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
