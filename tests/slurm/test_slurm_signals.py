"""An element killed by a signal on Slurm: ``status`` and ``logs`` name the signal.

``tests/flows/log_steps.py`` with ``mode="segv"`` prints two lines, then kills its own worker
with SIGSEGV; accounting records the job as ``FAILED 0:11``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from reflow.running.commands.logs import show_logs
from tests.flows import log_steps
from tests.slurm.scheduler import status, wait_for_run

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


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
