"""Running: the Slurm executor: sbatch array jobs, scancel, and states from sacct or squeue.

Every scheduler call (sbatch, sacct, squeue, scontrol, scancel, sacctmgr) goes through one
private method and is counted in ``calls`` (a ``Counter`` keyed by program), so tests and
benchmarks can assert on the load reflow puts on the controller.
Failures that retrying may cure (``is_transient_error``) are retried with exponential
backoff, up to ``max_attempts`` calls; the sleep function is injectable.

How array indices map to elements (the worker must follow the same rule):

- When every element index is below the cluster's ``MaxArraySize`` and their range spec fits
  slurmctld's 4096-character limit on ``--array``, one array job is submitted whose array
  indices *are* the elements (``--array=0,3,7-9``), and the worker command is
  ``request.command`` unchanged: element = ``$SLURM_ARRAY_TASK_ID``. The job id of element
  ``e`` is ``<job id>_<e>``.
- Otherwise ``request.elements`` is cut, in order, into chunks of at most ``MaxArraySize``
  elements, each submitted as its own array ``0..k-1`` from a numbered script beside
  ``request.script_path`` (``convert.0.sbatch``, ``convert.1.sbatch``, ...; a single chunk
  keeps ``script_path``). Its worker command is ``request.command`` plus
  ``--array-offset N``: element = ``request.elements[N + $SLURM_ARRAY_TASK_ID]``. The job id
  of each element is ``<job id of its chunk>_<array index>``.

``MaxArraySize`` is read once per executor from ``scontrol show config`` unless given.
``states`` makes one ``sacct`` call, and one ``squeue`` call for the ids sacct does not list
(not recorded yet, or the cluster keeps no accounting); ids neither lists are ``UNKNOWN``.
The detail of an ended job names it and says what its end state means, and the last answer
stays in ``last_states`` (the dispatcher chain picks the jobs its successor waits for from
it). Beyond the protocol: ``sbatch`` submits any script with the same retries (the
dispatcher's own turns), ``scripts`` renders without submitting (dry runs),
``submit_limit`` reads the user's ``MaxSubmitJobs`` from sacctmgr, and ``queued`` tells
which job ids are still queued or running (one squeue call, not retried).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reflow.definition.errors import SubmissionError, SubmissionLimitError
from reflow.running.executors.base import (
    BatchRequest,
    JobState,
    JobStatus,
    PartitionLimits,
    Submission,
)
from reflow.running.executors.slurm_query import (
    ASSOC_LIMIT_FORMAT,
    QOS_LIMIT_FORMAT,
    SACCT_FORMAT,
    SINFO_LIMITS_FORMAT,
    SQUEUE_FORMAT,
    explained,
    is_accounting_disabled,
    is_limit_error,
    is_transient_error,
    parent_ids,
    parse_assoc_submit_limits,
    parse_max_array_size,
    parse_partition_limits,
    parse_qos_submit_limits,
    parse_sacct,
    parse_sbatch_job_id,
    parse_squeue,
    scancel_targets,
)
from reflow.running.executors.slurm_script import render
from reflow.running.process import CommandResult, run_command
from reflow.running.ranges import chunk, compress
from reflow.running.rundir.layout import write_atomic
from reflow.running.worker.command import array_offset_args

MAX_ARRAY_SPEC_CHARS = 4096
"""The longest ``--array`` value (throttle included) slurmctld accepts; longer ones are refused
with "Pathname of a file, directory or other parameter too long"."""

_ACTIVE = (JobState.PENDING, JobState.RUNNING)
_BENIGN_SCANCEL = ("invalid job id specified", "already completing or completed")


@dataclass(frozen=True, slots=True, kw_only=True)
class _ArrayPlan:
    """One sbatch call: its script, array spec, extra worker args and array indices."""

    script_path: Path
    array: str
    worker_args: tuple[str, ...]
    indices: tuple[int, ...]


class SlurmExecutor:
    """Starts batches as Slurm array jobs and reports their states."""

    name = "slurm"
    begins_later = True

    def __init__(
        self,
        *,
        max_array_size: int | None = None,
        timeout_s: float = 60.0,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Configure the executor; nothing is run until the first call.

        Args:
            max_array_size: The cluster's ``MaxArraySize``; ``None`` reads it once from
                ``scontrol show config``.
            timeout_s: Seconds each Slurm command may take before it counts as timed out.
            max_attempts: Calls per command when failures are transient (at least 1).
            backoff_s: The wait before the first retry; it doubles with every retry.
            max_backoff_s: The longest wait between two attempts.
            sleep: The function that waits (tests pass one that records instead).
            env: The environment of the Slurm commands; ``None`` inherits this process's.
        """
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if max_array_size is not None and max_array_size < 1:
            raise ValueError(f"max_array_size must be positive, got {max_array_size}")
        self.calls: Counter[str] = Counter()
        self.last_states: dict[str, JobStatus] = {}
        self._max_array_size = max_array_size
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._env = env
        self._has_accounting = True
        self._sinfo: str | None = None

    def submit(self, request: BatchRequest, /) -> Submission:
        """Submit ``request`` as one array job (several only past ``MaxArraySize``).

        Returns:
            One job id per element in the order of ``request.elements``, and the array
            job ids in submission order. No elements means no sbatch call.

        Raises:
            SubmissionError: If sbatch refuses (with sbatch's own message), keeps failing
                transiently past ``max_attempts``, or a value cannot be put in the script.
                Chunks already submitted for this request are cancelled first.
        """
        _check_elements(request.elements)
        if not request.elements:
            return Submission(job_ids=(), scheduler_ids=())
        plans = self._plan(request)
        # Render every script before the first sbatch, so a bad value submits nothing.
        scripts = [
            render(request, array=plan.array, worker_args=plan.worker_args) for plan in plans
        ]
        request.log_dir.mkdir(parents=True, exist_ok=True)
        scheduler_ids: list[str] = []
        job_ids: list[str] = []
        for plan, text in zip(plans, scripts, strict=True):
            write_atomic(plan.script_path, text)
            try:
                parent = self.sbatch(plan.script_path, task=request.task)
            except SubmissionError:
                self._cancel_quietly(scheduler_ids)
                raise
            scheduler_ids.append(parent)
            job_ids += [f"{parent}_{index}" for index in plan.indices]
        return Submission(job_ids=tuple(job_ids), scheduler_ids=tuple(scheduler_ids))

    def scripts(self, request: BatchRequest, /) -> list[tuple[Path, str]]:
        """Return the scripts ``submit`` would write for ``request``, and write nothing.

        Raises:
            SubmissionError: As ``submit`` does for a value that cannot be put in a script.
        """
        _check_elements(request.elements)
        if not request.elements:
            return []
        return [
            (plan.script_path, render(request, array=plan.array, worker_args=plan.worker_args))
            for plan in self._plan(request)
        ]

    def sbatch(self, script: Path, options: Sequence[str] = (), *, task: str | None = None) -> str:
        """Run ``sbatch --parsable OPTIONS SCRIPT`` (transient failures retried); return the id.

        Raises:
            SubmissionError: If sbatch refuses, with sbatch's own message.
        """
        result = self._run("sbatch", ["sbatch", "--parsable", *options, str(script)])
        if not result.ok:
            refusal = SubmissionLimitError if is_limit_error(result.stderr) else SubmissionError
            raise refusal(
                f"sbatch refused {script}: {_message(result)}",
                task=task,
                value=result.stderr.strip(),
            )
        return parse_sbatch_job_id(result.stdout)

    def submit_limit(self, user: str) -> int | None:
        """Return the fewest jobs ``user`` may have queued (association or QOS), if any is set.

        Two ``sacctmgr`` calls; None when sacctmgr fails or no limit is set.
        """
        assoc = self._run(
            "sacctmgr",
            [
                "sacctmgr",
                "-n",
                "-P",
                "show",
                "assoc",
                "where",
                f"user={user}",
                f"format={ASSOC_LIMIT_FORMAT}",
            ],
        )
        if not assoc.ok:
            return None
        limits, qos_names = parse_assoc_submit_limits(assoc.stdout)
        qos = self._run(
            "sacctmgr", ["sacctmgr", "-n", "-P", "show", "qos", f"format={QOS_LIMIT_FORMAT}"]
        )
        if qos.ok and qos_names:
            limits += parse_qos_submit_limits(qos.stdout, qos_names)
        return min(limits) if limits else None

    def cancel(self, job_ids: Sequence[str], /) -> None:
        """Cancel these jobs with one ``scancel`` call; ids that already ended are ignored.

        Raises:
            SubmissionError: If scancel fails for another reason.
        """
        targets = scancel_targets(job_ids)
        if not targets:
            return
        result = self._run("scancel", ["scancel", *targets])
        lines = [line for line in result.stderr.lower().splitlines() if line.strip()]
        if result.ok or (lines and all(any(b in ln for b in _BENIGN_SCANCEL) for ln in lines)):
            return
        raise SubmissionError(f"scancel failed: {_message(result)}")

    def states(self, job_ids: Sequence[str], /) -> dict[str, JobStatus]:
        """Report the state of each job id from one sacct call (plus one squeue if needed).

        Raises:
            SubmissionError: If sacct or squeue fails for a reason other than "no
                accounting" or "no such job", after retrying transient failures.
        """
        wanted = list(dict.fromkeys(job_ids))
        found: dict[str, JobStatus] = {}
        if wanted and self._has_accounting:
            found = self._sacct(wanted)
        missing = [job_id for job_id in wanted if job_id not in found]
        if missing:
            queued = self._squeue(missing)
            found.update((job_id, queued[job_id]) for job_id in missing if job_id in queued)
        unknown = JobStatus(state=JobState.UNKNOWN, detail="not known to sacct or squeue")
        self.last_states = {
            job_id: explained(job_id, found.get(job_id, unknown)) for job_id in wanted
        }
        return dict(self.last_states)

    def queued(self, job_ids: Sequence[str], /) -> set[str] | None:
        """Return which of ``job_ids`` are still queued or running, from one ``squeue`` call.

        The call is not retried, so a question about liveness is answered quickly.

        Returns:
            The ids squeue lists as pending or running; None when squeue fails (other than
            for ids it no longer knows), so that nothing can be said.
        """
        wanted = list(dict.fromkeys(job_ids))
        if not wanted:
            return set()
        try:
            found = self._squeue(wanted, attempts=1)
        except SubmissionError:
            return None
        return {job_id for job_id in wanted if job_id in found and found[job_id].state in _ACTIVE}

    def max_array_size(self) -> int:
        """Return the cluster's ``MaxArraySize`` (read from ``scontrol`` at most once)."""
        if self._max_array_size is None:
            result = self._run("scontrol", ["scontrol", "show", "config"])
            if not result.ok:
                raise SubmissionError(f"scontrol show config failed: {_message(result)}")
            self._max_array_size = parse_max_array_size(result.stdout)
        return self._max_array_size

    def partition_limits(self, partition: str | None) -> PartitionLimits:
        """The memory per node and time limit of ``partition`` (None: the default one).

        One ``sinfo`` call per executor, whatever the partitions asked for; a failing call
        means no caps are known.
        """
        if self._sinfo is None:
            result = self._run("sinfo", ["sinfo", "-h", "-o", SINFO_LIMITS_FORMAT])
            self._sinfo = result.stdout if result.ok else ""
        return parse_partition_limits(self._sinfo, partition)

    def _plan(self, request: BatchRequest) -> list[_ArrayPlan]:
        limit = self.max_array_size()
        elements = request.elements
        spec = compress(elements)
        throttle = request.resources.array_limit
        spec_chars = len(spec) + (len(f"%{throttle}") if throttle is not None else 0)
        if max(elements) < limit and spec_chars <= MAX_ARRAY_SPEC_CHARS:
            return [
                _ArrayPlan(
                    script_path=request.script_path,
                    array=spec,
                    worker_args=(),
                    indices=elements,
                )
            ]
        pieces = chunk(elements, limit)
        paths = script_paths(request.script_path, len(pieces))
        plans = []
        offset = 0
        for path, piece in zip(paths, pieces, strict=True):
            plans.append(
                _ArrayPlan(
                    script_path=path,
                    array=f"0-{len(piece) - 1}",
                    worker_args=array_offset_args(offset),
                    indices=tuple(range(len(piece))),
                )
            )
            offset += len(piece)
        return plans

    def _sacct(self, job_ids: list[str]) -> dict[str, JobStatus]:
        argv = ["sacct", "-X", "-n", "-P", f"--format={SACCT_FORMAT}", "-j", parent_ids(job_ids)]
        result = self._run("sacct", argv)
        if result.ok:
            return parse_sacct(result.stdout)
        if is_accounting_disabled(result.stderr):
            self._has_accounting = False
            return {}
        raise SubmissionError(f"sacct failed: {_message(result)}")

    def _squeue(self, job_ids: list[str], *, attempts: int | None = None) -> dict[str, JobStatus]:
        argv = ["squeue", "-h", "-r", "-t", "all", f"--Format={SQUEUE_FORMAT}"]
        result = self._run("squeue", [*argv, "-j", parent_ids(job_ids)], attempts=attempts)
        if result.ok:
            return parse_squeue(result.stdout)
        if "invalid job id specified" in result.stderr.lower():
            return {}
        raise SubmissionError(f"squeue failed: {_message(result)}")

    def _run(self, tool: str, argv: list[str], *, attempts: int | None = None) -> CommandResult:
        """Run one Slurm command, retrying transient failures with exponential backoff.

        The one place this executor starts a scheduler command; each call counts in ``calls``.
        """
        attempts = self._max_attempts if attempts is None else attempts
        for attempt in range(attempts):
            self.calls[tool] += 1
            result = run_command(argv, timeout_s=self._timeout_s, env=self._env)
            if result.ok or not is_transient_error(result.stderr):
                return result
            if attempt + 1 < attempts:
                self._sleep(min(self._backoff_s * 2**attempt, self._max_backoff_s))
        return result

    def _cancel_quietly(self, scheduler_ids: list[str]) -> None:
        if not scheduler_ids:
            return
        # The refusal being reported matters more than a failure of this clean-up.
        with contextlib.suppress(SubmissionError):
            self.cancel(scheduler_ids)


def script_paths(script_path: Path, count: int) -> tuple[Path, ...]:
    """Return the script paths of ``count`` chunks: ``script_path`` itself for one chunk."""
    if count == 1:
        return (script_path,)
    return tuple(
        script_path.with_name(f"{script_path.stem}.{index}{script_path.suffix}")
        for index in range(count)
    )


def _check_elements(elements: Sequence[int]) -> None:
    if len(set(elements)) != len(elements):
        raise ValueError(f"batch elements must be distinct, got {len(elements)} with repeats")
    if elements and min(elements) < 0:
        raise ValueError(f"batch elements must not be negative, got {min(elements)}")


def _message(result: CommandResult) -> str:
    text = result.stderr.strip() or result.stdout.strip()
    return " ".join(text.split()) or f"exit status {result.returncode}"
