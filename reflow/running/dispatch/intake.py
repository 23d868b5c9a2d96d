"""Running: the first two steps of a dispatcher turn: ingest result files, reconcile jobs.

A result is ingested only while its instance is ``submitted`` with the same batch, so an
element that ran twice is ingested once. An instance whose job ended without a result fails
with the scheduler's reason, once the executor's result grace has passed since the job's
end (a result may still appear on a shared file system, or the scheduler requeue the job);
one whose job never started is requeued.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict

from reflow.running.executors.base import Executor, FailureReason, JobState, JobStatus
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultProblem, read_result, result_names
from reflow.running.store.records import Ended, InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState

_MAX_LOST_RESUBMITS = 3


def ingest_results(store: SqliteStore, layout: RunLayout, run_id: str) -> list[InstanceRow]:
    """Ingest the result files of submitted instances; return those still without one."""
    in_flight = store.instances_in(run_id, [InstanceState.SUBMITTED])
    waiting: list[InstanceRow] = []
    by_task: dict[str, list[InstanceRow]] = defaultdict(list)
    for row in in_flight:
        by_task[row.task].append(row)
    ended: list[Ended] = []
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
            else:
                failed = not record.ok
                ended.append(
                    Ended(
                        task=task,
                        element=row.element,
                        batch=str(row.batch),
                        identity=row.identity,
                        state=InstanceState.FAILED if failed else InstanceState.DONE,
                        started=record.started,
                        ended=record.ended,
                        reason=FailureReason.EXCEPTION.value if failed else None,
                        error=f"{record.error_type}: {record.error_message}" if failed else None,
                        host=record.host,
                        peak_rss_mb=record.peak_rss_mb,
                        output=None
                        if failed
                        else (str(record.output_text), str(record.output_hash)),
                    )
                )
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
) -> None:
    """Fail instances whose job ended without a result; requeue lost ones (unstarted: free)."""
    in_flight = [row for row in waiting if row.job_id]
    if not in_flight:
        return
    states = executor.states([str(r.job_id) for r in in_flight])
    failed: list[Ended] = []
    lost: list[tuple[str, int, str, bool]] = []
    for row in in_flight:
        status = states.get(str(row.job_id))
        if status is None or status.state in (JobState.PENDING, JobState.RUNNING):
            continue
        if status.state is JobState.UNKNOWN and not unknown_is_lost:
            continue
        if layout.result(row.task, row.element, str(row.batch)).exists():
            continue  # written after the scan: the next turn ingests it
        if _in_grace(layout, row, status, executor.result_grace):
            continue  # the result may still appear on a shared file system
        is_lost = status.state is JobState.UNKNOWN or status.reason is FailureReason.LOST
        unstarted = status.state is JobState.UNKNOWN and status.reason is FailureReason.LOST
        if is_lost and (unstarted or row.attempts <= _MAX_LOST_RESUBMITS):
            lost.append((row.task, row.element, str(row.batch), unstarted))
            continue
        reason = status.reason or (FailureReason.LOST if is_lost else FailureReason.EXIT_CODE)
        detail = status.detail or (
            "the job ended without writing a result"
            if status.state is JobState.DONE
            else f"exit code {status.exit_code}"
        )
        failed.append(_failed(row, reason.value, detail))
    if not (lost or failed):
        return  # the usual case while jobs run: no write transaction at all
    store.requeue_lost(run_id, lost)
    store.fail_lost(run_id, failed)


def _in_grace(layout: RunLayout, row: InstanceRow, status: JobStatus, grace: float) -> bool:
    """Whether ``row``'s job ended less than ``grace`` seconds ago, by the scheduler's clock.

    On NFS or Lustre a result written on a compute node can become visible on this host
    seconds after the job ended, and a node failure can be followed by the scheduler's own
    requeue. Within the grace the results folder is listed again, which makes an NFS client
    drop its cached view of it, and the instance waits for a later turn. A job without an
    end time in accounting gets no grace.
    """
    if grace <= 0 or status.ended is None or time.time() - status.ended >= grace:
        return False
    folder = layout.results_dir(row.task)
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        next(entries, None)  # opening the folder revalidates its cached attributes on NFS
    return True


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
