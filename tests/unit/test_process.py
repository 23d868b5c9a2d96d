"""Tests of run_command: output capture, missing programs, timeouts, environment, cwd."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from reflow.running.process import NOT_EXECUTABLE, NOT_FOUND, TIMED_OUT, run_command


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_command_captures_stdout_stderr_and_returncode():
    result = run_command(
        python("import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"),
        timeout_s=30,
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok
    assert result.argv[0] == sys.executable


def test_run_command_passes_arguments_without_a_shell():
    text = "$(echo hi) `id` ; | > 'q' \"d\"\nline"
    result = run_command([*python("import sys; print(sys.argv[1], end='')"), text], timeout_s=30)
    assert result.ok
    assert result.stdout == text


def test_run_command_reports_missing_program_as_127():
    result = run_command(["reflow-no-such-program-xyz", "--flag"], timeout_s=30)
    assert result.returncode == NOT_FOUND == 127
    assert "reflow-no-such-program-xyz" in result.stderr
    assert "not found" in result.stderr


def test_run_command_reports_non_executable_file_as_126(tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hi\n")
    result = run_command([str(script)], timeout_s=30)
    assert result.returncode == NOT_EXECUTABLE == 126
    assert str(script) in result.stderr


def test_run_command_reports_missing_cwd_as_126(tmp_path):
    missing = tmp_path / "missing"
    result = run_command(python("pass"), timeout_s=30, cwd=missing)
    assert result.returncode == NOT_EXECUTABLE
    assert str(missing) in result.stderr


def test_run_command_kills_after_timeout_and_reports_124():
    started = time.monotonic()
    result = run_command(
        python("import sys, time; print('partial', flush=True); time.sleep(30)"), timeout_s=1
    )
    assert time.monotonic() - started < 10
    assert result.returncode == TIMED_OUT == 124
    assert "timed out after 1 s" in result.stderr
    assert result.stdout == "partial\n"


def test_run_command_env_replaces_the_environment():
    result = run_command(
        python("import os; print(sorted(k for k in os.environ if k.startswith('RF')))"),
        timeout_s=30,
        env={"RF_ONE": "1"},
    )
    assert result.stdout == "['RF_ONE']\n"


def test_run_command_runs_in_cwd(tmp_path: Path):
    result = run_command(python("import os; print(os.getcwd())"), timeout_s=30, cwd=tmp_path)
    assert Path(result.stdout.strip()).resolve() == tmp_path.resolve()


def test_run_command_replaces_undecodable_output():
    result = run_command(python("import sys; sys.stdout.buffer.write(b'a\\xffb')"), timeout_s=30)
    assert result.stdout == "a\ufffdb"


def test_run_command_refuses_empty_argv_as_a_bug():
    with pytest.raises(ValueError, match="empty"):
        run_command([], timeout_s=1)
