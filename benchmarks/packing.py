"""Packing: ingesting 100,000 packed elements in one turn; 10,000 and 100,000 packed on Slurm.

- ``turn: ingest packed elements``: a run of ``packed_flow`` whose ``convert[N]`` was
  submitted by a real turn (packed 500 per array task, to an executor that starts nothing)
  and whose N results are in N / 500 bundles, written with reflow's own bundle writer as
  the workers would; one child process (``python -m benchmarks.turn --mode ingest``) times
  the dispatcher's ingest step. Needs no Slurm.
- ``slurm: 10,000 elements, pack=500``: ``packed_flow.py submit --count 10000 --wait`` on
  the test cluster, from the command to ``succeeded``; the note counts array tasks and
  ``sbatch`` calls. ``slurm: 100,000 elements, pack=500`` is the same with 100,000, once;
  its note adds the longest ingest of one dispatcher turn (from the turns' logs).
  ``slurm alone: same packed shape`` is that shape without reflow: one job,
  an array of 20 tasks (``afterok``) that each run 500 trivial loop steps in one
  ``python``, one more job (``afterok``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from benchmarks import packed_flow, slurm
from benchmarks.measure import (
    PYTHON,
    ROOT,
    BenchmarkError,
    Row,
    Sample,
    paired_ratio,
    run_python,
)
from benchmarks.rundirs import NullExecutor, finish_prepare, new_run
from reflow.planning.encoding import to_json, to_text
from reflow.planning.identity import value_hash
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.rundir.batches import read_batch
from reflow.running.rundir.bundles import Bundle
from reflow.running.rundir.results import result_text
from reflow.running.store.sqlite import SqliteStore

INGEST = "turn: ingest packed elements"
PACKED = "slurm: 10,000 elements, pack=500"
PACKED_ALONE = "slurm alone: same packed shape"
PACKED_LARGE = "slurm: 100,000 elements, pack=500"
INGEST_SIZE = 100_000
QUICK_INGEST_SIZE = 2_000
SLURM_SIZE = 10_000
LARGE_SIZE = 100_000
LARGE_TARGET_S = 180.0
LARGE_MOST_ARRAY_TASKS = 500
INGEST_TARGET_S = 2.0
SLURM_TARGET_S = 30.0
MOST_ARRAY_TASKS = 25
MOST_OVER_ALONE = 1.5
FLOW = str(ROOT / "benchmarks" / "packed_flow.py")


def slurm_rows(reason: str) -> list[Row]:
    """The Slurm rows of packing, skipped for ``reason``."""
    names = (PACKED, PACKED_ALONE, PACKED_LARGE)
    return [Row(group="slurm", name=name, skipped=reason) for name in names]


def run_ingest(size: int, repeat: int, scratch: Path) -> list[Row]:
    """Row: one ingest step over ``size`` elements packed 500 per bundle."""
    template = scratch / f"packed-ingest-{size}"
    shutil.rmtree(template, ignore_errors=True)
    run_id = _build_ingest(template, size)
    row = Row(group="ingest", name=INGEST, size=size)
    for attempt in range(max(1, repeat)):
        copy = scratch / f"packed-ingest-copy-{attempt}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(template, copy)
        args = ("-m", "benchmarks.turn", "--run-dir", str(copy), "--run-id", run_id)
        done = run_python((*args, "--mode", "ingest"), timeout_s=600)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if report["counts"].get("convert", {}).get("done") != size:
            raise BenchmarkError(f"ingest left convert at {report['counts'].get('convert')}")
        row.samples.append(Sample(report["seconds"], report["peak_mb"], report["cpu_s"], report))
        shutil.rmtree(copy, ignore_errors=True)
    bundles = -(-size // packed_flow.PACK)
    read_s = sorted(s.extra["read_s"] for s in row.samples)[len(row.samples) // 2]
    row.note = (
        f"{bundles} bundles of {packed_flow.PACK} (+1 batch file) read;"
        f" finding and reading them alone: {read_s:.2f} s;"
        " the rest reads the instances from the store and writes them"
    )
    if size == INGEST_SIZE:
        row.target = f"<= {INGEST_TARGET_S:g} s"
        row.met = (row.median or 0.0) <= INGEST_TARGET_S
    shutil.rmtree(template, ignore_errors=True)
    return [row]


def _build_ingest(root: Path, size: int) -> str:
    """A run whose ``convert[size]`` was submitted packed and whose bundles are all written."""
    layout = new_run(root, size, packed_flow)
    finish_prepare(layout, size, packed_flow)
    with SqliteStore.open(root) as store:
        make_dispatcher(layout, store, NullExecutor()).turn()
        rows = store.instances(layout.run_id, "convert")
    batch = str(rows[0].batch)
    record = read_batch(layout, batch)
    if record.pack != packed_flow.PACK or len(record.elements) != size:
        raise BenchmarkError(f"convert was not submitted as one packed batch: {record.pack}")
    names = packed_flow.prepare(size)
    now, host, pid = time.time(), socket.gethostname(), os.getpid()
    for start in range(0, size, record.pack):
        bundle = Bundle(layout.bundle("convert", batch, start // record.pack), sync_every_s=60)
        for element in record.elements[start : start + record.pack]:
            output = to_json(packed_flow.convert(names[element]))
            text = result_text(
                run_id=layout.run_id,
                task="convert",
                element=element,
                batch=batch,
                output=output,
                output_hash=value_hash(to_text(output)),
                error=None,
                started=now,
                ended=now,
                host=host,
                pid=pid,
                peak_rss_mb=20.0,
            )
            bundle.append(text)
        bundle.close()
    return layout.run_id


def run_slurm(repeat: int, scratch: Path) -> list[Row]:
    """Rows: the packed run on the test cluster, and its shape without reflow."""
    wrappers = scratch / "slurm-wrappers"
    log = scratch / "slurm-packed-calls.log"
    slurm.write_wrappers(wrappers, log)
    packed = Row(group="slurm", name=PACKED, size=SLURM_SIZE)
    alone = Row(group="slurm", name=PACKED_ALONE, size=SLURM_SIZE)
    for attempt in range(max(1, repeat)):
        packed.samples.append(_packed_run(SLURM_SIZE, scratch / f"slurm-packed-{attempt}", log))
        alone.samples.append(Sample(_timed_shape(scratch)))
    tasks = max(s.extra["array_tasks"] for s in packed.samples)
    arrays = max(s.extra.get("sbatch_arrays", 0) for s in packed.samples)
    ratio = paired_ratio(packed, alone)
    started = max(s.extra.get("turn_jobs_started", 0) for s in packed.samples)
    packed.note = (
        f"{tasks} array tasks of convert; sbatch: {arrays} arrays; turn jobs started: {started};"
        f" {ratio:.2f} x Slurm alone (the median of the pairs)"
    )
    packed.target = (
        f"< {SLURM_TARGET_S:g} s, <= {MOST_ARRAY_TASKS} array tasks, <= {MOST_OVER_ALONE:g} x alone"
    )
    packed.met = (
        (packed.median or 0.0) < SLURM_TARGET_S
        and tasks <= MOST_ARRAY_TASKS
        and ratio <= MOST_OVER_ALONE
    )
    alone.note = "python -c pass -> array of 20 x (500 loop steps in python) -> one more"
    large = Row(group="slurm", name=PACKED_LARGE, size=LARGE_SIZE)
    large.samples.append(_packed_run(LARGE_SIZE, scratch / "slurm-packed-large", log))
    extra = large.samples[0].extra
    large.note = (
        f"{extra['array_tasks']} array tasks of convert; sbatch: {extra.get('sbatch_arrays', 0)}"
        f" arrays; turn jobs started: {extra.get('turn_jobs_started', 0)};"
        f" longest ingest of a turn {extra['ingest_s']:.1f} s"
    )
    large.target = f"< {LARGE_TARGET_S:g} s, < {LARGE_MOST_ARRAY_TASKS} array tasks"
    large.met = (large.median or 0.0) < LARGE_TARGET_S and (
        extra["array_tasks"] < LARGE_MOST_ARRAY_TASKS
    )
    return [packed, alone, large]


def _packed_run(size: int, root: Path, log: Path) -> Sample:
    """``packed_flow.py submit --count SIZE --wait`` on the test cluster, timed and counted."""
    wrappers = log.parent / "slurm-wrappers"
    log.write_text("")
    shutil.rmtree(root, ignore_errors=True)
    env = {"REFLOW_MODE": "slurm", "PATH": f"{wrappers}{os.pathsep}{os.environ['PATH']}"}
    args = (FLOW, "submit", "--run-dir", str(root), "--count", str(size), "--wait")
    done = run_python(args, env=env, timeout_s=900)
    calls: dict[str, Any] = slurm.count_calls(log) | slurm.turn_places(root)
    calls["array_tasks"] = _array_tasks(root)
    calls["ingest_s"] = _longest_ingest(root)
    shutil.rmtree(root, ignore_errors=True)
    return Sample(done.seconds, done.peak_mb, extra=calls)


def _array_tasks(root: Path) -> int:
    """How many array tasks ran ``convert``: its distinct job ids in the store."""
    with SqliteStore.open(root) as store:
        run_id = store.latest_run_id()
        return len({row.job_id for row in store.instances(run_id, "convert")})


def _longest_ingest(root: Path) -> float:
    """The longest ingest step of the run's Slurm turns, from the line each logs."""
    found = [0.0]
    for log in root.glob("runs/*/dispatcher-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("reflow: turn ") and ": ingest " in line:
                found.append(float(line.split(": ingest ", 1)[1].split(" s", 1)[0]))
    return max(found)


def _timed_shape(scratch: Path) -> float:
    tasks = -(-SLURM_SIZE // packed_flow.PACK)
    step = shlex.join([PYTHON, "-c", f"for _ in range({packed_flow.PACK}): pass"])
    first = shlex.join([PYTHON, "-c", "pass"])
    common = ["--parsable", "--output=/dev/null", "--job-name=bench.alone", f"--chdir={scratch}"]
    start = time.perf_counter()
    job = slurm.sbatch([*common, "--wrap", first])
    array = slurm.sbatch(
        [*common, f"--array=0-{tasks - 1}", f"--dependency=afterok:{job}", "--wrap", step]
    )
    last = slurm.sbatch([*common, f"--dependency=afterok:{array}", "--wrap", first])
    slurm.wait_completed(last)
    return time.perf_counter() - start
