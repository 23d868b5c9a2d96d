"""The shell lines that make a task's environment and start its worker, run by a real bash."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflow.definition.environment import Environment
from reflow.definition.errors import SubmissionError
from reflow.running.executors.launch import launch_lines
from reflow.running.process import run_command

# The "worker" prints its arguments on stdout and its environment on stderr, NUL-separated.
PRINTER = ("bash", "-c", '[ "$#" -eq 0 ] || printf "%s\\0" "$@"; env -0 >&2', "worker")


def launch(
    tmp_path: Path, environment: Environment, *args: str
) -> tuple[list[str], dict[str, str]]:
    script = tmp_path / "launch.sh"
    script.write_text("\n".join(launch_lines(environment, [*PRINTER, *args], task="t")) + "\n")
    done = run_command(["bash", str(script)], timeout_s=30, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    entries = [entry.partition("=") for entry in done.stderr.split("\0")[:-1]]
    return done.stdout.split("\0")[:-1], {name: value for name, _, value in entries}


def test_without_an_environment_the_worker_is_execd_alone() -> None:
    assert launch_lines(Environment(), ["python", "-m", "w", "a b"], task="t") == [
        "exec -- python -m w 'a b'"
    ]


_VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_VALUES, min_size=1, max_size=3))
def test_every_variable_reaches_the_worker_exactly(tmp_path: Path, values: list[str]) -> None:
    env = tuple((f"V{i}", value) for i, value in enumerate(values))
    argv, environ = launch(tmp_path, Environment(env=env), "--x")
    assert argv == ["--x"]
    assert [environ[name] for name, _ in env] == values


def test_hostile_values_have_no_side_effect(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = {
        "A": f"$(touch {marker})",
        "B": f"`touch {marker}`",
        "C": "'\"; echo x",
        "D": "a\nb\r\nc",
        "E": "",
        "F": "é ☃",
    }
    _, environ = launch(tmp_path, Environment(env=tuple(sorted(hostile.items()))))
    assert {name: environ[name] for name in hostile} == hostile
    assert not marker.exists()


def test_setup_lines_run_in_order_in_the_shell_that_starts_the_worker(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    setup = (
        f"export PATH={tools}:$PATH",
        'export GREETING="hello $NAME"',  # variables are set before the setup lines run
        "greet() { :; }; unset NAME",
    )
    argv, environ = launch(tmp_path, Environment(setup=setup, env=(("NAME", "world"),)))
    assert argv == []
    assert environ["PATH"].split(":")[0] == str(tools)
    assert environ["GREETING"] == "hello world"
    assert "NAME" not in environ
    assert not [name for name in environ if name.startswith("reflow_")]


def test_the_first_failing_line_ends_the_setup_and_is_passed_to_the_worker(
    tmp_path: Path,
) -> None:
    later = tmp_path / "later"
    setup = ("true", "echo partial; echo oops >&2; (exit 3)", f"touch {later}")
    argv, _ = launch(tmp_path, Environment(setup=setup), "--elements", "0-2")
    assert argv == [
        *("--elements", "0-2", "--setup-failed=2:3"),
        "--setup-line=echo partial; echo oops >&2; (exit 3)",
        "--setup-output=partial\noops",
    ]
    assert not later.exists()


def test_a_line_that_exits_the_shell_is_reported_like_a_failure(tmp_path: Path) -> None:
    later = tmp_path / "later"
    setup = ("echo checking", "[ -d /no/such/dir ] || exit 4", f"touch {later}")
    argv, _ = launch(tmp_path, Environment(setup=setup))
    assert argv == [
        "--setup-failed=2:4",
        "--setup-line=[ -d /no/such/dir ] || exit 4",
        "--setup-output=",
    ]
    assert not later.exists()


def test_a_syntax_error_is_the_lines_failure_not_the_scripts(tmp_path: Path) -> None:
    argv, _ = launch(tmp_path, Environment(setup=("if true; then",)))
    assert argv[0] == "--setup-failed=1:2"
    assert argv[1] == "--setup-line=if true; then"
    assert "syntax error" in argv[2]


def test_a_nul_in_a_value_or_line_is_refused_before_anything_runs() -> None:
    for environment in (Environment(env=(("A", "a\x00b"),)), Environment(setup=("a\x00",))):
        with pytest.raises(SubmissionError) as caught:
            launch_lines(environment, ["python"], task="t")
        assert caught.value.task == "t"


def test_a_cancel_during_the_setup_starts_no_worker(tmp_path: Path) -> None:
    started = tmp_path / "started"
    setup = (f"touch {started}; sleep 30",)
    script = tmp_path / "launch.sh"
    script.write_text("\n".join(launch_lines(Environment(setup=setup), PRINTER, task="t")))
    with subprocess.Popen(
        ["bash", str(script)], stdout=subprocess.PIPE, start_new_session=True
    ) as process:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGTERM)  # as a cancel signals the chunk's group
        out, _ = process.communicate(timeout=30)
    assert started.exists()
    assert process.returncode == 143
    assert out == b""  # the worker never started
