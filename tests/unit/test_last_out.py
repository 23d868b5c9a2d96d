"""The end count of a batch on Slurm: exactly one of its array tasks counts the last end."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from reflow.running.rundir.layout import RunLayout
from reflow.running.worker.last_out import count_end

_TASKS = 24


def _count(path: str) -> int:
    return count_end(Path(path))


def test_array_tasks_ending_at_once_count_every_end_once(tmp_path: Path) -> None:
    path = tmp_path / "batch.ends"
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        counts = pool.map(_count, [str(path)] * _TASKS)
    assert sorted(counts) == list(range(1, _TASKS + 1))  # one process saw the last end
    assert path.stat().st_size == _TASKS


def test_a_requeued_array_task_counts_again_and_so_passes_the_total(tmp_path: Path) -> None:
    path = tmp_path / "batch.ends"
    assert [count_end(path) for _ in range(3)] == [1, 2, 3]


_FAILING_TURN = """
import os, sys
from pathlib import Path
from reflow.running.dispatch import slurm_chain
from reflow.running.rundir.layout import RunLayout
from reflow.running.worker.last_out import turn_if_last

def failing_turn(layout, *, in_array_task):
    seen = {k: os.environ.get(k) for k in ("SLURM_ARRAY_TASK_ID", "SLURM_JOB_ID")}
    print(f"turn of {layout.run_id}, in an array task: {in_array_task}, {seen}")
    raise RuntimeError("the turn broke")

slurm_chain.run_turn_and_chain = failing_turn
layout = RunLayout(Path(sys.argv[1]), "r-1")
turn_if_last(layout, "b1", 2)
print("after the first end")
turn_if_last(layout, "b1", 2)
print("after the last end")
"""


def test_the_last_array_task_runs_the_turn_in_its_process_and_keeps_its_own_outcome(
    tmp_path: Path,
) -> None:
    layout = RunLayout(tmp_path, "r-1")
    layout.batch("b1").parent.mkdir(parents=True)
    env = {**os.environ, "SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "2"}
    env["SLURM_JOB_ID"] = "44"
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_TURN, str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # The turn's failure stays in its log: the worker goes on, its own output has no trace.
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "after the first end\nafter the last end\n", ""
    )  # fmt: skip
    log = layout.slurm_turn_log("41_2").read_text()
    # The job's own id stays (it counts against the budget); the array's go (a turn job the
    # turn submits would inherit them).
    seen = {"SLURM_ARRAY_TASK_ID": None, "SLURM_JOB_ID": "44"}
    assert log.startswith(f"turn of r-1, in an array task: True, {seen}\nTraceback (most ")
    assert log.rstrip().endswith("RuntimeError: the turn broke")
