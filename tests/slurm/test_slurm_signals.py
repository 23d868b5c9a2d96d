"""An element killed by a signal on Slurm: ``status`` and ``logs`` name the signal.

``tests/flows/log_steps.py`` with ``mode="segv"`` prints two lines, then kills its own worker
with SIGSEGV; accounting records the job as ``FAILED 0:11``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from reflow.running.commands.logs import show_logs
from tests.flows import log_steps
from tests.slurm.scheduler import status, wait_for_run
from tests.slurm.test_slurm_runs import TEST_RESULT_GRACE_S

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

REQUIRE_ENV = "REFLOW_REQUIRE_SLURM"


@pytest.fixture
def slurm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Slurm mode, no user config or ``REFLOW_*`` settings, in a fresh working directory."""
    for key in list(os.environ):
        if key.startswith("REFLOW_") and key != REQUIRE_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("REFLOW_MODE", "slurm")
    monkeypatch.setenv("REFLOW_RESULT_GRACE", str(TEST_RESULT_GRACE_S))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def test_a_segfaulted_element_is_named_killed_by_sigsegv(tmp_path: Path, slurm_env: Path) -> None:
    run_dir = tmp_path / "runs"
    run_id = log_steps.wf.submit(run_dir=run_dir, count=1, lines=2, mode="segv").run_id
    assert wait_for_run(run_dir, run_id) == "failed", status(run_dir, run_id)
    (element,) = status(run_dir, run_id)["failed"]
    assert (element["task"], element["reason"]) == ("talk", "exit_code")
    assert element["error"].endswith(" ended FAILED 0:11, killed by SIGSEGV"), element["error"]
    assert element["error"].startswith("Slurm job ")
    out = io.StringIO()
    assert show_logs(run_dir, run_id, "talk", None, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[-2:] == [
        "element 0 line 2",
        "<== reflow: the element's process was killed by SIGSEGV",
    ]
