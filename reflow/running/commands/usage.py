"""Running: what a run's elements used as the workers recorded it, and each task's request.

The store holds each element's start, end and peak memory (from its worker), its result (its
own file, or its line in the bundle of a packed array task) the CPU time, and the manifest
each task's resources, taken over the config's defaults. The local executor's report shows
these figures, and ``underused_line``, the line that ends ``--wait`` when a task used under
a third of its memory or time request, reads them: it never asks a scheduler.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reflow.running.commands.hints import console_command
from reflow.running.commands.sizing import ElementUsage, Request, request_of, task_figures
from reflow.running.config import load_config
from reflow.running.dispatch.result_finder import ResultFinder
from reflow.running.executors.base import FailureReason
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest, task_resources
from reflow.running.rundir.results import ResultRecord
from reflow.running.store.records import InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState

RAN = (InstanceState.DONE, InstanceState.FAILED)
"""The states of elements that ran in their run (failed ones used resources too)."""
_RAN_OUT = {FailureReason.OUT_OF_MEMORY.value: "mem", FailureReason.TIMEOUT.value: "time"}


def underused_line(root: Path, run_id: str) -> str | None:
    """One line pointing to ``report`` when a task used under a third of a request, or None.

    Only tasks with a memory or time request and finished elements count, and not for a
    request that one of their elements ran out of (out of memory, time limit). The figures are
    the store's (the worker's peak memory, its start and end), so no scheduler is asked.
    """
    layout = RunLayout(root, run_id)
    requests = task_requests(layout)
    if not any(r.mem_mb or r.time_s for r in requests.values()):
        return None  # nothing asked, nothing asked too much: the instances are not read
    with SqliteStore.open(root) as store:
        rows = store.instances(run_id)
    ran = [row for row in rows if row.state in RAN]
    ran_out: dict[str, set[str]] = defaultdict(set)
    for row in ran:
        if row.reason in _RAN_OUT:
            ran_out[row.task].add(_RAN_OUT[row.reason])
    tasks = tasks_figures(requests, rows, from_workers(layout, ran, cpu=False))
    found = []
    for task in tasks:
        under = [key for key in task["underused"] if key not in ran_out[task["task"]]]
        if under:
            found.append(f"{task['task']} ({' and '.join(under)})")
    if not found:
        return None
    return (
        f"  asked too much: {', '.join(found)} used under a third of the request;"
        f" see {console_command('report', run_id, root)}"
    )


def task_requests(layout: RunLayout) -> dict[str, Request]:
    """What each task's elements ask for: the task's resources over the run's defaults."""
    asked = task_resources(read_manifest(layout), fallback=load_config().resources)
    return {
        task: Request(cpus=r.cpus, mem_mb=r.mem_mb, time_s=r.time_s) for task, r in asked.items()
    }


def tasks_figures(
    requests: Mapping[str, Request],
    rows: Sequence[InstanceRow],
    usages: Mapping[str, list[ElementUsage]],
) -> list[dict[str, Any]]:
    """The figures of each task of the manifest (and of any other task with usages)."""
    cached: dict[str, int] = defaultdict(int)
    for row in rows:
        cached[row.task] += row.state is InstanceState.CACHED
    empty = Request(cpus=None, mem_mb=None, time_s=None)
    return [
        task_figures(
            task,
            usages.get(task, []),
            request_of(usages.get(task, []), request),
            from_cache=cached[task],
        )
        for task, request in {
            **requests,
            **dict.fromkeys(sorted(set(usages) - set(requests)), empty),
        }.items()
    ]


def from_workers(
    layout: RunLayout,
    rows: Sequence[InstanceRow],
    *,
    cpu: bool,
    results: ResultFinder | None = None,
) -> dict[str, list[ElementUsage]]:
    """Elapsed and peak memory from the store, CPU time from each element's result.

    The results are found as the dispatcher finds them (``results``, a ``ResultFinder``): an
    element's own file, else its line in its array task's bundle, each folder listed and
    bundle read once.
    """
    results = results or ResultFinder(layout, layout.run_id)
    usages: dict[str, list[ElementUsage]] = defaultdict(list)
    for row in rows:
        if row.started is None or row.ended is None:
            continue
        cpu_s = _cpu_s(results, row) if cpu else None
        usages[row.task].append(
            ElementUsage(
                element=row.element,
                elapsed_s=max(0.0, row.ended - row.started),
                cpu_s=cpu_s,
                peak_rss_mb=row.peak_rss_mb,
            )
        )
    return usages


def _cpu_s(results: ResultFinder, row: InstanceRow) -> float | None:
    if row.batch is None:
        return None
    record = results.find(row)
    return record.cpu_s if isinstance(record, ResultRecord) else None
