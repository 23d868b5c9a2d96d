"""Running: the Slurm executor: sbatch array jobs, scancel, and states from sacct or squeue.

Every scheduler call (sbatch, sacct, squeue, scontrol, scancel, sacctmgr) goes through one
private method and is counted in ``calls`` (a ``Counter`` keyed by program), so tests and
benchmarks can assert on the load reflow puts on the controller.
Failures that retrying may cure (``is_transient_error``) are retried with exponential
backoff, up to ``max_attempts`` calls; the sleep function is injectable.

Which array jobs a batch becomes, and which elements each array task runs, is decided by
``slurm_arrays.array_plans`` (the worker follows the same rule).
``MaxArraySize`` is read once per executor from ``scontrol show config`` unless given.
``states`` makes one ``sacct`` call, and one ``squeue`` call for the ids sacct does not list
(not recorded yet, or the cluster keeps no accounting); ids neither lists are ``UNKNOWN``.
The detail of an ended job names it and says what its end state means (a failed job's also
quotes its Slurm output file, given the run's ``layout``), and the last answer
stays in ``last_states`` (the dispatcher chain picks the jobs its successor waits for from
it). Beyond the protocol: ``sbatch`` submits any script with the same retries (the
dispatcher's own turns), ``scripts`` renders without submitting (dry runs),
``submit_limit`` reads the user's ``MaxSubmitJobs`` from sacctmgr, ``queued`` tells
which job ids are still queued or running (one squeue call, not retried), and ``usage``
reads what ended jobs used from accounting (one sacct call).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from reflow.definition.errors import SubmissionError, SubmissionLimitError
from reflow.running.config import DEFAULT_RESULT_GRACE_S, Config, load_config
from reflow.running.executors.base import (
    BatchRequest,
    JobState,
    JobStatus,
    PartitionLimits,
    Submission,
)
from reflow.running.executors.slurm_arrays import array_plans
from reflow.running.executors.slurm_output import quote_output
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
from reflow.running.executors.slurm_usage import JobUsage, query_usage
from reflow.running.process import CommandResult, run_command
from reflow.running.rundir.layout import RunLayout, write_atomic

_ACTIVE = (JobState.PENDING, JobState.RUNNING)
_BENIGN_SCANCEL = ("invalid job id specified", "already completing or completed")


class SlurmExecutor:
    """Starts batches as Slurm array jobs and reports their states."""

    name = "slurm"
    begins_later = True

    @classmethod
    def configured(
        cls, layout: RunLayout | None = None, config: Config | None = None
    ) -> SlurmExecutor:
        """The executor of a run's turns and commands, as the config says.

        ``max_array_size`` and ``result_grace`` come from ``config`` (read when not given).
        """
        config = config or load_config()
        return cls(
            max_array_size=config.max_array_size, result_grace=config.result_grace, layout=layout
        )

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
        result_grace: float = DEFAULT_RESULT_GRACE_S,
        layout: RunLayout | None = None,
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
            result_grace: Seconds a result file may take to appear after its job ended.
            layout: The run whose jobs ``states`` reports; a failed job's detail then quotes
                the line of its Slurm output file that says why (``quote_output``).
        """
        self.result_grace = result_grace
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
        self._layout = layout
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
        plans = array_plans(request, self.max_array_size())
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
            for plan in array_plans(request, self.max_array_size())
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
        self.last_states = quote_output(
            {job_id: explained(job_id, found.get(job_id, unknown)) for job_id in wanted},
            self._layout,
        )
        return dict(self.last_states)

    def usage(self, job_ids: Sequence[str], /) -> dict[str, JobUsage]:
        """What each job asked for and used, from one sacct call (``query_usage``).

        Raises:
            SubmissionError: If sacct fails, with its message.
        """
        found, problem = query_usage(lambda argv: self._run("sacct", argv), job_ids)
        if problem is not None:
            raise SubmissionError(f"sacct failed: {problem}")
        return found

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

        One ``sinfo`` call per executor, whatever the partitions asked for (packing and
        automatic retries share it); a failing call means no caps are known.
        """
        if self._sinfo is None:
            result = self._run("sinfo", ["sinfo", "-h", "-o", SINFO_LIMITS_FORMAT])
            self._sinfo = result.stdout if result.ok else ""
        return parse_partition_limits(self._sinfo, partition)

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


def _check_elements(elements: Sequence[int]) -> None:
    if len(set(elements)) != len(elements):
        raise ValueError(f"batch elements must be distinct, got {len(elements)} with repeats")
    if elements and min(elements) < 0:
        raise ValueError(f"batch elements must not be negative, got {min(elements)}")


def _message(result: CommandResult) -> str:
    text = result.stderr.strip() or result.stdout.strip()
    return " ".join(text.split()) or f"exit status {result.returncode}"
