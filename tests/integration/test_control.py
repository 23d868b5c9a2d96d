"""Cancel, crash and resume on the local executor, with real processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from reflow.running.store.sqlite import SqliteStore
from tests.flows.slow_steps import wf
from tests.integration.flowfiles import calls, cli, submit_and_wait, write_flow

DEADLINE_S = 60


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "2")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def worker_pids(run_dir: Path) -> list[int]:
    pids = []
    for path in run_dir.glob("runs/*/logs/*/chunk-*.pid"):
        pids.append(int(json.loads(path.read_text())["pid"]))
    return pids


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False


def test_cancel_stops_running_work_and_leaves_store_consistent(tmp_path: Path) -> None:
    run = wf.submit(run_dir=tmp_path, count=4, seconds=30.0)
    wait_until(lambda: (tmp_path / "work.calls").exists(), "the first element to start")
    cancelled = run.cancel()
    assert cancelled >= 1
    assert run.wait(timeout=DEADLINE_S) == "cancelled"
    wait_until(lambda: not any(is_alive(p) for p in worker_pids(tmp_path)), "workers to end")
    status = run.status(as_dict=True)
    assert status is not None
    assert status["state"] == "cancelled"
    work = next(t for t in status["tasks"] if t["task"] == "work")
    assert set(work["counts"]) == {"cancelled"}
    store = SqliteStore.open(tmp_path)
    try:
        assert store.integrity_problems() == []
    finally:
        store.close()


def test_killed_dispatcher_is_noticed_and_retry_resumes_the_run(tmp_path: Path) -> None:
    run = wf.submit(run_dir=tmp_path, count=6, seconds=0.5)
    wait_until(lambda: (tmp_path / "work.calls").exists(), "work to start")
    status = run.status(as_dict=True)
    assert status is not None
    os.kill(status["dispatcher"]["pid"], signal.SIGKILL)
    wait_until(
        lambda: (run.status(as_dict=True) or {})["dispatcher"]["alive"] is False,
        "status to notice the dead dispatcher",
    )
    assert run.wait(timeout=DEADLINE_S) == "stalled"
    run.retry()
    assert run.wait(timeout=DEADLINE_S) == "succeeded"
    final = run.status(as_dict=True)
    assert final is not None
    assert {t["task"]: t["counts"] for t in final["tasks"]}["work"] == {"done": 6}
    ran = (tmp_path / "work.calls").read_text().split()
    assert sorted(ran) == [str(i) for i in range(6)]


def test_retry_rebuilds_a_deleted_path_output_and_what_depends_on_it(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    (run_dir / "publish.fail").touch()
    run_id, status = submit_and_wait(flow, run_dir)
    assert status["state"] == "failed"
    assert status["exit_code"] == 1
    (run_dir / "out" / "item1.txt").unlink()
    (run_dir / "publish.fail").unlink()
    retried = cli(flow, "retry", run_id, "--run-dir", str(run_dir), "--wait", cwd=tmp_path)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert (run_dir / "out" / "item1.txt").exists()
    assert sorted(calls(run_dir, "convert")) == ["item0", "item1", "item1", "item2"]
    assert calls(run_dir, "publish") == ["3", "3"]
