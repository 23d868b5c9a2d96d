"""Running: the first two steps of a dispatcher turn: ingest result files, reconcile jobs.

A result is ingested only while its instance is ``submitted`` with the same batch, so an
element that ran twice is ingested once. An instance whose job ended without a result fails
with the scheduler's reason; one whose job never started is requeued without counting an
attempt. A failed attempt that the retry rule (``retry_rule``) sends out again becomes ready
instead, with its back-off and raised resources (``Retrier``).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from dataclasses import replace

from reflow.definition.errors import SubmissionError
from reflow.running.dispatch.retrier import Retrier
from reflow.running.executors.base import Executor, FailureReason, JobState
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultProblem, read_result, result_names
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
    """Ingest the result files of submitted instances; return those still without one.

    Without ``retrier`` no failure is retried.
    """
    in_flight = store.instances_in(run_id, [InstanceState.SUBMITTED])
    waiting: list[InstanceRow] = []
    by_task: dict[str, list[InstanceRow]] = defaultdict(list)
    for row in in_flight:
        by_task[row.task].append(row)
    ended: list[Ended] = []
    retried: list[Retry] = []
    for task, rows in by_task.items():
        present = result_names(layout.results_dir(task))
        for row in rows:
            path = layout.result(task, row.element, str(row.batch))
            if path.name not in present:
                waiting.append(row)
                continue
            record = read_result(
                path, run_id=run_id, task=task, element=row.element, batch=str(row.batch)
            )
            if isinstance(record, ResultProblem):
                ended.append(_failed(row, "result", record.reason))
            elif not record.ok:
                error = f"{record.error_type}: {record.error_message}"
                failure = _failed(row, FailureReason.EXCEPTION.value, error)
                failure = replace(
                    failure,
                    started=record.started,
                    ended=record.ended,
                    host=record.host,
                    peak_rss_mb=record.peak_rss_mb,
                )
                retry = retrier and retrier.consider(row, failure, record.error_classes)
                if retry:
                    retried.append(retry)
                else:
                    ended.append(retrier.summed_up(row, failure) if retrier else failure)
            else:
                ended.append(
                    Ended(
                        task=task,
                        element=row.element,
                        batch=str(row.batch),
                        identity=row.identity,
                        state=InstanceState.DONE,
                        started=record.started,
                        ended=record.ended,
                        host=record.host,
                        peak_rss_mb=record.peak_rss_mb,
                        output=(str(record.output_text), str(record.output_hash)),
                    )
                )
    store.auto_retry(run_id, retried)
    store.ingest_results(run_id, ended)
    return waiting


def reconcile_jobs(
    store: SqliteStore,
    layout: RunLayout,
    run_id: str,
    executor: Executor,
    waiting: list[InstanceRow],
    *,
    unknown_is_lost: bool,
    retrier: Retrier,
) -> None:
    """Fail (or retry) instances whose job ended without a result; requeue unstarted ones."""
    in_flight = [row for row in waiting if row.job_id]
    if not in_flight:
        return
    states = executor.states([str(r.job_id) for r in in_flight])
    failed: list[Ended] = []
    retried: list[Retry] = []
    requeued_by_scheduler: list[str] = []
    lost: list[tuple[str, int, str, bool]] = []
    for row in in_flight:
        status = states.get(str(row.job_id))
        if status is None or status.state in (JobState.PENDING, JobState.RUNNING):
            continue
        if status.state is JobState.UNKNOWN and not unknown_is_lost:
            continue
        if layout.result(row.task, row.element, str(row.batch)).exists():
            continue  # written after the scan: the next turn ingests it
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
        retry = retrier.consider(row, failure, ())
        if retry is None:
            failed.append(retrier.summed_up(row, failure))
        else:
            retried.append(retry)
            if reason in _REQUEUED_BY_SLURM:
                requeued_by_scheduler.append(str(row.job_id))
    if not (lost or failed or retried):
        return  # the usual case while jobs run: no write transaction at all
    if requeued_by_scheduler:
        # Slurm may requeue such a job itself; the retry replaces it, so it must not run too.
        with contextlib.suppress(SubmissionError):
            executor.cancel(requeued_by_scheduler)
    store.requeue_lost(run_id, lost)
    store.auto_retry(run_id, retried)
    store.fail_lost(run_id, failed)


def _failed(row: InstanceRow, reason: str, error: str) -> Ended:
    """How ``row`` ends when its job left no usable result."""
    return Ended(
        task=row.task,
        element=row.element,
        batch=str(row.batch),
        identity=row.identity,
        state=InstanceState.FAILED,
        started=row.started,
        ended=time.time(),
        reason=reason,
        error=error,
        host=row.host,
        peak_rss_mb=row.peak_rss_mb,
    )
