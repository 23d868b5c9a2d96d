"""Running: the first two steps of a dispatcher turn: ingest results, reconcile jobs.

Results are result files, and lines of the bundles of packed array tasks (``ResultFinder``).
A bundle whose every line is a success goes to the store as a set, its rows staged as they
are read; every other result is decided element by element with its instance's row.

A result is ingested only while its instance is ``submitted`` with the same batch, so an
element that ran twice is ingested once. An instance whose job ended without a result fails
with the scheduler's reason, once the executor's result grace has passed since the job's
end (a result may still appear on a shared file system, or the scheduler requeue the job);
one whose job never started is requeued without counting an attempt. A failed attempt
that the retry rule (``retry_rule``) sends out again becomes ready instead, with its
back-off and raised resources (``Retrier``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from reflow.definition.errors import SubmissionError
from reflow.running.dispatch.read_ahead import ReadAhead
from reflow.running.dispatch.result_finder import ResultFinder
from reflow.running.dispatch.retrier import Retrier
from reflow.running.executors.base import Executor, FailureReason, JobState, JobStatus
from reflow.running.rundir.bundles import Success
from reflow.running.rundir.element_logs import keep_cut_segments
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultProblem
from reflow.running.store.records import Ended, InstanceRow, Retry
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState

_REQUEUED_BY_SLURM = frozenset(
    {FailureReason.NODE_FAIL, FailureReason.PREEMPTED, FailureReason.BOOT_FAIL}
)
"""Failures after which Slurm may run the job again itself (``JobRequeue``)."""


def ingest_results(
    store: SqliteStore, layout: RunLayout, run_id: str, retrier: Retrier | None = None
) -> list[InstanceRow]:
    """Ingest the results of submitted instances; return those still without one.

    Successes in bundles that hold nothing else (the common case of a packed task) go to the
    store as columns read straight from the bundles, without an instance row or a decision
    per element, written while a thread reads the next bundles (``ReadAhead``); every other
    result is then decided element by element with its instance's row. Without
    ``retrier`` no failure is retried.
    """
    results = ResultFinder(layout, run_id)
    one_by_one: list[tuple[str, int]] = []
    reader = ReadAhead(successes_in_bundles(results, store.submitted_elements(run_id), one_by_one))
    with contextlib.closing(iter(reader)) as successes:  # a failed write stops the thread
        store.ingest_successes(run_id, successes, pause=reader.paused)
    rows = store.instances_at(run_id, one_by_one) if one_by_one else []
    ended: list[Ended] = []
    final: list[tuple[InstanceRow, Ended]] = []  # failures not retried
    retried: list[Retry] = []
    for row in rows:
        record = results.find(row)
        if record is None:
            continue
        if isinstance(record, ResultProblem):
            ended.append(_failed(row, "result", record.reason))
        elif not record.ok:
            failure = Ended.of(
                row,
                InstanceState.FAILED,
                started=record.started,
                ended=record.ended,
                reason=FailureReason.EXCEPTION.value,
                error=f"{record.error_type}: {record.error_message}",
                host=record.host,
                peak_rss_mb=record.peak_rss_mb,
            )
            retry = retrier and retrier.consider(row, failure, record.error_classes)
            if retry:
                retried.append(retry)
            else:
                final.append((row, failure))
        else:
            ended.append(
                Ended.of(
                    row,
                    InstanceState.DONE,
                    started=record.started,
                    ended=record.ended,
                    host=record.host,
                    peak_rss_mb=record.peak_rss_mb,
                    output=(str(record.output_text), str(record.output_hash)),
                )
            )
    ended += _summed_up(retrier, final)
    store.auto_retry(run_id, retried)
    store.ingest_results(run_id, ended)
    return store.instances_in(run_id, [InstanceState.SUBMITTED])


def successes_in_bundles(
    results: ResultFinder,
    submitted: dict[tuple[str, str], list[int]],
    one_by_one: list[tuple[str, int]],
) -> Iterator[list[Success]]:
    """The successes of ``submitted`` elements read as columns, a bundle at a time.

    Adds to ``one_by_one`` the ``(task, element)`` of those whose result ``results.find``
    reads (a result file of their own, or a bundle that holds more than successes); it is
    whole once the iteration ends.
    """
    for (task, batch), elements in submitted.items():
        yield from results.successes(task, batch, elements, one_by_one)


def reconcile_jobs(
    store: SqliteStore,
    layout: RunLayout,
    run_id: str,
    executor: Executor,
    waiting: list[InstanceRow],
    *,
    unknown_is_lost: bool,
    retrier: Retrier | None = None,
) -> None:
    """Fail (or retry) instances whose job ended without a result; requeue unstarted ones.

    Without ``retrier`` no failure is retried (``retry`` itself is about to run them again).
    """
    in_flight = [row for row in waiting if row.job_id]
    if not in_flight:
        return
    states = executor.states([str(r.job_id) for r in in_flight])
    results = ResultFinder(layout, run_id)
    final: list[tuple[InstanceRow, Ended]] = []  # failures not retried
    retried: list[Retry] = []
    requeued_by_scheduler: list[str] = []
    lost: list[tuple[str, int, str, bool]] = []
    listed: set[Path] = set()  # results folders opened for the grace in this turn
    ended_without_result: list[InstanceRow] = []
    for row in in_flight:
        status = states.get(str(row.job_id))
        if status is None or status.state in (JobState.PENDING, JobState.RUNNING):
            continue
        if status.state is JobState.UNKNOWN and not unknown_is_lost:
            continue
        if results.find(row) is not None:
            continue  # written after the scan: the next turn ingests it
        if _in_grace(layout, row, status, executor.result_grace, listed):
            continue  # the result may still appear on a shared file system
        is_lost = status.state is JobState.UNKNOWN or status.reason is FailureReason.LOST
        if status.state is JobState.UNKNOWN and status.reason is FailureReason.LOST:
            lost.append((row.task, row.element, str(row.batch), True))  # never started
            continue
        reason = status.reason or (FailureReason.LOST if is_lost else FailureReason.EXIT_CODE)
        detail = status.detail or (
            "the job ended without writing a result"
            if status.state is JobState.DONE
            else f"exit code {status.exit_code}"
        )
        failure = _failed(row, reason.value, detail)
        ended_without_result.append(row)
        retry = retrier.consider(row, failure, ()) if retrier else None
        if retry is None:
            final.append((row, failure))
        else:
            retried.append(retry)
            if reason in _REQUEUED_BY_SLURM:
                requeued_by_scheduler.append(str(row.job_id))
    if not (lost or final or retried):
        return  # the usual case while jobs run: no write transaction at all
    if requeued_by_scheduler:
        # Slurm may requeue such a job itself; the retry replaces it, so it must not run too.
        with contextlib.suppress(SubmissionError):
            executor.cancel(requeued_by_scheduler)
    store.requeue_lost(run_id, lost)
    store.auto_retry(run_id, retried)
    store.fail_lost(run_id, _summed_up(retrier, final))
    _keep_cut_output(layout, ended_without_result)


def _keep_cut_output(layout: RunLayout, failed: list[InstanceRow]) -> None:
    """Keep what the running element of each killed packed array task printed, in its log.

    After the failures are recorded: a turn that fails before never copies twice.
    """
    try:
        stopped = [(row.task, str(row.batch), row.element) for row in failed]
        keep_cut_segments(layout, stopped, ended=True)
    except OSError as err:
        print(f"reflow: cannot keep a killed element's output: {err}", file=sys.stderr)  # noqa: T201 - the dispatcher's log


def _summed_up(retrier: Retrier | None, final: list[tuple[InstanceRow, Ended]]) -> list[Ended]:
    """The turn's final failures, with their histories when a retrier decided them."""
    return retrier.summed_up_all(final) if retrier else [failure for _, failure in final]


def _in_grace(
    layout: RunLayout, row: InstanceRow, status: JobStatus, grace: float, listed: set[Path]
) -> bool:
    """Whether ``row``'s job ended less than ``grace`` seconds ago, by the scheduler's clock.

    On NFS or Lustre a result written on a compute node can become visible on this host
    seconds after the job ended, and a node failure can be followed by the scheduler's own
    requeue. Within the grace the results folder is listed again, which makes an NFS client
    drop its cached view of it, and the instance waits for a later turn: once per turn and
    folder (``listed`` holds those opened already). A job without an end time in accounting
    gets no grace.
    """
    if grace <= 0 or status.ended is None or time.time() - status.ended >= grace:
        return False
    folder = layout.results_dir(row.task)
    if folder not in listed:
        listed.add(folder)
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            next(entries, None)  # opening the folder revalidates its cached attributes on NFS
    return True


def _failed(row: InstanceRow, reason: str, error: str) -> Ended:
    """How ``row`` ends when its job left no usable result."""
    return Ended.of(
        row,
        InstanceState.FAILED,
        started=row.started,
        ended=time.time(),
        reason=reason,
        error=error,
        host=row.host,
        peak_rss_mb=row.peak_rss_mb,
    )
