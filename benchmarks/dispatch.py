"""Benchmarks 2 and 3: a dispatcher turn on a fan-out of N, cached or not, and ``status``.

Templates are built once per size (``rundirs``); every repetition of a turn works on a fresh
copy, in a child process that times only the dispatcher call (``benchmarks.turn``).
``status`` runs as a user runs it, ``python flow.py status``, in a fresh process, on a
finished run of N + 2 instances.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.measure import ROOT, BenchmarkError, Row, Sample, run_python
from benchmarks.rundirs import Template, build_cached, build_planned

FLOW = str(ROOT / "benchmarks" / "fanout_flow.py")
PLAN_TARGETS_S = {100_000: 1.0, 1_000_000: 10.0}
CACHED_TARGETS_S = {100_000: 0.5}
STATUS_TARGETS = {100_000: (0.2, 60.0)}


@dataclass(frozen=True, slots=True)
class Templates:
    """The template run directories of one size."""

    size: int
    planned: Template
    finished: Template
    resubmit: Template


def build(work: Path, size: int) -> Templates:
    """Build the templates of ``size`` under ``work`` (replacing earlier ones)."""
    for name in (f"planned-{size}", f"cached-{size}"):
        shutil.rmtree(work / name, ignore_errors=True)
    planned = build_planned(work / f"planned-{size}", size)
    finished, resubmit = build_cached(work / f"cached-{size}", size)
    return Templates(size, planned, finished, resubmit)


def run_turns(templates: Templates, repeat: int, scratch: Path) -> list[Row]:
    """Rows: plan+persist, a whole turn that also submits, and a fully cached turn."""
    size = templates.size
    plan = Row(group="plan", name="turn: plan+persist fan-out", size=size)
    whole = Row(group="plan", name="turn: plan+persist+submit", size=size)
    cached = Row(group="cached", name="turn: cached resubmit", size=size)
    cases = (
        (plan, templates.planned, "plan"),
        (whole, templates.planned, "turn"),
        (cached, templates.resubmit, "turn"),
    )
    for _ in range(max(1, repeat)):
        for row, template, mode in cases:
            report = _timed_turn(template, mode, scratch)
            sample = Sample(report["seconds"], report["peak_mb"], report["cpu_s"], report)
            row.samples.append(sample)
    _check_planned(plan, size)
    _check_submitted(whole, size)
    _check_cached(cached, size)
    for row in (plan, whole, cached):
        extras = [s.extra for s in row.samples]
        grown = max(e["peak_mb"] - e["before_mb"] for e in extras)
        median = row.median or 0.0
        row.note = f"{median / size * 1e6:.1f} us/element; +{grown:.0f} MB during the call"
    if size in PLAN_TARGETS_S:
        _target(plan, PLAN_TARGETS_S[size])
    if size in CACHED_TARGETS_S:
        _target(cached, CACHED_TARGETS_S[size])
    return [plan, whole, cached]


def run_status(templates: Templates, repeat: int, bare_s: float | None) -> list[Row]:
    """Rows: ``status`` as a table and as ``--json`` on the finished run of this size."""
    size = templates.size
    run = templates.finished
    rows = []
    for name, extra in (("status (table)", ()), ("status --json", ("--json",))):
        args = (FLOW, "status", run.run_id, "--run-dir", str(run.root), *extra)
        row = Row(group="status", name=name, size=size)
        run_python(args)
        for _ in range(max(1, repeat)):
            done = run_python(args)
            _check_status(done.stdout, size, json_output=bool(extra))
            row.samples.append(Sample(done.seconds, done.peak_mb, done.cpu_s))
        if bare_s is not None and row.median is not None:
            row.note = f"+{row.median - bare_s:.3f} s over bare python"
        if size in STATUS_TARGETS:
            seconds, megabytes = STATUS_TARGETS[size]
            row.target = f"<= {seconds} s, <= {megabytes:.0f} MB"
            row.met = (row.median or 0.0) <= seconds and (row.peak_mb or 0.0) <= megabytes
        rows.append(row)
    return rows


def _timed_turn(template: Template, mode: str, scratch: Path) -> dict[str, Any]:
    copy = scratch / f"{template.root.name}-{mode}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(template.root, copy)
    try:
        args = ("-m", "benchmarks.turn", "--run-dir", str(copy), "--run-id", template.run_id)
        done = run_python([*args, "--mode", mode])
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _target(row: Row, seconds: float) -> None:
    row.target = f"<= {seconds:g} s"
    row.met = row.median is not None and row.median <= seconds


def _check_planned(row: Row, size: int) -> None:
    for sample in row.samples:
        counts = sample.extra["counts"]
        if counts.get("convert") != {"ready": size}:
            raise BenchmarkError(f"plan+persist left convert as {counts.get('convert')}")


def _check_submitted(row: Row, size: int) -> None:
    for sample in row.samples:
        if sample.extra["submitted"] != [["convert", size]]:
            raise BenchmarkError(f"the turn submitted {sample.extra['submitted']}")


def _check_cached(row: Row, size: int) -> None:
    expected = {"prepare": {"cached": 1}, "convert": {"cached": size}, "finalize": {"cached": 1}}
    for sample in row.samples:
        extra = sample.extra
        if extra["submitted"] or extra["counts"] != expected or extra["state"] != "succeeded":
            raise BenchmarkError(
                f"the cached resubmit was not fully cached: {extra['state']}, {extra['counts']},"
                f" submitted {extra['submitted']}"
            )


def _check_status(stdout: str, size: int, *, json_output: bool) -> None:
    if json_output:
        data = json.loads(stdout)
        convert = next(t for t in data["tasks"] if t["task"] == "convert")
        ok = data["state"] == "succeeded" and convert["counts"].get("done") == size
    else:
        ok = "SUCCEEDED" in stdout and f" {size} " in stdout
    if not ok:
        raise BenchmarkError(f"status did not show the finished run of {size}: {stdout[:200]!r}")
