"""Smoke test of the local Slurm cluster: a trivial batch job runs and sacct reports it."""

from __future__ import annotations

import subprocess
import time

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

UNFINISHED_STATES = {"", "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING"}


def run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def sacct_state(job_id: str) -> tuple[str, str]:
    out = run(["sacct", "-X", "-n", "-j", job_id, "--parsable2", "--format=State,ExitCode"])
    state, _, exit_code = out.strip().partition("|")
    return state, exit_code


def test_trivial_batch_job_completes_and_sacct_reports_it():
    submitted = run(
        ["sbatch", "--parsable", "--job-name=reflow-smoke", "--output=/dev/null", "--wrap", "true"]
    )
    job_id = submitted.strip().split(";")[0]
    assert job_id.isdigit(), submitted

    deadline = time.monotonic() + 60
    state, exit_code = sacct_state(job_id)
    while state in UNFINISHED_STATES and time.monotonic() < deadline:
        time.sleep(0.1)
        state, exit_code = sacct_state(job_id)

    assert (state, exit_code) == ("COMPLETED", "0:0")
