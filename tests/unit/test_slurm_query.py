"""Tests of the Slurm output parsers, on text captured from Slurm 22.05 and real sites."""

from __future__ import annotations

import time

import pytest

from reflow.definition.errors import SubmissionError
from reflow.running.executors.base import FailureReason, JobState, JobStatus
from reflow.running.executors.slurm_query import (
    DEFAULT_MAX_ARRAY_SIZE,
    explained,
    is_accounting_disabled,
    is_transient_error,
    parse_max_array_size,
    parse_sacct,
    parse_sbatch_job_id,
    parse_squeue,
)

# sacct -X -n -P --format=JobID,State,ExitCode -j 1,7,20,21,22,23,24,25,26,27
SACCT_SAMPLE = """\
1_0|COMPLETED|0:0
1_1|COMPLETED|0:0
1_3|FAILED|3:0
1_2|RUNNING|0:0
1_[4-9%2]|PENDING|0:0
7_0|CANCELLED by 0|0:0
7_[5-9%2]|CANCELLED by 1000|0:0
20|TIMEOUT|0:0
21|OUT_OF_MEMORY|0:125
22|NODE_FAIL|1:0
23|PREEMPTED|0:15
24|BOOT_FAIL|0:0
25|REQUEUED|0:0
26_4|FAILED|0:9
27|DEADLINE|0:0
"""


def test_parse_sbatch_job_id_reads_plain_id():
    assert parse_sbatch_job_id("12345\n") == "12345"


def test_parse_sbatch_job_id_drops_cluster_name():
    assert parse_sbatch_job_id("12345;cluster\n") == "12345"


def test_parse_sbatch_job_id_takes_last_line_after_notices():
    assert parse_sbatch_job_id("sbatch: notice: using default account\n678;test\n") == "678"


@pytest.mark.parametrize("stdout", ["", "\n", "Submitted batch job 42\n", "abc;test"])
def test_parse_sbatch_job_id_refuses_output_without_id(stdout):
    with pytest.raises(SubmissionError) as info:
        parse_sbatch_job_id(stdout)
    assert info.value.value == stdout


def test_parse_sacct_reads_array_element_rows():
    found = parse_sacct(SACCT_SAMPLE)
    assert found["1_0"] == JobStatus(state=JobState.DONE, exit_code=0, detail="COMPLETED 0:0")
    assert found["1_2"].state is JobState.RUNNING
    assert found["1_3"] == JobStatus(
        state=JobState.FAILED, reason=FailureReason.EXIT_CODE, exit_code=3, detail="FAILED 3:0"
    )


def test_parse_sacct_reads_the_end_time_of_ended_jobs_only():
    found = parse_sacct(
        "5_0|COMPLETED|0:0|2026-12-03T16:20:01\n5_1|RUNNING|0:0|Unknown\n"
        "5_2|NODE_FAIL|1:0|2026-12-03T16:21:00\n5_3|PENDING|0:0|2026-12-03T16:22:00\n"
    )
    local = time.mktime((2026, 12, 3, 16, 20, 1, 0, 0, -1))
    assert found["5_0"].ended == local
    assert found["5_2"].ended == local + 59
    assert found["5_1"].ended is None
    assert found["5_3"].ended is None  # a pending job has not ended, whatever the field says


def test_parse_squeue_reads_the_end_time_of_ended_jobs():
    found = parse_squeue("5_0|COMPLETED|None|0|2026-12-03T16:20:01\n5_1|RUNNING|None|0|N/A\n")
    assert found["5_0"].ended == time.mktime((2026, 12, 3, 16, 20, 1, 0, 0, -1))
    assert found["5_1"].ended is None


def test_parse_sacct_expands_collapsed_pending_rows():
    found = parse_sacct(SACCT_SAMPLE)
    assert [found[f"1_{index}"].state for index in range(4, 10)] == [JobState.PENDING] * 6
    assert "1_[4-9%2]" not in found


def test_parse_sacct_reads_cancelled_by_uid():
    found = parse_sacct(SACCT_SAMPLE)
    for job_id in ["7_0", "7_5", "7_9"]:
        assert found[job_id].state is JobState.FAILED
        assert found[job_id].reason is FailureReason.CANCELLED
    assert found["7_9"].detail == "CANCELLED by 1000 0:0"


@pytest.mark.parametrize(
    ("job_id", "reason", "exit_code"),
    [
        ("20", FailureReason.TIMEOUT, 0),
        ("21", FailureReason.OUT_OF_MEMORY, None),
        ("22", FailureReason.NODE_FAIL, 1),
        ("23", FailureReason.PREEMPTED, 143),
        ("24", FailureReason.BOOT_FAIL, 0),
        ("26_4", FailureReason.EXIT_CODE, 137),
        ("27", FailureReason.TIMEOUT, 0),
    ],
)
def test_parse_sacct_maps_failure_states(job_id, reason, exit_code):
    status = parse_sacct(SACCT_SAMPLE)[job_id]
    assert status.state is JobState.FAILED
    assert status.reason is reason
    assert status.exit_code == exit_code


# sacct -X -n -P --format=JobID,State,ExitCode,End: a worker that crashed, one the kernel killed
SACCT_SIGNALS = """\
31_0|FAILED|0:11|2026-12-03T16:20:01
31_1|FAILED|0:9|2026-12-03T16:20:02
31_2|FAILED|1:0|2026-12-03T16:20:03
31_3|CANCELLED by 1000|0:15|2026-12-03T16:20:04
31_4|TIMEOUT|0:9|2026-12-03T16:20:05
"""


def test_a_job_failed_by_a_signal_names_it_as_the_local_executor_does():
    found = {key: explained(key, status) for key, status in parse_sacct(SACCT_SIGNALS).items()}
    assert found["31_0"].detail == "Slurm job 31_0 ended FAILED 0:11, killed by SIGSEGV"
    assert found["31_0"].reason is FailureReason.EXIT_CODE
    assert found["31_0"].exit_code == 139
    assert found["31_1"].detail == (
        "Slurm job 31_1 ended FAILED 0:9, killed by SIGKILL (out of memory?)"
    )
    assert found["31_2"].detail == "Slurm job 31_2 ended FAILED 1:0: the job exited with an error"
    # Slurm's own signals at a cancel or the time limit: the state says why
    assert "killed by" not in found["31_3"].detail
    assert (
        found["31_4"].detail == "Slurm job 31_4 ended TIMEOUT 0:9: the job ran past its time limit"
    )


def test_squeue_names_the_signal_in_the_wait_status_of_a_failed_job():
    found = parse_squeue("8_0|FAILED|NonZeroExitCode|11|2026-12-03T16:20:01\n")
    assert explained("8_0", found["8_0"]).detail == (
        "Slurm job 8_0 ended FAILED (NonZeroExitCode), killed by SIGSEGV"
    )


def test_parse_sacct_treats_requeued_as_pending():
    assert parse_sacct(SACCT_SAMPLE)["25"].state is JobState.PENDING


def test_parse_sacct_skips_steps_blank_and_malformed_lines():
    text = "5|COMPLETED|0:0\n5.batch|COMPLETED|0:0\n5.extern|COMPLETED|0:0\n\ngarbage\n"
    assert list(parse_sacct(text)) == ["5"]


def test_parse_sacct_unknown_state_is_unknown_with_detail():
    status = parse_sacct("9|WEIRD_NEW_STATE|0:0\n")["9"]
    assert status.state is JobState.UNKNOWN
    assert "WEIRD_NEW_STATE" in status.detail


def test_parse_sacct_later_row_wins():
    text = "9|NODE_FAIL|0:0\n9|RUNNING|0:0\n"
    assert parse_sacct(text)["9"].state is JobState.RUNNING


# squeue -h -r -t all --Format=JobArrayID:|,State:|,Reason:|,exit_code: -j 1,7,8
SQUEUE_SAMPLE = """\
1_2|PENDING|JobArrayTaskLimit|0
1_[4-5%2]|PENDING|JobArrayTaskLimit|0
1_1|RUNNING|None|0
1_0|COMPLETED|None|0
1_3|FAILED|NonZeroExitCode|768
7_5|CANCELLED|Resources|0
7_1|COMPLETING|None|15
8|PENDING|Dependency|0
"""


def test_parse_squeue_reads_states_and_reasons():
    found = parse_squeue(SQUEUE_SAMPLE)
    assert found["1_2"] == JobStatus(state=JobState.PENDING, detail="PENDING (JobArrayTaskLimit)")
    assert found["1_5"].state is JobState.PENDING
    assert found["1_1"] == JobStatus(state=JobState.RUNNING, detail="RUNNING")
    assert found["1_0"].state is JobState.DONE
    assert found["7_1"].state is JobState.RUNNING
    assert found["8"].detail == "PENDING (Dependency)"


def test_parse_squeue_reads_exit_code_from_wait_status():
    status = parse_squeue(SQUEUE_SAMPLE)["1_3"]
    assert (status.state, status.reason, status.exit_code) == (
        JobState.FAILED,
        FailureReason.EXIT_CODE,
        3,
    )


def test_parse_squeue_reads_cancelled():
    status = parse_squeue(SQUEUE_SAMPLE)["7_5"]
    assert (status.state, status.reason) == (JobState.FAILED, FailureReason.CANCELLED)


CONFIG_SAMPLE = """\
Configuration data as of 2025-01-01T12:00:00
AccountingStorageBackupHost = (null)
MaxArraySize            = 10001
MaxJobCount             = 100000
"""


def test_parse_max_array_size_reads_scontrol_show_config():
    assert parse_max_array_size(CONFIG_SAMPLE) == 10001


def test_parse_max_array_size_defaults_to_slurm_default():
    assert parse_max_array_size("MaxJobCount = 5\n") == DEFAULT_MAX_ARRAY_SIZE == 1001


@pytest.mark.parametrize(
    "stderr",
    [
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        (
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
            "(connect failure)"
        ),
        "sbatch: error: Batch job submission failed: Resource temporarily unavailable",
        "sbatch: error: Job submit/allocate failed: Resource temporarily unavailable",
        "sbatch: error: slurm_receive_msg: Zero Bytes were transmitted or received",
        "squeue: error: slurm_receive_msg: Socket timed out on send/recv operation",
        (
            "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent "
            "connection to host:localhost:6819: Connection refused\n"
            "sacct: error: Problem talking to the database: Connection refused"
        ),
        "sbatch: error: Batch job submission failed: RPC rate limit exceeded, try again later",
        "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying",
        "reflow: sbatch timed out after 60 s",
    ],
)
def test_is_transient_error_recognizes_retryable_failures(stderr):
    assert is_transient_error(stderr)


@pytest.mark.parametrize(
    "stderr",
    [
        "sbatch: error: Batch job submission failed: Invalid partition name specified",
        (
            "sbatch: error: Batch job submission failed: Invalid account or account/partition "
            "combination specified"
        ),
        (
            "sbatch: error: Batch job submission failed: Requested time limit is invalid "
            "(missing or exceeds some limit)"
        ),
        "sbatch: error: Batch job submission failed: Invalid job array specification",
        (
            "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
            "(job submit limit, user's size and/or time limits)"
        ),
        "sbatch: error: Batch script contains DOS line breaks (\\r\\n)",
        "reflow: cannot run sbatch: command not found",
        "",
    ],
)
def test_is_transient_error_rejects_permanent_refusals(stderr):
    assert not is_transient_error(stderr)


def test_is_accounting_disabled_reads_sacct_message():
    assert is_accounting_disabled("sacct: error: Slurm accounting storage is disabled\n")
    assert not is_accounting_disabled("sacct: error: Invalid job id specified\n")
