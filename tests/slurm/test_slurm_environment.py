"""A task's compute-node environment on the real cluster: the batch script's setup lines and
variables reach the task, and a failing setup line fails the elements with its line and output.

The flow is submitted as a user would, ``python flow.py submit`` with ``REFLOW_MODE=slurm``,
from the test's folder (the jobs' working directory, where the setup line finds ``bin/``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.flows import env_steps
from tests.integration.flowfiles import calls, cli_with_mode
from tests.slurm.scheduler import slurm, squeue_jobs, status, wait_for_run, wait_until_no_jobs

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

FLOW = Path(env_steps.__file__)


def test_setup_and_env_reach_the_task_and_a_failing_setup_line_fails_its_elements(
    tmp_path: Path,
) -> None:
    env_steps.prepare(tmp_path)
    run_dir = tmp_path / "runs"
    done = cli_with_mode(FLOW, "slurm", "submit", "--run-dir", str(run_dir), cwd=tmp_path)
    assert "submitted run " in done.stdout, done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    try:
        assert wait_for_run(run_dir, run_id) == "failed", status(run_dir, run_id)
        wait_until_no_jobs(tmp_path)
    finally:
        left = squeue_jobs(tmp_path)
        if left:
            slurm("scancel", *left)

    seen = json.loads((run_dir / "seen.json").read_text())
    assert seen == {"tool": "from envtool", "env": env_steps.expected_env()}
    assert not (tmp_path / "pwned").exists()
    assert calls(run_dir, "probe") == ["call"]
    assert calls(run_dir, "broken") == []

    failed = {(e["task"], e["element"]): e for e in status(run_dir, run_id)["failed"]}
    assert sorted(failed) == [("broken", 0), ("broken", 1)]
    for element in failed.values():
        assert element["error"].startswith(
            "SetupError: setup line 3 'nosuch_module_cmd load cdo' failed (exit 127): "
        )
        assert "nosuch_module_cmd: command not found" in element["error"]
