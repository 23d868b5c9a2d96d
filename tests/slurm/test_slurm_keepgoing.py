"""Keep going and element-wise progress on the real Slurm cluster.

A chain of two arrays and a gather (``tests/flows/keepgoing_steps.py``): two elements fail
while a marker file exists; the tasks log every call, which is how the tests tell what ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reflow.run import Run
from reflow.running.store.sqlite import SqliteStore
from tests.flows.keepgoing_steps import wf
from tests.slurm.scheduler import status, wait_for_run, wait_until_no_jobs
from tests.slurm.test_slurm_runs import Workdirs, clean_env

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

DEADLINE_S = 180.0


@dataclass(frozen=True)
class SlowRun:
    run_dir: Path
    run_id: str


@pytest.fixture(scope="module")
def slow_run(slurm_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlowRun]:
    """A chain whose last upstream element sleeps 40 s, with a timed turn every 5 s.

    Submitted when the module starts, so that the other test runs while it sleeps. The slow
    element leaves the timed turns and the chain's array time to start on a cluster that
    other runs keep busy too.
    """
    base = tmp_path_factory.mktemp("slow")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean_env(monkeypatch, base / "config")
        monkeypatch.setenv("REFLOW_DISPATCHER_INTERVAL_S", "5")
        dirs = Workdirs(base, monkeypatch)
        run_id = dirs.submit(wf, base / "runs", "work", count=4, slow=3, seconds=40.0)
    yield SlowRun(base / "runs", run_id)
    dirs.cancel_leftovers()


def calls(run_dir: Path, task: str) -> list[int]:
    path = run_dir / f"{task}.calls"
    return sorted(int(line) for line in path.read_text().split()) if path.exists() else []


def test_on_slurm_a_failed_element_blocks_only_its_chain_and_retry_reruns_just_that(
    workdirs: Workdirs, tmp_path: Path, slow_run: SlowRun
) -> None:
    # slow_run: asked for here only so that its run sleeps while this one runs.
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    (run_dir / "fail.marker").touch()
    run_id = workdirs.submit(wf, run_dir, "work", count=6, fail="1,4")
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "failed"
    data = status(run_dir, run_id)
    by_task = {t["task"]: t for t in data["tasks"]}
    assert by_task["convert"]["counts"] == {"done": 4, "failed": 2}
    assert by_task["check"]["counts"] == {"done": 4, "blocked": 2}
    assert calls(run_dir, "check") == [0, 2, 3, 5]
    assert "2 of 6 inputs failed" in by_task["gather"]["error"]
    blocked = {e["element"]: e["error"] for e in data["failed"] if e["state"] == "blocked"}
    assert blocked == {1: "upstream convert[1] failed", 4: "upstream convert[4] failed"}

    (run_dir / "fail.marker").unlink()
    wait_until_no_jobs(workdirs.made[0])
    Run(run_dir, run_id).retry()
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"
    assert calls(run_dir, "convert") == sorted([*range(6), 1, 4])
    assert calls(run_dir, "check") == list(range(6))
    assert calls(run_dir, "gather") == [6]


def test_on_slurm_a_chain_element_starts_before_the_upstream_array_ends(
    slow_run: SlowRun,
) -> None:
    run_dir, run_id = slow_run.run_dir, slow_run.run_id
    assert wait_for_run(run_dir, run_id, timeout_s=DEADLINE_S) == "succeeded"
    with SqliteStore.open(run_dir) as store:
        rows = {(r.task, r.element): r for r in store.instances(run_id)}
    slowest = rows[("convert", 3)]
    first_check = min(rows[("check", e)].started or 0.0 for e in range(4))
    assert slowest.ended is not None
    assert first_check < slowest.ended
