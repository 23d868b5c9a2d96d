"""Reading what Slurm jobs used from sacct, and the line of an output file that says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from reflow.running.executors.base import FailureReason, JobState, JobStatus
from reflow.running.executors.slurm_output import TAIL_BYTES, explaining_line, quote_output
from reflow.running.executors.slurm_script import output_path
from reflow.running.executors.slurm_usage import JobUsage, cpu_seconds, parse_usage
from reflow.running.rundir.layout import RunLayout

SACCT = """\
41_0|COMPLETED|7|00:02.500||512M|1|10
41_0.batch|COMPLETED|7|00:02.400|331.20M||1|
41_0.extern|COMPLETED|7|00:00.001|0.50M||1|
41_1|OUT_OF_MEMORY|3|00:01.000||1000Mc|2|UNLIMITED
41_1.batch|OUT_OF_MEMORY|3|00:01.000|1.5G||2|
41_[2-5%2]|PENDING|0|00:00:00||512M|1|10
42|COMPLETED|65|01:05:00||2G|4|120
"""


def test_usage_merges_each_elements_steps_into_one_figure_set() -> None:
    found = parse_usage(SACCT)
    assert set(found) == {"41_0", "41_1", "42"}
    assert found["41_0"] == JobUsage(
        state="COMPLETED",
        elapsed_s=7.0,
        cpu_s=2.5,
        peak_rss_mb=331.2,
        mem_mb=512.0,
        cpus=1,
        time_s=600.0,
    )
    oom = found["41_1"]
    assert (oom.state, oom.peak_rss_mb, oom.mem_mb, oom.time_s) == (
        "OUT_OF_MEMORY",
        1536.0,
        2000.0,
        None,
    )
    assert found["42"].peak_rss_mb is None
    assert found["42"].cpu_s == 3900.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:02.500", 2.5), ("01:02:03", 3723.0), ("2-00:00:01", 172801.0), ("", None), ("x", None)],
)
def test_total_cpu_reads_every_form_sacct_writes(text: str, seconds: float | None) -> None:
    assert cpu_seconds(text) == seconds


def failed(detail: str, reason: FailureReason) -> JobStatus:
    return JobStatus(state=JobState.FAILED, reason=reason, detail=detail)


def test_a_failed_jobs_detail_quotes_the_last_line_of_its_output_that_explains(
    tmp_path: Path,
) -> None:
    layout = RunLayout(tmp_path, "r1")
    oom = output_path(layout.logs_dir("work"), "work", "7_1")
    oom.parent.mkdir(parents=True)
    oom.write_text(
        "x" * (2 * TAIL_BYTES)
        + "\nslurmstepd: error: Detected 1 oom-kill event(s) in StepId=7.batch.\n\n"
    )
    missing = output_path(layout.logs_dir("other"), "other", "8_0")
    missing.parent.mkdir(parents=True)
    missing.write_text("/x/slurm_script: line 9: /no/python: No such file or directory\n")
    quiet = output_path(layout.logs_dir("work"), "work", "7_2")
    quiet.write_text("just some text\n")
    statuses = {
        "7_1": failed("Slurm job 7_1 ended OUT_OF_MEMORY", FailureReason.OUT_OF_MEMORY),
        "8_0": failed("Slurm job 8_0 ended FAILED 127:0", FailureReason.EXIT_CODE),
        "7_2": failed("Slurm job 7_2 ended FAILED 1:0", FailureReason.EXIT_CODE),
        "7_3": failed("Slurm job 7_3 ended TIMEOUT", FailureReason.TIMEOUT),
        "7_4": JobStatus(state=JobState.DONE, detail="Slurm job 7_4 ended COMPLETED"),
    }
    quoted = quote_output(statuses, layout)
    assert quoted["7_1"].detail == (
        "Slurm job 7_1 ended OUT_OF_MEMORY"
        " (slurmstepd: error: Detected 1 oom-kill event(s) in StepId=7.batch.)"
    )
    assert quoted["8_0"].detail.endswith("(/x/slurm_script: line 9: /no/python: No such file"
                                         " or directory)")  # fmt: skip
    assert quoted["8_0"].reason is FailureReason.EXIT_CODE
    assert {job: quoted[job] for job in ("7_2", "7_3", "7_4")} == {
        job: statuses[job] for job in ("7_2", "7_3", "7_4")
    }
    assert quote_output(statuses, None) == statuses


def test_a_long_line_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("error: " + "y" * 1000 + "\n")
    line = explaining_line(path)
    assert line is not None
    assert len(line) == 300
    assert line.endswith("...")
    assert explaining_line(tmp_path / "absent") is None
