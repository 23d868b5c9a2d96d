"""Keep going: a failed element blocks only what consumes it; chains advance element-wise.

The flow file runs as a user runs it (a subprocess); its tasks log every call, which is how
the tests tell what ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reflow.running.store.sqlite import SqliteStore
from tests.integration.flowfiles import calls, cli, copy_flow, counts, submit_and_wait


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "2")
    return copy_flow("keepgoing_steps", tmp_path)


def test_a_failed_element_blocks_only_what_consumes_it_and_retry_reruns_just_that(
    flow: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "fail.marker").touch()
    run_id, status = submit_and_wait(flow, run_dir, "--fail", "3,7")
    assert status["state"] == "failed"
    assert counts(status)["convert"] == {"done": 8, "failed": 2}
    assert counts(status)["check"] == {"done": 8, "blocked": 2}
    assert sorted(map(int, calls(run_dir, "check"))) == [0, 1, 2, 4, 5, 6, 8, 9]
    assert calls(run_dir, "gather") == []
    gather = next(t for t in status["tasks"] if t["task"] == "gather")
    assert "2 of 10 inputs failed" in gather["error"]
    assert "convert[3]" in gather["error"]
    assert "convert[7]" in gather["error"]
    blocked = {e["element"]: e["error"] for e in status["failed"] if e["state"] == "blocked"}
    assert blocked == {3: "upstream convert[3] failed", 7: "upstream convert[7] failed"}
    shown = cli(flow, "status", run_id, "--run-dir", str(run_dir), cwd=tmp_path).stdout
    assert "upstream convert[3] failed" in shown

    (run_dir / "fail.marker").unlink()
    retried = cli(flow, "retry", run_id, "--run-dir", str(run_dir), "--wait", cwd=tmp_path)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert sorted(map(int, calls(run_dir, "convert"))) == sorted([*range(10), 3, 7])
    assert sorted(map(int, calls(run_dir, "check"))) == list(range(10))
    assert calls(run_dir, "gather") == ["10"]


def test_a_chain_element_starts_when_its_own_input_is_done(flow: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_id, status = submit_and_wait(flow, run_dir, "--count", "4", "--slow", "3", "--seconds", "3")
    assert status["state"] == "succeeded"
    with SqliteStore.open(run_dir) as store:
        rows = {(r.task, r.element): r for r in store.instances(run_id)}
    slowest = rows[("convert", 3)]
    first_check = min(rows[("check", e)].started or 0.0 for e in range(4))
    assert slowest.ended is not None
    assert first_check < slowest.ended


def test_chain_elements_planned_while_work_is_queued_go_out_together(
    flow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One slot: while a chunk waits for it, newly planned chain elements are held and then
    # start in one worker process, not one process each.
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "1")
    run_dir = tmp_path / "run"
    run_id, status = submit_and_wait(flow, run_dir, "--count", "12")
    assert status["state"] == "succeeded"
    assert sorted(int(c) for c in calls(run_dir, "check")) == list(range(12))
    chunks = list((run_dir / "runs" / run_id / "logs" / "check").glob("chunk-*.log"))
    assert 1 <= len(chunks) < 12
