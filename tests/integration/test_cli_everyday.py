"""Everyday use of a flow's command line, run as a user would: hints that can be pasted,
Ctrl-C while following a run, and output piped into a reader that stops early.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.integration.test_cli_hints import wait_until_running
from tests.integration.test_console import SLOW_FLOW, console_script, environment
from tests.reliability.processes import wait_for_workers

DEADLINE_S = 120
CLI_TAIL = '\nif __name__ == "__main__":\n    raise SystemExit(wf.cli())\n'
QUICK_FLOW = """
from reflow import Workflow

wf = Workflow("quick")


@wf.job()
def hello(greeting: str = "hi", ratio: float | None = 0.5) -> str:
    return f"{greeting} {ratio}"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_submit_prints_a_status_command_that_runs_as_pasted(tmp_path: Path) -> None:
    write(tmp_path / "my flows" / "flow v1.py", QUICK_FLOW + CLI_TAIL)
    run_dir = tmp_path / "run dir"
    env = environment(tmp_path)
    done = subprocess.run(
        [sys.executable, "my flows/flow v1.py", "submit", "--run-dir", str(run_dir),
         "--ratio", "none", "--wait"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split()[2]
    hint = f"python 'my flows/flow v1.py' status {run_id} --run-dir '{run_dir}'"
    assert f"  status: {hint}\n" in done.stdout
    words = shlex.split(hint)
    pasted = subprocess.run(
        [sys.executable, *words[1:]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert pasted.returncode == 0, pasted.stderr
    assert "SUCCEEDED" in pasted.stdout
    data = json.loads(
        subprocess.run(
            [console_script(), "status", run_id, "--run-dir", str(run_dir), "--json"],
            env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=True,
        ).stdout
    )  # fmt: skip
    assert data["state"] == "succeeded"


def start_following(tmp_path: Path, argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``argv`` in ``tmp_path``; return it and the run id once its elements run."""
    process = subprocess.Popen(
        argv, cwd=tmp_path, env=environment(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    run_id = ""
    watchdog = threading.Timer(DEADLINE_S, process.kill)  # reading a line has no deadline
    watchdog.start()
    try:
        for line in process.stdout:
            if line.startswith("submitted run "):
                run_id = line.split()[2]
            if "2 running" in line:
                break
    finally:
        watchdog.cancel()
    assert process.poll() is None, "the run ended or never started"
    assert run_id, "no run id printed"
    return process, run_id


def stop_run(tmp_path: Path, run_dir: Path, run_id: str) -> dict[str, object]:
    """Cancel the run (it must still be there to cancel) and return its status before."""
    env = environment(tmp_path)
    status = subprocess.run(
        [console_script(), "status", run_id, "--run-dir", str(run_dir), "--json"],
        env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=True,
    )  # fmt: skip
    subprocess.run(
        [console_script(), "cancel", run_id, "--run-dir", str(run_dir)],
        env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=True,
    )  # fmt: skip
    wait_for_workers(run_dir)
    data: dict[str, object] = json.loads(status.stdout)
    return data


def test_ctrl_c_during_submit_wait_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    flow = write(tmp_path / "slow_flow.py", SLOW_FLOW + CLI_TAIL)
    run_dir = tmp_path / "run"
    process, run_id = start_following(
        tmp_path, [sys.executable, str(flow), "submit", "--run-dir", str(run_dir), "--wait"]
    )
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130
    assert stderr.count("\n") == 1, stderr
    assert f"stopped following run {run_id}; it goes on in the background" in stderr
    assert f"follow it: reflow watch {run_id} --run-dir {run_dir};" in stderr
    assert f"cancel it: reflow cancel {run_id} --run-dir {run_dir}" in stderr
    assert stop_run(tmp_path, run_dir, run_id)["state"] == "running"


WAITING_SCRIPT = (
    SLOW_FLOW
    # the guard matters: a worker imports this file to find the tasks
    + '\nif __name__ == "__main__":\n'
    + "    import sys\n"
    + "    run = wf.submit(run_dir=sys.argv[1])\n"
    + "    print('submitted run', run.run_id, flush=True)\n"
    + "    WAIT\n"
)


def test_ctrl_c_in_run_wait_ends_a_flow_script_with_the_line_and_exit_code_130(
    tmp_path: Path,
) -> None:
    script = write(
        tmp_path / "waiting_flow.py",
        WAITING_SCRIPT.replace("WAIT", "run.wait(progress=True)\n    print('after the wait')"),
    )
    run_dir = tmp_path / "run"
    process, run_id = start_following(tmp_path, [sys.executable, str(script), str(run_dir)])
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, stderr
    assert stderr == (
        f"stopped following run {run_id}; it goes on in the background."
        f" follow it: reflow watch {run_id} --run-dir {run_dir};"
        f" cancel it: reflow cancel {run_id} --run-dir {run_dir}\n"
    )
    assert "after the wait" not in stdout
    assert stop_run(tmp_path, run_dir, run_id)["state"] == "running"


def test_ctrl_c_in_run_wait_still_raises_keyboard_interrupt_for_the_caller(
    tmp_path: Path,
) -> None:
    # a notebook cell or a REPL line stops on the KeyboardInterrupt; here the script sees it
    script = write(
        tmp_path / "notebook_like.py",
        WAITING_SCRIPT.replace(
            "WAIT",
            "try:\n        run.wait()\n    except KeyboardInterrupt as stop:\n"
            "        print('the cell stops:', stop, flush=True)\n"
            "    print('the run is', run.status(as_dict=True)['state'], flush=True)",
        ),
    )
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, str(script), str(run_dir)], cwd=tmp_path, env=environment(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    run_id = process.stdout.readline().split()[2]
    wait_until_running(run_dir, run_id)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == [
        f"the cell stops: stopped following run {run_id}; it goes on",
        "the run is running",
    ]
    assert stderr.startswith(f"stopped following run {run_id}; it goes on"), stderr
    assert stderr.count("\n") == 1, stderr
    assert stop_run(tmp_path, run_dir, run_id)["state"] == "running"


def closed_reader(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` with a stdout pipe whose reader is gone at once (like ``| head -0``)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, stdout=write_end, stderr=subprocess.PIPE, text=True,
            timeout=DEADLINE_S, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    flow = write(tmp_path / "quick_flow.py", QUICK_FLOW + CLI_TAIL)
    env = {**environment(tmp_path), "REFLOW_MODE": "dry-run"}
    run_dir = tmp_path / "run"
    for argv in (
        [sys.executable, str(flow), "submit", "--run-dir", str(run_dir)],
        [sys.executable, str(flow), "describe"],
        [sys.executable, str(flow), "dag"],
    ):
        code, stderr = closed_reader(argv, tmp_path, env)
        assert (code, stderr) == (141, ""), argv


def test_the_console_script_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    flow = write(tmp_path / "quick_flow.py", QUICK_FLOW + CLI_TAIL)
    env = environment(tmp_path)
    run_dir = tmp_path / "run"
    subprocess.run(
        [sys.executable, str(flow), "submit", "--run-dir", str(run_dir), "--wait"],
        cwd=tmp_path, env=env, capture_output=True, timeout=DEADLINE_S, check=True,
    )  # fmt: skip
    for command in ("runs", "status"):
        code, stderr = closed_reader(
            [console_script(), command, "--run-dir", str(run_dir)], tmp_path, env
        )
        assert (code, stderr) == (141, ""), command


MIXED_FAILURES_FLOW = """
from typing import Annotated
from reflow import Result, Workflow

wf = Workflow("mixed")


@wf.job()
def items() -> list[int]:
    return list(range(7))


@wf.array_job()
def check(item: Annotated[int, Result(step="items")]) -> int:
    if item % 3 == 1:
        raise ValueError(f"bad value {item}")
    if item % 3 == 2:
        raise KeyError(f"key{item}")
    return item
"""


def test_failures_are_grouped_by_exception_type_and_listed_in_full(tmp_path: Path) -> None:
    flow = write(tmp_path / "mixed_flow.py", MIXED_FAILURES_FLOW + CLI_TAIL)
    env = environment(tmp_path)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(flow), "submit", "--run-dir", str(run_dir), "--wait"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "  check: 2 failed (exception: ValueError)\n" in done.stdout
    assert "  check: 2 failed (exception: KeyError)\n" in done.stdout
    run_id = done.stdout.split()[2]

    def status(*extra: str) -> str:
        shown = subprocess.run(
            [console_script(), "status", run_id, "--run-dir", str(run_dir), *extra],
            env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=True,
        )  # fmt: skip
        return shown.stdout

    data = json.loads(status("--json"))
    groups = {(g["task"], g["type"]): g for g in data["failures"]}
    assert set(groups) == {("check", "ValueError"), ("check", "KeyError")}
    assert [e["element"] for e in groups["check", "ValueError"]["examples"]] == [1, 4]
    assert [(e["element"], e["type"]) for e in data["failed"]] == [
        (1, "ValueError"), (2, "KeyError"), (4, "ValueError"), (5, "KeyError"),
    ]  # fmt: skip
    assert data["failed"][1]["error"] == "KeyError: 'key2'"
    assert data["failed"][1]["log"] == str(run_dir / "runs" / run_id / "logs" / "check" / "2.log")
    listed = status("--failed").splitlines()
    assert listed[0] == f"run {run_id}: 4 failed or cancelled element(s)"
    assert listed[2].startswith("  check[1]  failed  exception  ValueError: bad value 1  /")
    assert [line.split()[0] for line in listed[2:]] == [
        "check[1]", "check[2]", "check[4]", "check[5]",
    ]  # fmt: skip
    for line in listed[2:]:
        assert Path(line.split()[-1]).is_file(), line


def test_a_flow_run_as_a_module_is_named_as_a_module_in_hints(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "flow.py", QUICK_FLOW + CLI_TAIL)
    done = subprocess.run(
        [sys.executable, "-m", "pkg.flow", "submit", "--greetin", "x"],
        cwd=tmp_path, env=environment(tmp_path), capture_output=True, text=True,
        timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        'error: unrecognized arguments: --greetin x; did you mean "--greeting"?;'
        " see: python -m pkg.flow submit --help\n"
    )


def test_a_flow_files_status_and_why_default_to_its_own_workflows_latest_run(
    tmp_path: Path,
) -> None:
    quick = write(tmp_path / "quick_flow.py", QUICK_FLOW + CLI_TAIL)
    other = write(tmp_path / "other_flow.py", QUICK_FLOW.replace('"quick"', '"other"') + CLI_TAIL)
    run_dir = str(tmp_path / "shared runs")  # one run directory for both, as a config may say
    env = environment(tmp_path)

    def run(flow: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(flow), *args, "--run-dir", run_dir],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE_S,
            check=False,
        )  # fmt: skip

    assert run(quick, "submit", "--wait").returncode == 0
    assert run(other, "submit", "--greeting", "ho", "--wait").returncode == 0
    shown = run(quick, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["workflow"] == "quick"  # not other's, the newest run
    why = run(quick, "why")
    assert why.stdout.startswith("run quick-"), why.stdout
    assert run(quick, "result", "latest", "hello").stdout == "hi 0.5\n"  # its own latest
    console = subprocess.run(
        [console_script(), "result", "latest", "hello", "--run-dir", run_dir],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert console.stdout == "ho 0.5\n"  # the console script's: the latest of any workflow
    # The Python API's Run takes latest as the console script does, in a fresh process.
    api = subprocess.run(
        [sys.executable, "-c", "import sys; from reflow import Run;"
         " run = Run(sys.argv[1], 'latest'); print(run.run_id.split('-')[0], run.result('hello'))",
         run_dir],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert (api.returncode, api.stdout) == (0, "other ho 0.5\n"), api.stderr
    empty = subprocess.run(
        [sys.executable, "-c", "import sys; from reflow import Run; Run(sys.argv[1], 'latest')",
         str(tmp_path / "no runs here")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert "UsageError" in empty.stderr, empty.stderr
    assert "holds no runs yet" in empty.stderr
    assert not (tmp_path / "no runs here").exists()  # asking made no run directory
    third = write(tmp_path / "third_flow.py", QUICK_FLOW.replace('"quick"', '"third"') + CLI_TAIL)
    none = run(third, "status")
    assert none.returncode == 2
    assert none.stderr.count("\n") == 1
    assert "holds no runs of workflow 'third' yet" in none.stderr


def test_a_run_directory_given_with_dot_dots_above_the_root_is_normalised(tmp_path: Path) -> None:
    quick = write(tmp_path / "quick_flow.py", QUICK_FLOW + CLI_TAIL)
    odd = "/.." + str(tmp_path / "runs")  # what ~/../../x gives for a home near the root
    done = subprocess.run(
        [sys.executable, str(quick), "submit", "--run-dir", odd, "--wait"],
        cwd=tmp_path, env=environment(tmp_path), capture_output=True, text=True,
        timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"--run-dir {tmp_path / 'runs'}" in done.stdout  # the hints name the plain path
    assert (tmp_path / "runs" / "reflow.sqlite").exists()
