"""Automatic retries on the local executor, from the user's side: a flow file run by its CLI.

``tests/flows/retry_steps.py`` appends ``<task> <item>`` to ``calls`` in the run directory on
every call, so the counters prove what ran; its element ``bad`` fails as ``--fault`` says and
then recovers. The last test drives Slurm turns in this process on fake scheduler commands
(as ``test_slurm_chain.py`` does), to count the store's queries of a turn.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from reflow.running.rundir.layout import RunLayout
from reflow.running.store.records import Attempt
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState
from tests.integration.flowfiles import cli
from tests.integration.test_slurm_chain import start_with_prepare_done, state_counts, turn
from tests.unit.test_slurm_executor import FakeSlurm

FLOW = Path(__file__).resolve().parent.parent / "flows" / "retry_steps.py"


def calls(run_dir: Path) -> Counter[str]:
    return Counter((run_dir / "calls").read_text().splitlines())


def run(tmp_path: Path, fault: str) -> tuple[Path, str, dict[str, Any]]:
    run_dir = tmp_path / "run"
    done = cli(FLOW, "submit", "--run-dir", str(run_dir), "--wait", "--fault", fault, cwd=tmp_path)
    assert "submitted run " in done.stdout, done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    shown = cli(FLOW, "status", run_id, "--run-dir", str(run_dir), "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    status: dict[str, Any] = json.loads(shown.stdout)
    status["progress"] = done.stdout
    return run_dir, run_id, status


def test_an_oserror_in_retry_on_is_retried_with_growing_delays_and_the_run_succeeds(
    tmp_path: Path,
) -> None:
    run_dir, run_id, status = run(tmp_path, "oserror")
    assert status["state"] == "succeeded", status
    assert calls(run_dir) == Counter(
        {"work 1": 3, "work 0": 1, "work 2": 1, "plain 0": 1, "plain 1": 1, "plain 2": 1}
    )
    [retried] = status["retried"]
    assert (retried["task"], retried["element"], retried["attempts"]) == ("work", 1, 3)
    history = retried["history"]
    assert [(a["state"], a["reason"]) for a in history] == [
        ("failed", "exception"),
        ("failed", "exception"),
        ("done", None),
    ]
    # retry_delay=0.2: the second attempt waits 0.2 s at least, the third 0.4 s.
    assert history[1]["submitted_at"] - history[0]["ended_at"] >= 0.2
    assert history[2]["submitted_at"] - history[1]["ended_at"] >= 0.4
    assert len({a["job_id"] for a in history}) == 3
    # While it ran, the failures that were retried never showed as failed.
    work_lines = [line for line in status["progress"].splitlines() if "] work " in line]
    assert work_lines
    assert not [line for line in work_lines if "failed" in line], work_lines
    table = cli(FLOW, "status", run_id, "--run-dir", str(run_dir), cwd=tmp_path)
    assert "work[1]: 3 attempts" in table.stdout, table.stdout
    assert (
        "attempt 2/3: after exception (FileNotFoundError: item 1 is not there yet)" in table.stdout
    )


def test_an_exception_not_in_retry_on_fails_once_and_is_not_retried(tmp_path: Path) -> None:
    run_dir, _run_id, status = run(tmp_path, "plain")
    assert status["state"] == "failed"
    assert calls(run_dir)["plain 1"] == 1
    [failed] = status["failed"]
    assert (failed["task"], failed["element"], failed["attempts"]) == ("plain", 1, 1)
    assert failed["error"] == "FileNotFoundError: item 1 is not there yet"
    assert status["retried"] == []


def test_an_element_whose_worker_is_sigkilled_is_retried_with_the_same_resources(
    tmp_path: Path,
) -> None:
    run_dir, _run_id, status = run(tmp_path, "sigkill")
    assert status["state"] == "succeeded", status
    assert calls(run_dir)["work 1"] == 2
    assert calls(run_dir)["work 0"] == calls(run_dir)["work 2"] == 1
    [retried] = [r for r in status["retried"] if r["element"] == 1]
    first, second = retried["history"]
    assert (first["state"], first["reason"]) == ("failed", "lost")
    assert "killed by SIGKILL" in first["error"]
    assert first["resources"] == second["resources"]
    assert retried["retries"][0].startswith("attempt 2/3: after lost")


def test_the_configured_retries_bound_the_attempts_and_the_failure_says_how_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFLOW_RETRIES", "1")
    run_dir, _run_id, status = run(tmp_path, "oserror")
    assert status["state"] == "failed"
    assert calls(run_dir)["work 1"] == 2
    [blocked, failed] = status["failed"]  # plain[1] consumes work[1]: it is blocked
    assert (blocked["task"], blocked["element"], blocked["state"]) == ("plain", 1, "blocked")
    assert failed["attempts"] == 2
    assert failed["error"] == "FileNotFoundError: item 1 is not there yet (after 2 attempts)"
    [retried] = status["retried"]
    assert retried["retries"] == [
        "attempt 2/2: after exception (FileNotFoundError: item 1 is not there yet)"
    ]


def test_a_turn_sums_up_many_exhausted_retries_with_one_query_of_attempts(
    slurm: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = slurm
    monkeypatch.setenv("REFLOW_MEM", "256M")
    monkeypatch.setenv("REFLOW_RETRIES", "1")
    count = 40
    layout, _ = start_with_prepare_done(fake, tmp_path / "runs", monkeypatch, count=count)
    asked: list[list[tuple[str, int]]] = []
    attempts_of = SqliteStore.attempts_of

    def counted(
        store: SqliteStore, run_id: str, elements: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], list[Attempt]]:
        keys = list(elements)
        asked.append(keys)
        return attempts_of(store, run_id, keys)

    monkeypatch.setattr(SqliteStore, "attempts_of", counted)
    # Every element of work runs out of memory twice: retried with 512M, then failed.
    for _ in range(2):
        out_of_memory(fake, layout, monkeypatch)
    assert state_counts(layout)["work"] == {"failed": count}
    assert asked == [[("work", element) for element in range(count)]]
    with SqliteStore.open(layout.root) as store:
        failed = store.instances_in(layout.run_id, [InstanceState.FAILED])
    assert {(row.attempts, row.error) for row in failed} == {
        (2, "OUT_OF_MEMORY at 256M, 512M; retries ran out; raise mem= or retries=")
    }


def out_of_memory(fake: FakeSlurm, layout: RunLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a turn in which sacct says every submitted work element ran out of memory."""
    with SqliteStore.open(layout.root) as store:
        rows = store.instances_in(layout.run_id, [InstanceState.SUBMITTED])
        successor = store.run(layout.run_id).dispatcher.pending_jobs[0]
    lines = [
        f"{row.job_id}|{'OUT_OF_MEMORY|0:125' if row.task == 'work' else 'RUNNING|0:0'}"
        for row in rows
    ]
    fake.respond("sacct", {"stdout": "".join(f"{line}\n" for line in sorted(set(lines)))})
    turn(fake, layout, monkeypatch, successor)
