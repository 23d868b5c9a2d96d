"""Cancel and retry as state-machine rules, from the user's side (real processes and CLI).

- ``cancel`` that finds nothing active leaves a run that ended as it ended; ``retry`` of a
  succeeded run with nothing to rerun says so and leaves it succeeded.
- ``cancel --task T`` on the local executor: no worker of T starts after the cancel and
  none keeps running, while the rest of the run is unaffected.
- A run whose unfinished instances were all cancelled ends ``cancelled``, and says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.flows.slow_steps import wf as slow
from tests.integration.flowfiles import calls, cli, submit_and_wait, write_flow
from tests.integration.test_control import DEADLINE_S, is_alive, wait_until, worker_pids


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "2")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def status_json(flow: Path, run_id: str, run_dir: Path) -> dict[str, Any]:
    done = cli(flow, "status", run_id, "--run-dir", str(run_dir), "--json", cwd=flow.parent)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_retry_then_cancel_leave_a_succeeded_run_succeeded(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    run_id, status = submit_and_wait(flow, run_dir)
    assert status["state"] == "succeeded"
    ran = calls(run_dir, "convert")
    assert len(ran) == 3
    retried = cli(flow, "retry", run_id, "--run-dir", str(run_dir), cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert "nothing to retry" in retried.stdout
    cancelled = cli(flow, "cancel", run_id, "--run-dir", str(run_dir), cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled 0 instance(s) of run {run_id}" in cancelled.stdout
    after = status_json(flow, run_id, run_dir)
    assert after["state"] == "succeeded"
    assert after["message"] == ""
    assert {t["task"]: t["counts"] for t in after["tasks"]}["convert"] == {"done": 3}
    table = cli(flow, "status", run_id, "--run-dir", str(run_dir), cwd=tmp_path).stdout
    assert "SUCCEEDED" in table
    assert calls(run_dir, "convert") == ran  # nothing ran again


def test_cancel_of_a_failed_run_keeps_its_state_and_message(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    (run_dir / "publish.fail").touch()
    run_id, status = submit_and_wait(flow, run_dir)
    assert status["state"] == "failed"
    cancelled = cli(flow, "cancel", run_id, "--run-dir", str(run_dir), cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    after = status_json(flow, run_id, run_dir)
    assert (after["state"], after["message"]) == ("failed", status["message"])
    assert "failed" in after["message"]


def test_cancel_task_starts_no_more_workers_and_ends_the_run_cancelled(tmp_path: Path) -> None:
    # Six elements of 30 s in chunks of one, two slots: two run, four wait in the queue.
    run = slow.submit(run_dir=tmp_path, count=6, seconds=30.0)
    work_calls = tmp_path / "work.calls"
    wait_until(
        lambda: work_calls.exists() and len(work_calls.read_text().split()) == 2,
        "two elements of work to start",
    )
    assert run.cancel("work") == 6
    started = work_calls.read_text().split()
    wait_until(lambda: not any(is_alive(p) for p in worker_pids(tmp_path)), "workers to end")
    final = run.wait(timeout=DEADLINE_S)
    assert work_calls.read_text().split() == started  # none started after the cancel
    assert len(started) == 2
    assert not any(is_alive(p) for p in worker_pids(tmp_path))
    assert final == "cancelled"
    status = run.status(as_dict=True)
    assert status is not None
    counts = {t["task"]: t["counts"] for t in status["tasks"]}
    assert counts["prepare"] == {"done": 1}
    assert counts["work"] == {"cancelled": 6}
    assert "cancelled" in status["message"]
    assert "failed" not in status["message"]
