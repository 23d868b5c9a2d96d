"""A task's compute-node environment on the local executor, as a user sees it: ``setup=`` lines
and ``env=`` variables (and the config's) reach the task, a failing setup line fails the
elements with its line and output, and a dry run shows both."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.integration.flowfiles import calls, cli, cli_with_mode, submit_and_wait

HOSTILE = {
    "DOLLAR": "$(touch {marker})",
    "TICKS": "`touch {marker}`",
    "QUOTES": "'\"; echo x",
    "NEWLINE": "a\nb",
    "UNICODE": "é ☃",
    "EMPTY": "",
}

FLOW = """
import json, os, subprocess
from pathlib import Path
from typing import Annotated

from reflow import Result, RunDir, Workflow

wf = Workflow("envflow")
HERE = Path(__file__).parent
HOSTILE = json.loads((HERE / "hostile.json").read_text())


def count(run_dir: Path, task: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write("call\\n")


@wf.job(
    setup=[f"export PATH={HERE}/bin:$PATH", 'export ORDER="$ORDER,task"'],
    env={**HOSTILE, "SHARED": "task", "NUMBER": 7},
)
def probe(run_dir: RunDir = RunDir()) -> list[str]:
    count(run_dir, "probe")
    tool = subprocess.run(["envtool"], capture_output=True, text=True, check=True).stdout
    names = [*HOSTILE, "SHARED", "NUMBER", "FROM_CONFIG", "ORDER"]
    seen = {name: os.environ.get(name) for name in names}
    (run_dir / "seen.json").write_text(json.dumps({"tool": tool.strip(), "env": seen}))
    return ["a", "b"]


@wf.array_job(setup=["true", "nosuch_module_cmd load cdo"])
def broken(item: Annotated[str, Result(step="probe")], run_dir: RunDir = RunDir()) -> str:
    count(run_dir, "broken")
    return item


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""

CONFIG = """
[executor]
setup = ['export ORDER=config']

[executor.env]
SHARED = "{shared}"
FROM_CONFIG = "{shared}"
"""


def make_flow(tmp_path: Path, *, shared: str = "config") -> Path:
    """The flow, a tool on a private PATH entry, hostile values, and a config file."""
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    (tools / "envtool").write_text("#!/bin/sh\necho from envtool\n")
    (tools / "envtool").chmod(0o755)
    marker = tmp_path / "pwned"
    hostile = {name: value.format(marker=marker) for name, value in HOSTILE.items()}
    (tmp_path / "hostile.json").write_text(json.dumps(hostile))
    config = tmp_path / "config" / "reflow" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(textwrap.dedent(CONFIG).format(shared=shared))
    flow = tmp_path / "env_flow.py"
    flow.write_text(FLOW)
    return flow


def test_setup_and_env_reach_the_task_and_a_failing_setup_line_fails_its_elements(
    tmp_path: Path,
) -> None:
    flow = make_flow(tmp_path)
    run_dir = tmp_path / "runs"
    run_id, status = submit_and_wait(flow, run_dir)
    assert status["exit_code"] == 1
    seen = json.loads((run_dir / "seen.json").read_text())
    assert seen["tool"] == "from envtool"  # the setup line put bin/ first on PATH
    hostile = json.loads((tmp_path / "hostile.json").read_text())
    assert seen["env"] == {
        **hostile,
        "SHARED": "task",  # the task's variable replaces the config's
        "NUMBER": "7",
        "FROM_CONFIG": "config",
        "ORDER": "config,task",  # the config's setup lines run first
    }
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
    logs = cli(flow, "logs", run_id, "broken", "1", "--run-dir", str(run_dir), cwd=tmp_path)
    assert "setup line 3 'nosuch_module_cmd load cdo' failed (exit 127)" in logs.stdout
    assert "nosuch_module_cmd: command not found" in logs.stdout


def test_the_environment_does_not_enter_the_identity(tmp_path: Path) -> None:
    flow = make_flow(tmp_path)
    run_dir = tmp_path / "runs"
    submit_and_wait(flow, run_dir)
    make_flow(tmp_path, shared="changed")
    _, status = submit_and_wait(flow, run_dir)
    counts = {task["task"]: task["counts"] for task in status["tasks"]}
    assert counts["probe"] == {"cached": 1}
    assert calls(run_dir, "probe") == ["call"]


def test_a_dry_run_shows_the_variables_and_setup_lines(tmp_path: Path) -> None:
    flow = make_flow(tmp_path)
    done = cli_with_mode(flow, "dry-run", "submit", "--run-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "export SHARED=task" in done.stdout
    assert "export FROM_CONFIG=config" in done.stdout
    assert "export QUOTES=''\"'\"'\"; echo x'" in done.stdout
    assert "'export ORDER=config'" in done.stdout
    assert "'export ORDER=\"$ORDER,task\"'" in done.stdout
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.calls"))


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
