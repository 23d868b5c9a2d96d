"""Two runs of the same work into one run directory run every element once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reflow.running.store.sqlite import SqliteStore

SLOW = Path(__file__).resolve().parents[1] / "flows" / "slow_steps.py"
CLI = '\n\nif __name__ == "__main__":\n    raise SystemExit(wf.cli())\n'


def flow_file(tmp_path: Path) -> Path:
    """The slow flow, as a script a user runs."""
    flow = tmp_path / "slow_flow.py"
    flow.write_text(SLOW.read_text() + CLI)
    return flow


def submit(run_dir: Path, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "REFLOW_MODE": "local",
        "REFLOW_LOCAL_SLOTS": "2",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    flow = flow_file(tmp_path)
    argv = [sys.executable, str(flow), "submit", "--run-dir", str(run_dir), "--count", "6"]
    return subprocess.Popen(
        [*argv, "--seconds", "0.6", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def status(run_dir: Path, run_id: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("reflow")),
            "status",
            run_id,
            "--run-dir",
            str(run_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def latest_run(run_dir: Path) -> str:
    """The run submitted last (run ids made in the same second do not sort by time)."""
    with SqliteStore.open(run_dir) as store:
        return store.latest_run_id()


def wait_until_working(run_dir: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = sorted((run_dir / "runs").glob("*/manifest.json"))
        if runs:
            tasks = status(run_dir, runs[0].parent.name)["tasks"]
            work = next(t for t in tasks if t["task"] == "work")
            if work["counts"].get("submitted"):
                return
        time.sleep(0.2)
    raise AssertionError("the first run never started its work")


def test_concurrent_submits_of_the_same_parameters_run_each_element_once(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "runs"
    first = submit(run_dir, tmp_path, "--wait")
    wait_until_working(run_dir)  # the first run's elements are submitted
    second = submit(run_dir, tmp_path, "--wait")
    seen_waiting = False
    deadline = time.monotonic() + 60
    while second.poll() is None and time.monotonic() < deadline:
        if len(list((run_dir / "runs").iterdir())) == 2:
            tasks = status(run_dir, latest_run(run_dir))["tasks"]
            seen_waiting = seen_waiting or any("waits_for_runs" in t for t in tasks)
        time.sleep(0.3)
    out_first, err_first = first.communicate(timeout=60)
    out_second, err_second = second.communicate(timeout=60)
    assert first.returncode == 0, out_first + err_first
    assert second.returncode == 0, out_second + err_second
    calls = sorted((run_dir / "work.calls").read_text().split())
    assert calls == ["0", "1", "2", "3", "4", "5"]  # every element ran once, not twice
    work = next(t for t in status(run_dir, latest_run(run_dir))["tasks"] if t["task"] == "work")
    assert work["counts"] == {"cached": 6}
    assert seen_waiting, "status never said the second run waits for the first"
