"""Running: the first two steps of a dispatcher turn: ingest result files, reconcile jobs.

A result is ingested only while its instance is ``submitted`` with the same batch, so an
element that ran twice is ingested once. An instance whose job ended without a result fails
with the scheduler's reason; one whose job never started is requeued.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from reflow.running.executors.base import Executor, FailureReason, JobState
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultProblem, read_result
from reflow.running.store.sqlite import InstanceRow, SqliteStore

_MAX_LOST_RESUBMITS = 3
_MARK_FINISHED = (
    "UPDATE instances SET state = ?, started = ?, ended = ?, reason = ?, error = ?, host = ?,"
    " peak_rss_mb = ? WHERE run_id = ? AND task = ? AND element = ? AND batch = ?"
    " AND state = 'submitted'"
)


def ingest_results(store: SqliteStore, layout: RunLayout, run_id: str) -> list[InstanceRow]:
    """Ingest the result files of submitted instances; return those still without one."""
    in_flight = store.instances_in(run_id, ["submitted"])
    waiting: list[InstanceRow] = []
    by_task: dict[str, list[InstanceRow]] = defaultdict(list)
    for row in in_flight:
        by_task[row.task].append(row)
    outputs: list[tuple[Any, ...]] = []
    finished: list[tuple[Any, ...]] = []
    for task, rows in by_task.items():
        present = _file_names(layout.results_dir(task))
        for row in rows:
            path = layout.result(task, row.element, str(row.batch))
            if path.name not in present:
                waiting.append(row)
                continue
            record = read_result(
                path, run_id=run_id, task=task, element=row.element, batch=str(row.batch)
            )
            if isinstance(record, ResultProblem):
                finished.append(_failed_row(run_id, row, "result", record.reason))
                continue
            if record.ok:
                outputs.append(
                    (
                        row.identity,
                        task,
                        record.output_text,
                        record.output_hash,
                        time.time(),
                        run_id,
                    )
                )
                state, reason, error = "done", None, None
            else:
                state, reason = "failed", FailureReason.EXCEPTION.value
                error = f"{record.error_type}: {record.error_message}"
            finished.append(
                (
                    state,
                    record.started,
                    record.ended,
                    reason,
                    error,
                    record.host,
                    record.peak_rss_mb,
                    run_id,
                    task,
                    row.element,
                    row.batch,
                )
            )
    if finished:
        store.execute_many(
            [
                ("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?)", outputs),
                (_MARK_FINISHED, finished),
            ]
        )
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
    failed: list[tuple[Any, ...]] = []
    lost: list[tuple[Any, ...]] = []
    for row in in_flight:
        status = states.get(str(row.job_id))
        if status is None or status.state in (JobState.PENDING, JobState.RUNNING):
            continue
        if status.state is JobState.UNKNOWN and not unknown_is_lost:
            continue
        if layout.result(row.task, row.element, str(row.batch)).exists():
            continue  # written after the scan: the next turn ingests it
        is_lost = status.state is JobState.UNKNOWN or status.reason is FailureReason.LOST
        unstarted = status.state is JobState.UNKNOWN and status.reason is FailureReason.LOST
        if is_lost and (unstarted or row.attempts <= _MAX_LOST_RESUBMITS):
            lost.append((int(unstarted), run_id, row.task, row.element, row.batch))
            continue
        reason = status.reason or (FailureReason.LOST if is_lost else FailureReason.EXIT_CODE)
        detail = status.detail or (
            "the job ended without writing a result"
            if status.state is JobState.DONE
            else f"exit code {status.exit_code}"
        )
        failed.append(_failed_row(run_id, row, reason.value, detail))
    if not (lost or failed):
        return  # the usual case while jobs run: no write transaction at all
    store.execute_many(
        [
            (
                "UPDATE instances SET state = 'ready', attempts = attempts - ? WHERE run_id = ?"
                " AND task = ? AND element = ? AND batch = ? AND state = 'submitted'",
                lost,
            ),
            (_MARK_FINISHED, failed),
        ]
    )


def _file_names(folder: Path) -> set[str]:
    try:
        return {entry.name for entry in os.scandir(folder)}
    except FileNotFoundError:
        return set()


def _failed_row(run_id: str, row: InstanceRow, reason: str, error: str) -> tuple[Any, ...]:
    """Parameters of the instance update that marks ``row`` failed."""
    return (
        "failed",
        row.started,
        time.time(),
        reason,
        error,
        row.host,
        row.peak_rss_mb,
        run_id,
        row.task,
        row.element,
        row.batch,
    )
