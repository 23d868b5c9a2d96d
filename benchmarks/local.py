"""Benchmark 4: whole runs on the local executor, as a user starts them (``submit --wait``).

The fan-out run reports elements per second two ways: end to end (N over the wall time of
``submit --wait``, start-up, ``prepare`` and ``finalize`` included) and for the executor
alone (N over the time from the first ``convert`` submission to the last one's end, from the
store's timestamps); the target applies to the executor's rate. Peak memory is that of the
submitting process (the dispatcher and the workers are detached from it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.dispatch import FLOW
from benchmarks.measure import ROOT, BenchmarkError, Row, Sample, run_python
from reflow.running.store.sqlite import SqliteStore

LOCAL_ENV = {"REFLOW_MODE": "local"}
TARGET_PER_S = 200.0
TARGET_SIZE = 1000
"""The target holds from this many elements on (smaller runs are all start-up)."""


def run_fanout(size: int, repeat: int, scratch: Path) -> Row:
    """``submit --count N --wait`` of the benchmark flow; a fresh run directory each time."""
    row = Row(group="local", name="local executor: fan-out run", size=size)
    for attempt in range(max(1, repeat)):
        root = scratch / f"local-{size}-{attempt}"
        shutil.rmtree(root, ignore_errors=True)
        args = (FLOW, "submit", "--run-dir", str(root), "--count", str(size), "--wait")
        done = run_python(args, env=LOCAL_ENV)
        span = _convert_span_s(root, size)
        extra = {"convert_span_s": span, "executor_per_s": size / span}
        row.samples.append(Sample(done.seconds, done.peak_mb, extra=extra))
        shutil.rmtree(root, ignore_errors=True)
    rates = sorted(s.extra["executor_per_s"] for s in row.samples)
    executor_rate = rates[len(rates) // 2]
    end_to_end = size / (row.median or 1.0)
    row.note = f"executor {executor_rate:.0f} elements/s; end to end {end_to_end:.0f} elements/s"
    if size >= TARGET_SIZE:
        row.target = f">= {TARGET_PER_S:.0f} elements/s"
        row.met = executor_rate >= TARGET_PER_S
    return row


def run_demo(repeat: int, scratch: Path) -> Row:
    """The spec demo (``examples/demo_flow.py``) end to end on the local executor."""
    row = Row(group="local", name="local executor: spec demo", size=3)
    demo = str(ROOT / "examples" / "demo_flow.py")
    for attempt in range(max(1, repeat)):
        root = scratch / f"demo-{attempt}"
        shutil.rmtree(root, ignore_errors=True)
        args = (
            demo, "submit", "--run-dir", str(root), "--start", "2025-01-01", "--end",
            "2025-01-31", "--bucket", "bench", "--wait",
        )  # fmt: skip
        done = run_python(args, env=LOCAL_ENV)
        row.samples.append(Sample(done.seconds, done.peak_mb))
        shutil.rmtree(root, ignore_errors=True)
    row.note = "prepare -> convert[3] -> finalize, submit to succeeded"
    return row


def _convert_span_s(root: Path, size: int) -> float:
    """Seconds from the first ``convert`` submission to the end of the last element."""
    with SqliteStore.open(root) as store:
        (run,) = store.runs()
        rows = store.instances(run.run_id, "convert")
    if len(rows) != size or any(r.state != "done" for r in rows):
        raise BenchmarkError(f"the local run did not finish all {size} convert elements")
    first = min(r.submitted for r in rows if r.submitted is not None)
    last = max(r.ended for r in rows if r.ended is not None)
    return max(last - first, 1e-9)
