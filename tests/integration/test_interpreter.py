"""A configured interpreter that cannot run is refused at submit, naming where it was set.

A path in a folder the submitting host cannot see is let through: it may exist on the nodes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FLOW = Path(__file__).resolve().parents[1] / "flows" / "demo_steps.py"


@pytest.mark.parametrize(
    ("python", "says"),
    [
        ("{folder}/python3.99", "does not exist"),
        ("no-such-python", "is not on PATH"),
        ("{not_executable}", "cannot be run: it is not executable"),
    ],
)
def test_a_broken_interpreter_is_one_line_at_submit(tmp_path: Path, python: str, says: str) -> None:
    plain = tmp_path / "python3"
    plain.write_text("#!/bin/sh\n")
    python = python.format(not_executable=plain, folder=tmp_path)
    run_dir = tmp_path / "runs"
    env = {
        **os.environ,
        "REFLOW_MODE": "local",
        "REFLOW_PYTHON": python,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    done = subprocess.run(
        [sys.executable, str(FLOW), "submit", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert says in line
    assert repr(python) in line
    assert "REFLOW_PYTHON" in line
    assert not run_dir.exists()
