"""Chaos machinery: start a run's dispatcher, SIGKILL it at a random moment, compare stores.

A *kill point* is a SIGKILL that reached a live dispatcher of a run that had not ended. The
moments come from a seeded ``random.Random``; the seed is printed and ``REFLOW_CHAOS_SEED``
replays it (the schedule of kill delays, not the machine's timing).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflow.running.dispatch.control import retry
from reflow.running.dispatch.dispatcher import TERMINAL_RUN_STATES
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultRecord, read_result
from reflow.running.store.sqlite import SqliteStore
from tests.flows.chaos_steps import wf
from tests.reliability.processes import (
    DEADLINE_S,
    dispatcher_pid,
    kill_detached,
    run_row,
    wait_for_workers,
)

PROJECT = Path(__file__).resolve().parents[2]
MODES = ("drive", "turns", "retry")


def chaos_seed() -> int:
    """The seed of this session: ``REFLOW_CHAOS_SEED`` when set, else a fresh one."""
    given = os.environ.get("REFLOW_CHAOS_SEED", "").strip()
    return int(given) if given else random.SystemRandom().randrange(2**32)


@dataclass
class Tally:
    """What a chaos session did, for the report and the assertions."""

    kill_points: int = 0
    runs: int = 0
    ran_twice: int = 0
    by_mode: Counter[str] = field(default_factory=Counter)


def start_driver(root: Path, run_id: str, mode: str, log: Path) -> subprocess.Popen[str]:
    """Start ``chaos_driver`` and return once it has imported everything."""
    with log.open("a") as errors:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.chaos_driver",
                "--run-dir",
                str(root),
                "--run-id",
                run_id,
                "--mode",
                mode,
            ],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n", log.read_text()
    return proc


def kill_child(proc: subprocess.Popen[str]) -> bool:
    """SIGKILL our driver child; True when it was still running."""
    alive = proc.poll() is None
    proc.kill()
    proc.wait(timeout=DEADLINE_S)
    if proc.stdout is not None:
        proc.stdout.close()
    return alive and proc.returncode == -signal.SIGKILL


def chaos_run(root: Path, mode: str, rng: random.Random, kills: int, delay_s: float) -> int:
    """Submit a run, kill its dispatcher up to ``kills`` times, then let it finish.

    Returns how many kills were kill points. The first kill hits the detached dispatcher
    that ``submit`` started; later ones a ``chaos_driver`` (``drive``, ``turns``) or the
    detached dispatcher that ``retry`` starts (``retry``).
    """
    run = wf.submit(run_dir=root, count=300, seconds=0.01, fail_every=25)
    landed = 0
    log = root / "driver.log"
    for attempt in range(kills):
        if attempt == 0 or mode == "retry":
            since = time.time()
            if attempt:
                retry(root, run.run_id)
            pid = dispatcher_pid(root, run.run_id, since=since if attempt else 0.0)
            time.sleep(rng.uniform(0, delay_s))
            landed += kill_detached(pid)
        else:
            proc = start_driver(root, run.run_id, mode, log)
            time.sleep(rng.uniform(0, delay_s))
            landed += kill_child(proc)
        if mode != "retry" and run_row(root, run.run_id).state in TERMINAL_RUN_STATES:
            break
    if mode == "retry":
        retry(root, run.run_id)
        assert run.wait(timeout=DEADLINE_S) in TERMINAL_RUN_STATES
    else:
        proc = start_driver(root, run.run_id, mode, log)
        assert proc.stdout is not None
        out, _ = proc.communicate(timeout=DEADLINE_S)
        assert out.strip() in TERMINAL_RUN_STATES, (out, log.read_text())
    wait_for_workers(root)
    return landed


def final_state(root: Path) -> dict[str, Any]:
    """The run's end state, free of run ids, batches, times and attempt counts."""
    store = SqliteStore.open(root)
    try:
        (run,) = store.runs()
        instances = store.instances(run.run_id)
        values: dict[str, tuple[str, str]] = {}
        for task in {row.task for row in instances}:
            ids = [row.identity for row in instances if row.task == task]
            values.update(store.cached_outputs(task, ids))
        planned = store.planned_tasks(run.run_id)
    finally:
        store.close()
    return {
        "state": run.state,
        "planned": {task: (size, error) for task, (_plan, size, error) in planned.items()},
        "instances": {
            (row.task, row.element): (
                row.identity,
                row.state,
                row.reason,
                row.error,
                values.get(row.identity, ("", ""))[0] if row.state == "done" else None,
            )
            for row in instances
        },
    }


def consistency_problems(root: Path) -> tuple[list[str], int]:
    """Everything wrong with the finished run in ``root``, and how many done elements of
    ``work`` ran more than once (each must still have been ingested once)."""
    store = SqliteStore.open(root)
    try:
        problems = store.integrity_problems()
        (run,) = store.runs()
        rows = store.instances(run.run_id)
        planned = store.planned_tasks(run.run_id)
        db = store._db
        produced = db.execute("SELECT identity, hash FROM outputs WHERE run_id = ?", (run.run_id,))
        outputs = dict(produced.fetchall())
    finally:
        store.close()
    layout = RunLayout(root, run.run_id)
    for task, (_plan, size, _error) in planned.items():
        elements = sorted(row.element for row in rows if row.task == task)
        if elements != list(range(size)):
            problems.append(f"{task}: elements {elements[:5]}... are not 0..{size - 1}")
    done = {row.identity for row in rows if row.state == "done"}
    if set(outputs) != done:
        problems.append(f"{len(outputs)} outputs rows for {len(done)} done instances")
    for row in rows:
        where = f"{row.task}[{row.element}]"
        if row.state in ("ready", "submitted"):
            problems.append(f"{where} is still {row.state}")
        if row.state in ("done", "failed") and not (row.attempts >= 1 and row.batch and row.job_id):
            problems.append(f"{where} {row.state} with attempts={row.attempts} batch={row.batch}")
        if row.state == "done":
            batch = str(row.batch)
            path = layout.result(row.task, row.element, batch)
            record = read_result(
                path, run_id=run.run_id, task=row.task, element=row.element, batch=batch
            )
            stored = outputs.get(row.identity)
            if not isinstance(record, ResultRecord) or record.output_hash != stored:
                problems.append(f"{where}: the stored output is not its batch's result")
    for row in rows:
        first_raised = row.task == "check" and row.element % 7 == 6  # it was retried on its own
        if first_raised and row.state == "done" and row.attempts < 2:
            problems.append(f"check[{row.element}] done after {row.attempts} attempt(s)")
    runs = Counter(p.name.split(".")[0] for p in layout.results_dir("work").glob("*.json"))
    done_work = {str(row.element) for row in rows if row.task == "work" and row.state == "done"}
    return problems, sum(runs[element] > 1 for element in done_work)
