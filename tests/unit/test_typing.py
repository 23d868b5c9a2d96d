"""Typing: decorated functions keep their signatures for mypy --strict, typos are caught."""

import subprocess
import sys
from pathlib import Path

import pytest

FLOW = """
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("typed")


@wf.job(time="00:05:00", mem="1G")
def prepare(start: Annotated[str, Param(help="Start")], run_dir: RunDir = RunDir()) -> list[str]:
    return [start]


@wf.array_job(cpus=2)
def convert(nc_file: Annotated[str, Result(step="prepare")]) -> str:
    return nc_file


@wf.job
def bare(count: int = 1) -> int:
    return count


files: list[str] = prepare("2025-01-01")
name: str = convert(nc_file=files[0])
total: int = bare(count=2)
reveal_type(prepare)
"""

BAD_CALLS = """
from flow import bare, convert, prepare

prepare(strat="2025-01-01")
convert(nc_file=3)
length: int = prepare("2025-01-01")
bare(cout=1)
"""


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory: pytest.TempPathFactory):
    """Run mypy --strict once on a good flow file and once on bad calls into it."""
    folder = tmp_path_factory.mktemp("typing")
    (folder / "flow.py").write_text(FLOW, encoding="utf-8")
    (folder / "calls.py").write_text(BAD_CALLS, encoding="utf-8")

    def mypy(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
             "--cache-dir", str(folder / ".cache"), "--config-file", "", target],
            cwd=folder, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    return mypy("flow.py"), mypy("calls.py")


def test_decorated_flow_passes_strict_mypy(mypy_run):
    good, _ = mypy_run
    errors = [line for line in good.stdout.splitlines() if ": error:" in line]
    assert errors == [], good.stdout + good.stderr
    assert good.returncode == 0, good.stdout + good.stderr


def test_decorated_function_keeps_its_signature(mypy_run):
    good, _ = mypy_run
    (note,) = [line for line in good.stdout.splitlines() if "Revealed type" in line]
    # mypy before 2.0 spells builtins out ("builtins.str"), later versions do not.
    signature = note.replace("builtins.", "")
    assert 'Revealed type is "def (start: str, run_dir: reflow.definition.markers.RunDir =)' in (
        signature
    )
    assert signature.endswith('-> list[str]"')


def test_misspelled_keyword_and_wrong_types_fail_mypy(mypy_run):
    _, bad = mypy_run
    assert bad.returncode == 1
    errors = [line for line in bad.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 4, bad.stdout
    assert 'calls.py:4: error: Unexpected keyword argument "strat" for "prepare"' in errors[0]
    assert 'calls.py:5: error: Argument "nc_file" to "convert" has incompatible type' in (errors[1])
    assert "calls.py:6: error: Incompatible types in assignment" in errors[2]
    assert 'calls.py:7: error: Unexpected keyword argument "cout" for "bare"' in errors[3]


def test_flow_file_is_importable_python(tmp_path: Path):
    (tmp_path / "flow.py").write_text(FLOW.replace("reveal_type(prepare)", ""), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", "import flow; print(flow.convert(nc_file='x'))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "x\n"), result.stderr
