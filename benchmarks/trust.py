"""Benchmark 7: the cache you can trust: fingerprinting files, and ``why`` on a large run.

- ``fingerprint N files (stat)``: a worker's cost for a task that returns N small files
  (target: 10,000 under 1 s).
- ``fingerprint 1 GiB (content)``: BLAKE2b over the bytes of one large file; the note gives
  the rate in MB/s (no target: it is the disk's and the CPU's speed).
- ``why``: a run of a fan-out of N whose every ``convert`` element reran (its identities
  differ from the earlier run's, which ``why`` must explain element by element); target:
  100,000 under 1 s.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from benchmarks.measure import Row, Sample
from benchmarks.rundirs import NullExecutor, build_planned
from reflow.running.commands.why import explain
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.fingerprints import fingerprint
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore

FILES = 10_000
FILES_TARGET_S = 1.0
WHY_SIZE = 100_000
WHY_TARGET_S = 1.0
_GIB = 1 << 30


def run(repeat: int, work: Path, *, quick: bool) -> list[Row]:
    """The three rows; ``quick`` shrinks the sizes for the smoke run."""
    return [
        _stat_files(repeat, work, 200 if quick else FILES),
        _content(repeat, work, (8 << 20) if quick else _GIB),
        _why(repeat, work, 200 if quick else WHY_SIZE),
    ]


def _stat_files(repeat: int, work: Path, count: int) -> Row:
    folder = work / "fingerprint-files"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{i:05d}.txt" for i in range(count)]
    for path in paths:
        path.write_text("x")
    row = Row(group="trust", name="fingerprint files (stat)", size=count)
    for _ in range(repeat):
        start = time.perf_counter()
        for path in paths:
            fingerprint(path, "stat")
        row.samples.append(Sample(time.perf_counter() - start))
    shutil.rmtree(folder, ignore_errors=True)
    row.target = f"{FILES:,} <= {FILES_TARGET_S:g} s"
    row.met = (row.median or 0.0) <= FILES_TARGET_S if count >= FILES else None
    row.note = "one stat per file, as a worker does when its element ends"
    return row


def _content(repeat: int, work: Path, size: int) -> Row:
    path = work / "fingerprint-big.bin"
    block = os.urandom(1 << 20)
    with path.open("wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
    row = Row(group="trust", name="fingerprint 1 GiB (content)", size=size >> 20)
    for _ in range(repeat):
        start = time.perf_counter()
        fingerprint(path, "content")
        row.samples.append(Sample(time.perf_counter() - start))
    path.unlink()
    rate = (size >> 20) / (row.median or 1.0)
    row.note = f"{rate:,.0f} MB/s (N is MiB; BLAKE2b of the bytes, read in 1 MiB blocks)"
    return row


def _why(repeat: int, work: Path, size: int) -> Row:
    root = work / "why"
    shutil.rmtree(root, ignore_errors=True)
    template = build_planned(root, size)
    layout = RunLayout(root, template.run_id)
    store = SqliteStore.open(root)
    try:
        make_dispatcher(layout, store, NullExecutor()).turn()
    finally:
        store.close()
    later = _rerun_of(layout)
    row = Row(group="trust", name="why: every element reran", size=size)
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        data = explain(root, later)
        row.samples.append(Sample(time.perf_counter() - start, cpu_s=time.process_time() - cpu))
    explained = sum(t["instances"] for t in data["tasks"])
    if explained < size:
        raise RuntimeError(f"why explained {explained} instances, not {size}")
    shutil.rmtree(root, ignore_errors=True)
    row.target = f"{WHY_SIZE:,} <= {WHY_TARGET_S:g} s"
    row.met = (row.median or 0.0) <= WHY_TARGET_S if size >= WHY_SIZE else None
    row.note = "each convert element compared with its earlier instance"
    return row


def _rerun_of(layout: RunLayout) -> str:
    """A later run whose instances have other identities than ``layout``'s, with its manifest."""
    later = layout.run_id[:-1] + ("0" if layout.run_id[-1] != "0" else "1")
    manifest = json.loads(layout.manifest.read_text())
    manifest["run_id"] = later
    target = RunLayout(layout.root, later)
    target.run.mkdir(parents=True)
    target.manifest.write_text(json.dumps(manifest))
    with SqliteStore.open(layout.root) as store:
        run = store.run(layout.run_id)
        store.create_run(
            run_id=later, workflow=run.workflow, executor=run.executor, options=run.options
        )
        for task in store.planned_tasks(layout.run_id):
            rows = store.instances(layout.run_id, task)
            store.persist_plan(
                later,
                task,
                plan_id="later",
                identities=[row.identity + "-later" for row in rows],
                cached=(),
            )
    return later
