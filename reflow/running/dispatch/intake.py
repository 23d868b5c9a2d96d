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
from collections.abc import Iterable
from pathlib import Path

from reflow.definition.errors import SubmissionError
from reflow.running.dispatch.retrier import Retrier
from reflow.running.executors.base import Executor, FailureReason, JobState, JobStatus
from reflow.running.executors.slurm_arrays import array_tasks
from reflow.running.rundir.batches import BatchFile, read_batch
from reflow.running.rundir.bundles import Success, bundle_documents, read_bundle, successes_of
from reflow.running.rundir.element_logs import keep_cut_segments
from reflow.running.rundir.layout import RunLayout, bundle_name, result_name
from reflow.running.rundir.results import (
    ResultProblem,
    ResultRecord,
    first_records,
    read_result,
    result_names,
)
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
    per element; every other result is decided element by element with its instance's row.
    Without ``retrier`` no failure is retried.
    """
    results = ResultFinder(layout, run_id)
    done, rows = read_results(store, results, run_id)
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
    store.ingest_results(run_id, ended, done)
    return store.instances_in(run_id, [InstanceState.SUBMITTED])


def read_results(
    store: SqliteStore, results: ResultFinder, run_id: str
) -> tuple[list[Success], list[InstanceRow]]:
    """What ingest reads: successes as columns, and the rows of elements decided one by one.

    The rows are those of elements with a result file of their own, or in a bundle that holds
    more than successes (``ResultFinder.find`` reads their results).
    """
    done: list[Success] = []
    one_by_one: list[tuple[str, int]] = []
    for (task, batch), elements in store.submitted_elements(run_id).items():
        successes, others = results.successes(task, batch, elements)
        done += successes
        one_by_one += [(task, element) for element in others]
    return done, store.instances_at(run_id, one_by_one) if one_by_one else []


class ResultFinder:
    """Finds in-flight instances' results: each file, bundle and batch file read at most once.

    An element's own result file comes first; an element of a packed batch (its batch file's
    ``pack`` above 1) is then looked up in the bundle of its array task. Only the bundles of
    array tasks with an instance asked about are read.
    """

    def __init__(self, layout: RunLayout, run_id: str) -> None:
        self._layout = layout
        self._run_id = run_id
        self._names: dict[str, set[str]] = {}
        self._files: dict[str, dict[str, set[int]]] = {}
        self._batches: dict[str, BatchFile | None] = {}
        self._array_tasks: dict[str, dict[int, int]] = {}
        self._bundles: dict[tuple[str, str, int], dict[int, ResultRecord] | ResultProblem] = {}

    def successes(
        self, task: str, batch: str, elements: Iterable[int]
    ) -> tuple[list[Success], list[int]]:
        """Split submitted ``elements`` of ``task`` in ``batch`` by how their result is read.

        Returns:
            The successes read as columns from the bundles that hold nothing else, and the
            elements whose result ``find`` reads: those with a result file of their own, and
            those in a bundle that holds more than successes. An element without a result
            (yet) is in neither.
        """
        names = self._result_names(task)
        pending = set(elements)
        with_file = self._own_files(task).get(batch, set()) & pending
        one_by_one = sorted(with_file)
        record = self._batch(batch)
        if record is None or record.pack <= 1:
            return [], one_by_one
        found: list[Success] = []
        pack = record.pack
        for array_task, positions in enumerate(array_tasks(len(record.elements), pack)):
            own = {record.elements[position] for position in positions}
            waiting = (own & pending) - with_file
            if not waiting or bundle_name(batch, array_task) not in names:
                continue
            documents = bundle_documents(self._layout.bundle(task, batch, array_task))
            rows = None
            if not isinstance(documents, ResultProblem):
                rows = successes_of(documents, **self._who(task, batch), elements=own)
            if rows is None:  # ``find`` reads it line by line, from what was parsed here
                self._bundles[(task, batch, array_task)] = (
                    documents
                    if isinstance(documents, ResultProblem)
                    else first_records(documents, **self._who(task, batch))
                )
                one_by_one += sorted(waiting)
            elif waiting == own:
                found += rows
            else:  # not lines of elements ended or sent out again, nor with a file of their own
                found += [row for row in rows if row[1] in waiting]
        return found, one_by_one

    def find(self, row: InstanceRow) -> ResultRecord | ResultProblem | None:
        """The result of ``row``'s element in its batch; None while there is none."""
        task, batch = row.task, str(row.batch)
        names = self._result_names(task)
        if result_name(row.element, batch) in names:
            path = self._layout.result(task, row.element, batch)
            return read_result(
                path, run_id=self._run_id, task=task, element=row.element, batch=batch
            )
        array_task = self._array_task(batch).get(row.element)
        if array_task is None:
            return None
        key = (task, batch, array_task)
        bundle = self._bundles.get(key)
        if bundle is None:
            if bundle_name(batch, array_task) not in names:
                return None
            path = self._layout.bundle(task, batch, array_task)
            bundle = read_bundle(path, **self._who(task, batch))
            self._bundles[key] = bundle
        if isinstance(bundle, ResultProblem):
            return None if bundle.kind == "missing" else bundle
        return bundle.get(row.element)

    def _own_files(self, task: str) -> dict[str, set[int]]:
        """``batch -> elements`` with a result file of their own, from one pass over the names."""
        found = self._files.get(task)
        if found is None:
            found = self._files[task] = {}
            for name in self._result_names(task):
                element, _, rest = name.partition(".")
                if rest.endswith(".json") and element.isdigit():
                    found.setdefault(rest.removesuffix(".json"), set()).add(int(element))
        return found

    def _who(self, task: str, batch: str) -> dict[str, str]:
        """What every line of a bundle of ``task`` in ``batch`` must name."""
        return {"run_id": self._run_id, "task": task, "batch": batch}

    def _result_names(self, task: str) -> set[str]:
        """The names in ``task``'s results folder: one directory read per task."""
        names = self._names.get(task)
        if names is None:
            names = self._names[task] = result_names(self._layout.results_dir(task))
        return names

    def pack(self, batch: str) -> int | None:
        """How many elements each array task of ``batch`` runs; None without its batch file."""
        record = self._batch(batch)
        return None if record is None else record.pack

    def _batch(self, batch: str) -> BatchFile | None:
        """The batch file of ``batch``; None when it cannot be read."""
        if batch not in self._batches:
            try:
                self._batches[batch] = read_batch(self._layout, batch)
            except (OSError, ValueError):
                self._batches[batch] = None
        return self._batches[batch]

    def _array_task(self, batch: str) -> dict[int, int]:
        """``element -> array task`` of a packed batch; empty for an unpacked one."""
        found = self._array_tasks.get(batch)
        if found is None:
            record = self._batch(batch)
            found = record.array_task_of() if record is not None and record.pack > 1 else {}
            self._array_tasks[batch] = found
        return found


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
