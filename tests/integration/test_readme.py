"""The README's commands, executed as written, and its tour checked against the demo.

The first command installs reflow and runs the demo on the local executor into
``/tmp/reflow-demo``, which this test empties before and after. The second command is
``scripts/test`` itself, so it is not run here (that would recurse): the test checks that it
is named and that CI's ``.ci/run`` calls it.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reflow.definition.diagram import render_text

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEMO_RUN_DIR = Path("/tmp/reflow-demo")  # the path the README names
DEADLINE_S = 300


def section(title: str) -> str:
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no section {title!r}"
    return match.group(1)


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def first_commands() -> list[str]:
    blocks = fenced(section("Install: the first two commands"), "bash")
    assert len(blocks) == 2, "the section holds exactly two commands"
    return [block.strip() for block in blocks]


@pytest.fixture
def clean_demo_dir():
    shutil.rmtree(DEMO_RUN_DIR, ignore_errors=True)
    yield DEMO_RUN_DIR
    shutil.rmtree(DEMO_RUN_DIR, ignore_errors=True)


def test_first_command_installs_and_runs_the_demo_to_success(
    clean_demo_dir: Path, tmp_path: Path
) -> None:
    command = first_commands()[0]
    assert "\n" not in command
    assert str(clean_demo_dir) in command
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    # `pip` and `python` in the command are this interpreter's, wherever PATH points.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^run demo-\S+ succeeded after", done.stdout, re.M), done.stdout
    assert (clean_demo_dir / "reflow.sqlite").exists()


def test_second_command_is_the_test_script_that_ci_runs() -> None:
    assert first_commands()[1] == "scripts/test"
    assert os.access(ROOT / "scripts" / "test", os.X_OK)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^(exec )?scripts/test\b", ci, re.M)


def test_tour_is_the_demo_example() -> None:
    (tour,) = fenced(section("A 30-line tour"), "python")
    assert len(tour.splitlines()) <= 30
    namespace: dict[str, object] = {"__name__": "tour"}
    exec(compile(tour, "README.md", "exec"), namespace)
    demo = runpy.run_path(str(ROOT / "examples" / "demo_flow.py"))
    assert render_text(namespace["wf"].graph()) == render_text(demo["wf"].graph())  # type: ignore[attr-defined]


def test_links_point_at_files_that_exist() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", README.read_text())
    assert links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert missing == []
