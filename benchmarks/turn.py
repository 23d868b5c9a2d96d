"""Child process: time one dispatcher call on a prepared run (``python -m benchmarks.turn``).

It opens the store and builds the dispatcher exactly as a real turn does (``make_dispatcher``),
with an executor that starts nothing, then times one call and prints one JSON line: seconds,
this process's peak RSS, the RSS before the call, and what was planned and submitted.
Running each measurement in its own process keeps sizes from sharing a heap.

Modes: ``plan`` times ``Dispatcher.plan_and_persist``; ``turn`` times ``Dispatcher.turn``
(ingest, reconcile, plan and persist, submit to the null executor, settle); ``ingest`` times
``Dispatcher.ingest`` (reading every result of the submitted instances into the store), after
timing, apart, how long finding and reading those results takes without writing the store.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.peak import peak_kb
from benchmarks.rundirs import NullExecutor
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.dispatch.intake import successes_in_bundles
from reflow.running.dispatch.result_finder import ResultFinder
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore


def current_rss_mb() -> float:
    """This process's resident set now, in MB (Linux; 0 where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * resource.getpagesize() / (1024 * 1024)


def _read_only(layout: RunLayout) -> float:
    """Seconds to find and read every submitted instance's result, writing nothing."""
    with SqliteStore.open(layout.root) as store:
        start = time.perf_counter()
        finder = ResultFinder(layout, layout.run_id)
        submitted = store.submitted_elements(layout.run_id)
        one_by_one: list[tuple[str, int]] = []
        found = sum(map(len, successes_in_bundles(finder, submitted, one_by_one)))
        rows = store.instances_at(layout.run_id, one_by_one) if one_by_one else []
        found += sum(finder.find(row) is not None for row in rows)
        seconds = time.perf_counter() - start
    submitted_count = sum(map(len, submitted.values()))
    if found != submitted_count:
        raise RuntimeError(f"found {found} results of {submitted_count} submitted instances")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.turn")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--mode", choices=("plan", "turn", "ingest"), required=True)
    args = parser.parse_args(argv)
    layout = RunLayout(args.run_dir, args.run_id)
    store = SqliteStore.open(layout.root)
    executor = NullExecutor()
    try:
        dispatcher = make_dispatcher(layout, store, executor)
        options = store.run(layout.run_id).options
        read_s = _read_only(layout) if args.mode == "ingest" else None
        before_mb = current_rss_mb()
        start, cpu_start = time.perf_counter(), time.process_time()
        if args.mode == "plan":
            dispatcher.plan_and_persist(options)
            state = "planned"
        elif args.mode == "ingest":
            dispatcher.ingest()
            state = "ingested"
        else:
            state = dispatcher.turn()
        seconds = time.perf_counter() - start
        cpu_s = time.process_time() - cpu_start
        peak = peak_kb() / 1024
        counts = store.state_counts(layout.run_id)
    finally:
        store.close()
    report = {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "peak_mb": peak,
        "before_mb": before_mb,
        "state": state,
        "counts": counts,
        "submitted": executor.submitted,
        "read_s": read_s,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
