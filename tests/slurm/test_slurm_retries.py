"""Automatic retries on the real cluster: OUT_OF_MEMORY, TIMEOUT and ``retry_on`` need no person.

The flow is ``tests/flows/slurm_retries.py``: each task appends ``<task> <item>`` to ``calls``
in the run directory on every call, so the counters prove what ran; element 1 of one task
misbehaves as ``fault`` says. The four runs are submitted together by one module fixture, so
the slowest (a TIMEOUT, which Slurm enforces 60 to 90 s after the start) sets the wall time
of the module. What each attempt asked for is read back from ``sacct``, not from reflow.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.flows import slurm_retries
from tests.slurm.scheduler import array_specs, batches, slurm, status, wait_for_run
from tests.slurm.test_slurm_runs import Workdirs, clean_env

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

FAULTS = ("oom", "capped", "timeout", "oserror")
TASKS = ("hog", "capped", "slow", "flaky")
DEADLINE_S = 240.0
ACCOUNTING_DEADLINE_S = 30.0


@dataclass(frozen=True)
class Submitted:
    run_dir: Path
    run_id: str


@pytest.fixture(scope="module")
def runs(
    slurm_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Submitted]]:
    base = tmp_path_factory.mktemp("retries")
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean_env(monkeypatch, base / "config")
        dirs = Workdirs(base, monkeypatch)
        submitted = {
            fault: Submitted(
                base / fault / "runs",
                dirs.submit(slurm_retries.wf, base / fault / "runs", fault, fault=fault, hogs=2),
            )
            for fault in FAULTS
        }
        try:
            yield submitted
        finally:
            dirs.cancel_leftovers()


def finished(run: Submitted) -> tuple[str, dict[str, Any]]:
    state = wait_for_run(run.run_dir, run.run_id, timeout_s=DEADLINE_S)
    return state, status(run.run_dir, run.run_id)


def calls(run: Submitted) -> Counter[str]:
    return Counter((run.run_dir / "calls").read_text().splitlines())


def once_each_but(task: str, times: int, items: tuple[int, ...] = (1,)) -> Counter[str]:
    """Every task ran each item once, but ``task`` ran ``items`` ``times`` times each."""
    expected = Counter(f"{t} {item}" for t in TASKS for item in range(3))
    for item in items:
        expected[f"{task} {item}"] = times
    return expected


def accounted(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """``job id -> sacct fields`` of array elements, once accounting has every one ended.

    A run may end before slurmdbd has recorded its last job's end, so this waits for it.
    """
    fields = ("JobID", "State", "ReqMem", "Timelimit", "Submit", "Eligible")
    argv = ["sacct", "-X", "-n", "-P", f"--format={','.join(fields)}", "-j", ",".join(job_ids)]
    deadline = time.monotonic() + ACCOUNTING_DEADLINE_S
    while True:
        rows = [
            dict(zip(fields, line.split("|"), strict=True))
            for line in slurm(*argv).split("\n")
            if line
        ]
        found = {row["JobID"]: row for row in rows if row["JobID"] in job_ids}
        states = [found.get(job, {}).get("State", "") for job in job_ids]
        if all(s and s not in ("PENDING", "RUNNING") for s in states):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"sacct does not show {job_ids} ended: {rows}")
        time.sleep(0.5)


def retried(data: dict[str, Any], task: str, element: int = 1) -> dict[str, Any]:
    assert {r["element"] for r in data["retried"] if r["task"] == task} <= {1, 2}
    [entry] = [r for r in data["retried"] if (r["task"], r["element"]) == (task, element)]
    found: dict[str, Any] = entry
    return found


def seconds(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))


def test_out_of_memory_goes_out_again_with_twice_the_memory_until_it_fits(
    runs: dict[str, Submitted],
) -> None:
    run = runs["oom"]
    state, data = finished(run)
    assert state == "succeeded", data
    assert calls(run) == once_each_but("hog", 3, items=(1, 2))
    for element in (1, 2):
        entry = retried(data, "hog", element)
        assert entry["retries"] == [
            "attempt 2/3: OUT_OF_MEMORY at 256M -> 512M",
            "attempt 3/3: OUT_OF_MEMORY at 512M -> 1G",
        ]
        jobs = [attempt["job_id"] for attempt in entry["history"]]
        slurm_says = accounted(jobs)
        assert [(slurm_says[j]["State"], slurm_says[j]["ReqMem"]) for j in jobs] == [
            ("OUT_OF_MEMORY", "256M"),
            ("OUT_OF_MEMORY", "512M"),
            ("COMPLETED", "1G"),
        ]
    # Retried elements go out as arrays holding only them: the two share one array when one
    # turn saw both run out (on several nodes they may end a turn apart), and each goes out
    # twice more, never with the element that succeeded.
    first, *again = array_specs(run.run_dir, run.run_id, "hog")
    assert first == "0-2"
    assert set(again) <= {"1-2", "1", "2"}
    resubmitted = Counter(e for spec in again for e in (("1", "2") if spec == "1-2" else (spec,)))
    assert resubmitted == {"1": 2, "2": 2}
    hog_batches = [ids for task, _b, ids in batches(run.run_dir, run.run_id) if task == "hog"]
    assert [len(ids) for ids in hog_batches] == [1] * (1 + len(again))  # one array each


def test_at_max_mem_the_run_fails_with_the_history_and_the_fix(
    runs: dict[str, Submitted],
) -> None:
    run = runs["capped"]
    state, data = finished(run)
    assert state == "failed"
    assert calls(run) == once_each_but("capped", 2)
    [failed] = data["failed"]
    assert (failed["task"], failed["element"], failed["reason"]) == ("capped", 1, "out_of_memory")
    assert failed["error"] == "OUT_OF_MEMORY at 256M, 512M; at the cap; raise max_mem= or mem="
    assert retried(data, "capped")["retries"] == ["attempt 2/3: OUT_OF_MEMORY at 256M -> 512M"]


def test_a_timeout_goes_out_again_with_twice_the_time_limit(
    runs: dict[str, Submitted],
) -> None:
    run = runs["timeout"]
    state, data = finished(run)
    assert state == "succeeded", data
    assert calls(run) == once_each_but("slow", 2)
    entry = retried(data, "slow")
    assert entry["retries"] == ["attempt 2/3: TIMEOUT at 00:01:00 -> 00:02:00"]
    jobs = [attempt["job_id"] for attempt in entry["history"]]
    slurm_says = accounted(jobs)
    assert [(slurm_says[j]["State"], slurm_says[j]["Timelimit"]) for j in jobs] == [
        ("TIMEOUT", "00:01:00"),
        ("COMPLETED", "00:02:00"),
    ]


def test_an_exception_in_retry_on_goes_out_again_later_each_time_through_begin(
    runs: dict[str, Submitted],
) -> None:
    run = runs["oserror"]
    state, data = finished(run)
    assert state == "succeeded", data
    assert calls(run) == once_each_but("flaky", 3)
    entry = retried(data, "flaky")
    assert [a["reason"] for a in entry["history"]] == ["exception", "exception", None]
    jobs = [attempt["job_id"] for attempt in entry["history"]]
    slurm_says = accounted(jobs)
    # retry_delay=2: the second attempt may start 2 s after the first ended, the third 4 s
    # after the second; Slurm holds them (--begin), no process waits for it.
    history = entry["history"]
    assert history[0]["begin_at"] is None  # the first attempt had no --begin
    for attempt, delay in ((1, 2), (2, 4)):
        begin, ended_before = history[attempt]["begin_at"], history[attempt - 1]["ended_at"]
        assert begin - ended_before >= delay
        eligible = seconds(slurm_says[jobs[attempt]]["Eligible"])
        assert eligible >= math.floor(begin) - 1  # sacct's clock has whole seconds
        assert eligible > seconds(slurm_says[jobs[attempt]]["Submit"])
