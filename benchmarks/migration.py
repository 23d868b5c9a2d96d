"""Benchmark 6: open a run directory of schema version 1, which migrates its store.

The template is a store of schema version 1 (``migrations.SCHEMA_V1``) holding one finished
run of a fan-out of N: ``prepare`` and ``finalize`` plus N ``convert`` instances, each with
its cached output, and one ``batches`` row per task. It is built with raw SQL in a few
statements (a recursive CTE makes the N rows). Every repetition copies it and times
``SqliteStore.open`` in a child process (``python -m benchmarks.migration``): the backup to
``reflow.sqlite.bak-v1`` and every step to the current version, in one transaction.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.measure import BenchmarkError, Row, Sample, run_python
from benchmarks.peak import peak_kb
from reflow.running.rundir.layout import STORE_NAME
from reflow.running.store.migrations import SCHEMA_V1, backup_path
from reflow.running.store.schema import SCHEMA_VERSION
from reflow.running.store.sqlite import SqliteStore

SIZE = 100_000
NAME = f"migrate a {SIZE:,}-instance v1 store"
TARGET_S = 5.0
RUN_ID = "bench-20260101-000000-000000"

_ROWS = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :size)
INSERT INTO {table} SELECT {columns} FROM n
"""
_INSTANCE = (
    "'{run}', 'convert', i, printf('%064x', i), 'done', 1, 'b-convert', 'job.' || i,"
    " 1.0, 2.0, 3.0, NULL, NULL, 'node', 30.5"
)
_OUTPUT = "printf('%064x', i), 'convert', json_quote('f' || i || '.zarr'), printf('h%063x', i),"
_OUTPUT += " 3.0, '{run}'"


def build_v1(root: Path, size: int) -> Path:
    """A run directory at ``root`` whose store has schema version 1 and ``size`` elements."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    path = root / STORE_NAME
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA_V1)
        db.execute("INSERT INTO meta VALUES ('schema', '1')")
        db.execute(
            "INSERT INTO runs VALUES (?, 'fanout', 1.0, 'succeeded', 'local', '{}', '{}', 4.0, '')",
            (RUN_ID,),
        )
        sizes = {"prepare": 1, "convert": size, "finalize": 1}
        for task, count in sizes.items():
            db.execute("INSERT INTO tasks VALUES (?, ?, '{}', ?, '')", (RUN_ID, task, count))
            db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, 'done', '[]', 1.0, NULL)",
                (RUN_ID, f"b-{task}", task),
            )
        for table, columns in (("instances", _INSTANCE), ("outputs", _OUTPUT)):
            sql = _ROWS.format(table=table, columns=columns.format(run=RUN_ID))
            db.execute(sql, {"size": size})
        for task in ("prepare", "finalize"):
            identity = f"{task}-identity"
            db.execute(
                "INSERT INTO instances (run_id, task, element, identity, state, attempts)"
                " VALUES (?, ?, 0, ?, 'done', 1)",
                (RUN_ID, task, identity),
            )
            db.execute(
                "INSERT INTO outputs VALUES (?, ?, '[]', 'h', 1.0, ?)", (identity, task, RUN_ID)
            )
        db.commit()
    finally:
        db.close()
    return root


def run(repeat: int, work: Path) -> list[Row]:
    """The row: each repetition opens a fresh copy of the version-1 template."""
    template = build_v1(work / "migrate-v1", SIZE)
    row = Row(group="migrate", name=NAME, size=SIZE)
    copy = work / "migrate-v1-copy"
    try:
        for _ in range(max(1, repeat)):
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(template, copy)
            done = run_python(["-m", "benchmarks.migration", "--run-dir", str(copy)])
            report = json.loads(done.stdout)
            _check(report)
            row.samples.append(Sample(report["seconds"], report["peak_mb"], report["cpu_s"]))
    finally:
        shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(template, ignore_errors=True)
    megabytes = report["store_mb"]
    row.note = f"{megabytes:.0f} MB store, copied to .bak-v1 and migrated to version {report['to']}"
    row.target = f"<= {TARGET_S:g} s"
    row.met = (row.median or 0.0) <= TARGET_S
    return [row]


def _check(report: dict[str, object]) -> None:
    if report["to"] != SCHEMA_VERSION or report["backup"] != 1 or report["instances"] != SIZE + 2:
        raise BenchmarkError(f"the v1 store was not migrated as expected: {report}")


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0])
    finally:
        db.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Child process: time ``SqliteStore.open`` on a version-1 run directory; print JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.migration")
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    path = args.run_dir / STORE_NAME
    store_mb = path.stat().st_size / (1024 * 1024)
    start, cpu_start = time.perf_counter(), time.process_time()
    store = SqliteStore.open(args.run_dir)
    seconds = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start
    try:
        instances = sum(sum(c.values()) for c in store.state_counts(RUN_ID).values())
    finally:
        store.close()
    report = {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "peak_mb": peak_kb() / 1024,
        "store_mb": store_mb,
        "to": _version(path),
        "backup": _version(backup_path(path, 1)),
        "instances": instances,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
