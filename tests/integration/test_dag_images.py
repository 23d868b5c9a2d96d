"""``dag --format svg|png`` through Graphviz's ``dot``, and a clear error without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_flow.py"


def run_dag(*args: str, cwd: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, str(DEMO), "dag", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_dag_image_is_drawn_by_dot(tmp_path: Path, fmt: str, magic: bytes) -> None:
    target = tmp_path / f"graph.{fmt}"
    done = run_dag("--format", fmt, "--output", str(target), cwd=tmp_path, path=os.environ["PATH"])
    assert done.returncode == 0, done.stderr
    assert magic in target.read_bytes()
    assert not list(tmp_path.glob("*.dot"))


def test_dag_image_without_dot_is_a_one_line_error(tmp_path: Path) -> None:
    done = run_dag("--format", "svg", cwd=tmp_path, path=str(Path(sys.executable).parent))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "Graphviz" in done.stderr
    assert list(tmp_path.iterdir()) == []
