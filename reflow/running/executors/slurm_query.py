"""Running: parsers of Slurm's answers (sbatch, sacct, squeue, scontrol). Pure, no I/O.

The Slurm executor runs the commands; these functions only read their text. Array rows come
as ``123_4`` or, for elements that have not started, collapsed as ``123_[5-9%2]``; both are
expanded to one ``"<job id>_<index>"`` key per element.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence

from reflow.definition.errors import SubmissionError
from reflow.running.executors.base import (
    FailureReason,
    JobState,
    JobStatus,
    PartitionLimits,
    how_it_ended,
)
from reflow.running.ranges import compress, expand

SACCT_FORMAT = "JobID,State,ExitCode,End"
"""The ``sacct --format`` that ``parse_sacct`` reads (with ``-X -n -P``)."""

SQUEUE_FORMAT = "JobArrayID:|,State:|,Reason:|,exit_code:|,EndTime:"
"""The ``squeue --Format`` that ``parse_squeue`` reads (with ``-h -r -t all``)."""

DEFAULT_MAX_ARRAY_SIZE = 1001
"""Slurm's own default when ``scontrol show config`` names no ``MaxArraySize``."""

ASSOC_LIMIT_FORMAT = "MaxSubmitJobs,GrpSubmitJobs,QOS"
"""The ``sacctmgr -n -P show assoc`` format that ``parse_assoc_submit_limits`` reads."""

QOS_LIMIT_FORMAT = "Name,MaxSubmitJobsPerUser,GrpSubmitJobs"
"""The ``sacctmgr -n -P show qos`` format that ``parse_qos_submit_limits`` reads."""

_ACTIVE = {
    "PENDING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
}
_FAILED = {
    "FAILED": FailureReason.EXIT_CODE,
    "SPECIAL_EXIT": FailureReason.EXIT_CODE,
    "TIMEOUT": FailureReason.TIMEOUT,
    "DEADLINE": FailureReason.TIMEOUT,
    "OUT_OF_MEMORY": FailureReason.OUT_OF_MEMORY,
    "CANCELLED": FailureReason.CANCELLED,
    "REVOKED": FailureReason.CANCELLED,
    "NODE_FAIL": FailureReason.NODE_FAIL,
    "PREEMPTED": FailureReason.PREEMPTED,
    "BOOT_FAIL": FailureReason.BOOT_FAIL,
}
_TRANSIENT = (
    "socket timed out",
    "timed out after",
    "unable to contact slurm controller",
    "resource temporarily unavailable",
    "temporarily unable to accept job",
    "slurm_receive_msg",
    "zero bytes were transmitted or received",
    "communication connection failure",
    "connection refused",
    "problem talking to the database",
    "rate limit",
)
_EXPLANATIONS = {
    "TIMEOUT": "the job ran past its time limit",
    "DEADLINE": "the job reached its deadline",
    "OUT_OF_MEMORY": "the job used more memory than it asked for",
    "CANCELLED": "the job was cancelled",
    "NODE_FAIL": "the node running the job failed",
    "PREEMPTED": "the job was preempted",
    "BOOT_FAIL": "the node failed to boot",
    "FAILED": "the job exited with an error",
}
_MAX_SIGNAL = 64
_KILLED_BY = ", killed by "
_ARRAY_ROW = re.compile(r"^(?P<parent>\d+)_(?P<spec>\d+|\[[^\]]*\])$")
_MAX_ARRAY_SIZE = re.compile(r"^\s*MaxArraySize\s*=\s*(\d+)\s*$", re.MULTILINE)


def parse_sbatch_job_id(stdout: str) -> str:
    """Read the job id from ``sbatch --parsable`` output (``"12345"`` or ``"12345;cluster"``).

    Raises:
        SubmissionError: If the output holds no job id.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    job_id = lines[-1].split(";", 1)[0].strip() if lines else ""
    if not job_id.isdigit():
        raise SubmissionError(f"sbatch printed no job id: {stdout.strip()!r}", value=stdout)
    return job_id


def parse_sacct(text: str) -> dict[str, JobStatus]:
    """Read ``sacct -X -n -P --format=JobID,State,ExitCode,End`` output.

    ``End`` is the cluster's local time (``2026-12-03T16:20:01``), ``Unknown`` while the job
    runs; it becomes the status's ``ended``.

    Returns:
        One status per job id (``"123"``, ``"123_4"``); collapsed array rows are expanded and
        step rows (``"123.batch"``) skipped. A later row for the same id wins.
    """
    found: dict[str, JobStatus] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3 or "." in fields[0] or not fields[0]:
            continue
        job_id, state_text, exit_text = fields[0], fields[1].strip(), fields[2].strip()
        code, signal = _exit_pair(exit_text)
        detail = f"{state_text} {exit_text}".strip()
        status = _with_end(_status(state_text, code, signal, detail), fields[3:])
        for key in _element_ids(job_id):
            found[key] = status
    return found


def _with_end(status: JobStatus, rest: Sequence[str]) -> JobStatus:
    """``status`` with ``ended`` from the first of ``rest``, when the job has ended."""
    ended = _timestamp(rest[0]) if rest else None
    if ended is None or status.state not in (JobState.DONE, JobState.FAILED):
        return status
    return dataclasses.replace(status, ended=ended)


def _timestamp(text: str) -> float | None:
    """Seconds since the epoch of Slurm's ``2026-12-03T16:20:01`` (local time); None if not one."""
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def parse_squeue(text: str) -> dict[str, JobStatus]:
    """Read ``squeue -h -r -t all --Format=JobArrayID:|,State:|,Reason:|,exit_code:|,EndTime:``.

    ``exit_code`` there is the raw wait status (exit code times 256 plus signal); ``EndTime``
    becomes an ended job's ``ended``, as in ``parse_sacct``.

    Returns:
        One status per job id, collapsed array rows expanded.
    """
    found: dict[str, JobStatus] = {}
    for line in text.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) < 4 or not fields[0]:
            continue
        job_id, state_text, reason, wait_text = fields[:4]
        wait = int(wait_text) if wait_text.isdigit() else 0
        code, signal = wait >> 8, wait & 0x7F
        detail = state_text if reason in ("", "None") else f"{state_text} ({reason})"
        status = _with_end(_status(state_text, code, signal, detail), fields[4:])
        for key in _element_ids(job_id):
            found[key] = status
    return found


SINFO_LIMITS_FORMAT = "%P|%m|%l"
"""``sinfo -h -o`` columns: partition (``*`` marks the default), memory per node, time limit."""


def parse_partition_limits(sinfo_text: str, partition: str | None) -> PartitionLimits:
    """The memory per node and time limit of ``partition`` (the default one when None).

    ``sinfo`` prints one line per partition and node state; the smallest memory of a
    partition's lines is what every node of it can give.
    """
    mems: list[int] = []
    times: list[int | None] = []
    for line in sinfo_text.splitlines():
        name, _, rest = line.strip().partition("|")
        mem_text, _, time_text = rest.partition("|")
        is_default = name.endswith("*")
        if (partition is None and not is_default) or (
            partition is not None and name.rstrip("*") != partition
        ):
            continue
        digits = mem_text.strip().rstrip("+")
        if digits.isdigit():
            mems.append(int(digits))
        times.append(slurm_time_s(time_text.strip()))
    known = [t for t in times if t is not None]
    return PartitionLimits(
        mem_mb=min(mems) if mems else None,
        time_s=min(known) if known and len(known) == len(times) else None,
    )


def slurm_time_s(text: str) -> int | None:
    """Seconds of a Slurm time (``[D-]HH:MM:SS``, ``MM:SS``, ``MM``); None for unlimited."""
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not all(p.isdigit() for p in parts) or not (days == "" or days.isdigit()):
        return None
    numbers = [int(p) for p in parts]
    if len(numbers) == 3:
        seconds = numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    elif len(numbers) == 2:
        seconds = numbers[0] * 60 + numbers[1] if not days else numbers[0] * 3600 + numbers[1] * 60
    else:
        seconds = numbers[0] * 60 if not days else numbers[0] * 3600
    return int(days or 0) * 86400 + seconds


def parse_max_array_size(scontrol_show_config_text: str) -> int:
    """Read ``MaxArraySize`` from ``scontrol show config`` (Slurm's default 1001 if absent)."""
    match = _MAX_ARRAY_SIZE.search(scontrol_show_config_text)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE


def parse_assoc_submit_limits(text: str) -> tuple[list[int], set[str]]:
    """Read ``sacctmgr -n -P show assoc where user=U format=MaxSubmitJobs,GrpSubmitJobs,QOS``.

    Returns:
        The submit limits set on the user's associations, and the QOS names they allow.
    """
    limits: list[int] = []
    qos: set[str] = set()
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3:
            continue
        limits += [int(value) for value in fields[:2] if value.strip().isdigit()]
        qos.update(name.strip() for name in fields[2].split(",") if name.strip())
    return limits, qos


def parse_qos_submit_limits(text: str, names: set[str]) -> list[int]:
    """Read ``sacctmgr -n -P show qos format=Name,MaxSubmitJobsPerUser,GrpSubmitJobs``.

    Returns:
        The submit limits of the QOS in ``names`` (every QOS listed when ``names`` is empty).
    """
    limits: list[int] = []
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3 or (names and fields[0].strip() not in names):
            continue
        limits += [int(value) for value in fields[1:3] if value.strip().isdigit()]
    return limits


def describe_failure(state_text: str) -> str:
    """A short explanation of a Slurm end state for people (``""`` when there is none)."""
    words = state_text.split()
    state = words[0].rstrip("+").upper() if words else ""
    return _EXPLANATIONS.get(state, "")


def is_transient_error(stderr: str) -> bool:
    """Tell whether a Slurm command failed for a reason that retrying may cure.

    Controller or database unreachable, timeouts, ``Resource temporarily unavailable`` and
    rate limiting are transient; refusals of the request itself (invalid partition,
    account, time limit, ...) are not.
    """
    lowered = stderr.lower()
    return any(marker in lowered for marker in _TRANSIENT)


_LIMITS = ("maxsubmitjob", "submit limit", "job violates accounting/qos policy")


def is_limit_error(stderr: str) -> bool:
    """Tell whether sbatch refused only because a submit limit is reached (try later)."""
    lowered = stderr.lower()
    return any(marker in lowered for marker in _LIMITS)


def is_accounting_disabled(stderr: str) -> bool:
    """Tell whether ``sacct`` failed because the cluster keeps no job accounting."""
    return "accounting storage is disabled" in stderr.lower()


def _element_ids(job_id: str) -> list[str]:
    match = _ARRAY_ROW.match(job_id)
    if not match:
        return [job_id]
    parent, spec = match.group("parent"), match.group("spec")
    try:
        return [f"{parent}_{index}" for index in expand(spec)]
    except ValueError:
        return [job_id]


def _exit_pair(text: str) -> tuple[int, int]:
    code, _, signal = text.partition(":")
    return (
        int(code) if code.isdigit() else 0,
        int(signal) if signal.isdigit() else 0,
    )


def _exit_code(code: int, signal: int) -> int | None:
    """A shell-style exit code: the code, else 128 + signal; None for Slurm's markers (0:125)."""
    if code or not signal:
        return code
    return 128 + signal if signal <= _MAX_SIGNAL else None


def _status(state_text: str, code: int, signal: int, detail: str) -> JobStatus:
    """Map a Slurm state (``"CANCELLED by 0"``, ``"FAILED"``) to a ``JobStatus``.

    A job that failed by a signal (sacct's ``ExitCode`` ``0:11``) has it named in its detail,
    ``FAILED 0:11, killed by SIGSEGV``, worded as the local executor words it.
    """
    words = state_text.split()
    state = words[0].rstrip("+").upper() if words else ""
    if state in _ACTIVE:
        return JobStatus(state=_ACTIVE[state], detail=detail)
    exit_code = _exit_code(code, signal)
    if state == "COMPLETED":
        return JobStatus(state=JobState.DONE, exit_code=exit_code, detail=detail)
    if state in _FAILED:
        if _FAILED[state] is FailureReason.EXIT_CODE and 0 < signal <= _MAX_SIGNAL:
            detail = f"{detail}, {how_it_ended(-signal)}"  # the state alone does not say why
        return JobStatus(
            state=JobState.FAILED, reason=_FAILED[state], exit_code=exit_code, detail=detail
        )
    return JobStatus(state=JobState.UNKNOWN, detail=detail)


def explained(job_id: str, status: JobStatus) -> JobStatus:
    """Name the job in the detail of an ended job, and say what its end state means."""
    if status.state not in (JobState.DONE, JobState.FAILED):
        return status
    named = _KILLED_BY in status.detail  # a named signal says more than the state's meaning
    explanation = "" if named else describe_failure(status.detail)
    detail = f"Slurm job {job_id} ended {status.detail}"
    return dataclasses.replace(status, detail=f"{detail}: {explanation}" if explanation else detail)


def parent_ids(job_ids: Sequence[str]) -> str:
    """The array job ids of ``job_ids`` (``123`` for ``123_4``), comma-separated, once each."""
    return ",".join(dict.fromkeys(job_id.partition("_")[0] for job_id in job_ids))


def scancel_targets(job_ids: Sequence[str]) -> list[str]:
    """Group ``P_i`` ids per array as ``P_[spec]`` so one call stays short."""
    targets: list[str] = []
    elements: dict[str, list[int]] = {}
    for job_id in dict.fromkeys(job_ids):
        parent, _, index = job_id.partition("_")
        if index.isdigit():
            elements.setdefault(parent, []).append(int(index))
        else:
            targets.append(job_id)
    for parent, indices in elements.items():
        spec = compress(indices)
        targets.append(f"{parent}_{spec}" if spec.isdigit() else f"{parent}_[{spec}]")
    return targets
