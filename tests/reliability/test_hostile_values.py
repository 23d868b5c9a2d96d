"""Hostile values: whatever text a user passes reaches the task exactly, and runs nothing.

Parameter values with quotes, ``$(...)``, backticks, newlines, leading dashes and any
NUL-free unicode go through a real local run (the CLI as a subprocess, and ``submit()``);
the task writes what it received and the test compares. Run directories and flow folders
whose paths hold spaces, quotes and ``$`` work end to end. (That no module of the package
uses ``shell=True``, ``eval``, ``exec``, ``pickle`` or ``os.system`` is checked by
``tests/unit/test_public_api.py``; batch-script quoting by ``tests/unit/test_slurm_script``.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.flows.echo_value import wf as echo_wf

FLOW = Path(__file__).resolve().parents[1] / "flows" / "echo_value.py"
NASTY = (
    "'", '"', "$(touch pwned)", "`touch pwned`", "\n", "\r\n", "--force", "-x", "; rm -rf ~",
    "\\", "${HOME}", "%(x)s", "{0}", "ünï©ødé ☃", "\t", " ", "*", "~", "&&", "|", ">", "#",
    "\u202e", "\U0001d54f",
)  # fmt: skip
NUL_FREE = st.characters(codec="utf-8", exclude_characters="\x00")
HOSTILE = st.lists(st.sampled_from(NASTY) | st.text(NUL_FREE, max_size=8), max_size=6).map("".join)
AWKWARD_DIR = "run dir 'single' \"double\" $(touch pwned) `x` ünï"


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def received(run_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((run_dir / "received.json").read_text(encoding="utf-8"))
    return data


def no_command_ran(*folders: Path) -> None:
    for folder in folders:
        assert not list(folder.rglob("pwned")), folder


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE)
@example(text="$(touch pwned) `touch pwned` 'q' \"dq\"\n--force -x")
@example(text="-")
def test_cli_parameter_values_reach_the_task_exactly(text: str) -> None:
    with tempfile.TemporaryDirectory(prefix="reflow hostile ") as scratch:
        base = Path(scratch)
        run_dir = base / AWKWARD_DIR
        done = subprocess.run(
            [
                sys.executable,
                str(FLOW),
                "submit",
                "--run-dir",
                str(run_dir),
                f"--text={text}",
                f"--where={text or '.'}",
                "--words",
                "plain",
                f"--words={text}",
                "--wait",
            ],
            cwd=base,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        # A relative Path parameter is made absolute in the folder submit ran in.
        where = str(base / Path(text or "."))
        assert received(run_dir) == {"text": text, "where": where, "words": [text]}
        no_command_ran(base, FLOW.parent)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE, words=st.lists(HOSTILE, max_size=3))
@example(text="\n$(id)\n", words=["-", "--", "`id`"])
def test_submit_values_reach_the_task_exactly(text: str, words: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="reflow hostile ") as scratch:
        run_dir = Path(scratch) / AWKWARD_DIR
        run = echo_wf.submit(run_dir=run_dir, text=text, where=Path(text or "."), words=words)
        assert run.wait(timeout=120) == "succeeded"
        where = str(Path.cwd() / Path(text or "."))
        assert received(run_dir) == {"text": text, "where": where, "words": words}
        no_command_ran(Path(scratch))


def test_awkward_flow_and_run_directory_paths_work_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "flow folder 'q' \"dq\" $(touch pwned)"
    folder.mkdir()
    flow = folder / "echo flow $x.py"
    shutil.copy(FLOW, flow)
    run_dir = tmp_path / AWKWARD_DIR

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        return subprocess.run(
            [sys.executable, str(flow), *args, "--run-dir", str(run_dir)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    submitted = cli("submit", "--text", "hello", "--wait")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    run_id = submitted.stdout.split("submitted run ", 1)[1].split()[0]
    assert received(run_dir)["text"] == "hello"
    status = cli("status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "succeeded"
    logs = cli("logs", run_id, "record")
    assert logs.returncode == 0, logs.stderr
    assert str(run_dir) in logs.stdout
    assert cli("runs").returncode == 0
    assert cli("retry", run_id, "--wait").returncode == 0
    no_command_ran(tmp_path)
