"""A task's compute-node environment on the local executor, as a user sees it: ``setup=`` lines
and ``env=`` variables (and the config's) reach the task, a failing setup line fails the
elements with its line and output, and a dry run shows both."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from tests.flows import env_steps
from tests.integration.flowfiles import calls, cli, cli_with_mode

FLOW = Path(env_steps.__file__)


def submit(folder: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """Submit from ``folder`` and wait; return the run id and ``status --json``."""
    run_dir = str(folder / "runs")
    done = cli(FLOW, "submit", "--run-dir", run_dir, "--wait", *args, cwd=folder)
    assert "submitted run " in done.stdout, done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    shown = cli(FLOW, "status", run_id, "--run-dir", run_dir, "--json", cwd=folder)
    assert shown.returncode == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    return run_id, data


def test_setup_and_env_reach_the_task_and_a_failing_setup_line_fails_its_elements(
    tmp_path: Path,
) -> None:
    env_steps.prepare(tmp_path)
    run_id, status = submit(tmp_path)
    run_dir = tmp_path / "runs"
    seen = json.loads((run_dir / "seen.json").read_text())
    assert seen == {"tool": "from envtool", "env": env_steps.expected_env()}
    assert not (tmp_path / "pwned").exists()
    assert calls(run_dir, "probe") == ["call"]
    assert calls(run_dir, "broken") == []  # the task never ran

    failed = {(e["task"], e["element"]): e for e in status["failed"]}
    assert sorted(failed) == [("broken", 0), ("broken", 1)]
    for element in failed.values():
        assert element["error"].startswith(
            "SetupError: setup line 3 'nosuch_module_cmd load cdo' failed (exit 127): "
        )  # numbered after the config's line
        assert "nosuch_module_cmd: command not found" in element["error"]
    logs = cli(FLOW, "logs", run_id, "broken", "1", "--run-dir", str(run_dir), cwd=tmp_path)
    assert "setup line 3 'nosuch_module_cmd load cdo' failed (exit 127)" in logs.stdout
    assert "nosuch_module_cmd: command not found" in logs.stdout


def test_the_environment_does_not_enter_the_identity(tmp_path: Path) -> None:
    env_steps.prepare(tmp_path)
    submit(tmp_path)
    env_steps.prepare(tmp_path, shared="changed")
    _, status = submit(tmp_path)
    counts = {task["task"]: task["counts"] for task in status["tasks"]}
    assert counts["probe"] == {"cached": 1}
    assert calls(tmp_path / "runs", "probe") == ["call"]


def test_a_dry_run_shows_the_variables_and_setup_lines(tmp_path: Path) -> None:
    env_steps.prepare(tmp_path)
    done = cli_with_mode(FLOW, "dry-run", "submit", "--run-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "export SHARED=task" in done.stdout
    assert "export FROM_CONFIG=config" in done.stdout
    assert "export QUOTES=''\"'\"'\"; touch pwned; echo x'" in done.stdout
    assert "'export ORDER=config'" in done.stdout
    assert "'export ORDER=\"$ORDER,task\"'" in done.stdout
    assert not (tmp_path / "pwned").exists()


def test_bad_setup_and_env_are_reported_before_anything_runs(tmp_path: Path) -> None:
    flow = tmp_path / "bad_flow.py"
    flow.write_text(
        textwrap.dedent(
            """
            from reflow import Workflow

            wf = Workflow("bad")

            @wf.job(setup=["module load a\\nmodule load b"], env={"1X": "v", "OK": "a\\x00"})
            def task() -> int:
                return 1

            if __name__ == "__main__":
                raise SystemExit(wf.cli())
            """
        )
    )
    done = cli(flow, "submit", "--run-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 2
    assert "3 errors" in done.stderr
    assert "task(setup): setup line 1 'module load a\\nmodule load b' contains a line break" in (
        done.stderr
    )
    assert "task(env): env name '1X' is not a shell variable name" in done.stderr
    assert "task(env): env OK='a\\x00' contains a NUL" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()
