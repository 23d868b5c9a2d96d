"""The end count of a batch on Slurm: exactly one of its array tasks counts the last end."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

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
