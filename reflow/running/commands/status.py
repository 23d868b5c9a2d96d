"""Running: a run's status as data (for ``--json`` and notebooks) and as a table.

Built from a few grouped queries and one query for the failed and cancelled elements, so it
stays fast for runs with 100,000 elements. Failures are grouped by task, reason and exception
type (a ``ValueError`` and a ``KeyError`` of one task are two groups) with a few example
elements; every failed element is listed too (``failed``), for ``--json`` and ``--failed``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from reflow.running.commands.attempts_view import (
    allowed_attempts,
    render_retried,
    retried_elements,
)
from reflow.running.commands.hints import console_command
from reflow.running.dispatch.command import DISPATCHER_MODULE
from reflow.running.dispatch.liveness import dispatcher_alive as slurm_dispatcher_alive
from reflow.running.dispatch.result_finder import ResultFinder
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.rundir.layout import RunLayout, log_name
from reflow.running.rundir.manifest import asked_resources, read_manifest
from reflow.running.rundir.results import ResultProblem
from reflow.running.rundir.stale import read_stale
from reflow.running.store.records import DispatcherRecord, InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import STOPPED, InstanceState, RunState

_S = InstanceState
STATE_ORDER = tuple(
    s.value
    for s in (_S.DONE, _S.CACHED, _S.SUBMITTED, _S.READY, _S.FAILED, _S.CANCELLED, _S.BLOCKED)
)
_EXAMPLES = 3
_START_GRACE_S = 30.0
_SUBMITTED = InstanceState.SUBMITTED.value
_DONE = InstanceState.DONE.value
_FAILED = InstanceState.FAILED.value
_BLOCKED = InstanceState.BLOCKED.value
_EXCEPTION_TYPE = re.compile(r"^([A-Za-z_][\w.]*): ")


def dispatcher_alive(info: DispatcherRecord) -> bool | None:
    """Whether the local dispatcher process still runs (None when it cannot be told)."""
    pid = info.pid
    if info.kind != "local":
        return None
    if pid is None:
        starting = info.starting
        recent = starting is not None and time.time() - starting < _START_GRACE_S
        return None if recent else False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:  # noqa: PTH123
            return DISPATCHER_MODULE.encode() in handle.read()
    except OSError:
        return True


def build_status(
    store: SqliteStore,
    layout: RunLayout,
    task_names: list[str],
    *,
    ask_scheduler: bool = True,
    failures: bool = True,
    allowed: Mapping[str, int] | None = None,
    retry_on: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, Any]:
    """Everything ``status`` shows, as JSON-able data.

    With ``ask_scheduler`` a Slurm run's dispatcher job is looked up (one ``squeue`` call);
    without it, ``dispatcher.alive`` is None for Slurm runs. Without ``failures`` the
    failed elements are not read (``failures`` and ``failed`` are empty), which is what
    progress needs while a run goes on. ``retried`` lists the elements submitted more than
    once, with ``allowed`` (task -> most attempts) for the ``k/N`` of each retry. An arrived
    result of an exception in a task's ``retry_on`` (task -> qualified class names) is not
    counted as failed: the dispatcher sends it out again.
    """
    run = store.run(layout.run_id)
    counts = store.state_counts(layout.run_id)
    planned = store.planned_tasks(layout.run_id)
    tasks: list[dict[str, Any]] = []
    for name in task_names:
        task_counts = counts.get(name, {})
        error = planned[name][2] if name in planned else ""
        size = planned[name][1] if name in planned and not error else None
        tasks.append(
            {
                "task": name,
                "planned": name in planned,
                "elements": size,
                "counts": {s: task_counts[s] for s in STATE_ORDER if s in task_counts},
                "error": error,
                # chain elements whose upstream element has not ended yet
                "unplanned": (size or 0) - sum(task_counts.values()) if not error else 0,
            }
        )
    if any(counts.get(name, {}).get(_SUBMITTED) for name in task_names):
        _count_arrived(store, layout, tasks, retry_on or {})
    if run.state is RunState.RUNNING and any(
        counts.get(name, {}).get(InstanceState.READY.value) for name in task_names
    ):
        _count_shared(store, layout, tasks)
    stale = read_stale(layout)
    for entry in tasks:
        if entry["task"] in stale:
            entry["stale"] = stale[entry["task"]]
    failed = (
        failed_elements(
            layout,
            store.instances_in(layout.run_id, STOPPED),
        )
        if failures
        else []
    )
    alive = None
    is_running = run.state is RunState.RUNNING
    if is_running and run.dispatcher.kind == "slurm" and ask_scheduler:
        alive = slurm_dispatcher_alive(layout, run.dispatcher, SlurmExecutor())
    elif is_running and run.dispatcher.kind != "slurm":
        alive = dispatcher_alive(run.dispatcher)
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "state": run.state.value,
        "executor": run.executor,
        "created": run.created,
        "updated": run.updated,
        "message": run.message,
        "dispatcher": {**run.dispatcher.as_dict(), "alive": alive},
        "tasks": tasks,
        "failures": failure_groups(failed),
        "failed": failed,
        "retried": retried_elements(store, run.run_id, allowed or {}) if failures else [],
        "run_dir": str(layout.root),
    }


def _count_arrived(
    store: SqliteStore,
    layout: RunLayout,
    tasks: list[dict[str, Any]],
    retry_on: Mapping[str, frozenset[str]],
) -> None:
    """Count submitted elements whose result is there but not ingested yet as finished.

    Results are found as the dispatcher finds them (``ResultFinder``): one directory read per
    task with submitted elements; each result file of one of them, and each bundle of a
    packed array task that runs one of them, read once (they are small) to tell done from
    failed; no scheduler call. ``arrived`` says how many of a task's counts come from
    results the dispatcher has not ingested yet. An exception the task retries on
    (``retry_on``) is not counted: it goes out again.
    """
    by_task: dict[str, list[InstanceRow]] = {}
    for row in store.instances_in(layout.run_id, (InstanceState.SUBMITTED,)):
        by_task.setdefault(row.task, []).append(row)
    results = ResultFinder(layout, layout.run_id)
    for entry in tasks:
        arrived = {_DONE: 0, _FAILED: 0}
        for row in by_task.get(entry["task"], []):
            record = results.find(row)
            if record is None:
                continue
            if isinstance(record, ResultProblem):
                arrived[_FAILED] += 1
            elif record.ok or not retry_on.get(row.task, set()) & set(record.error_classes):
                arrived[_DONE if record.ok else _FAILED] += 1
            # else: an exception in retry_on, sent out again: still on its way
        total = arrived[_DONE] + arrived[_FAILED]
        if not total:
            continue
        counts = dict(entry["counts"])
        counts[_SUBMITTED] -= total
        for state, count in arrived.items():
            counts[state] = counts.get(state, 0) + count
        entry["counts"] = {s: counts[s] for s in STATE_ORDER if counts.get(s)}
        entry["arrived"] = total


def _count_shared(store: SqliteStore, layout: RunLayout, tasks: list[dict[str, Any]]) -> None:
    """Say which ready elements wait for another run of the run directory doing the same work."""
    ready = store.instances_in(layout.run_id, (InstanceState.READY,))
    claimed = store.claimed_elsewhere(layout.run_id, [row.identity for row in ready])
    if not claimed:
        return
    waiting: dict[str, dict[str, int]] = {}
    for row in ready:
        other = claimed.get(row.identity)
        if other is not None:
            per_run = waiting.setdefault(row.task, {})
            per_run[other] = per_run.get(other, 0) + 1
    for entry in tasks:
        if entry["task"] in waiting:
            entry["waits_for_runs"] = waiting[entry["task"]]


def failed_elements(layout: RunLayout, rows: Iterable[InstanceRow]) -> list[dict[str, Any]]:
    """Every failed, cancelled or blocked element: task, index, state, reason, error, end, log."""
    elements = []
    log_dirs: dict[str, str] = {}  # one Path per task, not per element: 100,000 add up
    for row in rows:
        reason = row.reason or row.state
        error = row.error or ""
        match = _EXCEPTION_TYPE.match(error) if reason == "exception" else None
        if row.task not in log_dirs:
            log_dirs[row.task] = str(layout.logs_dir(row.task))
        elements.append(
            {
                "task": row.task,
                "element": row.element,
                "state": row.state,
                "reason": reason,
                "type": match.group(1) if match else "",
                "error": error,
                "attempts": row.attempts,
                "ended": row.ended,
                # a blocked element never ran: it has no log
                "log": ""
                if row.state == _BLOCKED
                else f"{log_dirs[row.task]}/{log_name(row.element)}",
            }
        )
    return elements


def elements_in(status: Mapping[str, Any], state: InstanceState) -> list[dict[str, Any]]:
    """The stopped elements (``failed_elements``) of ``status`` that are in ``state``."""
    return [element for element in status["failed"] if element["state"] == state.value]


def failure_groups(failed: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed elements grouped by task, state, reason and exception type, largest first.

    Groups of blocked elements come last: the failures that blocked them come first.

    Each group has its ``count`` and up to three ``examples`` (the lowest indices).
    """
    groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for element in failed:
        key = (element["task"], element["state"], element["reason"], element["type"])
        group = groups.setdefault(
            key,
            {"task": key[0], "state": key[1], "reason": key[2], "type": key[3], "count": 0,
             "examples": []},
        )  # fmt: skip
        group["count"] += 1
        if len(group["examples"]) < _EXAMPLES:
            group["examples"].append(
                {k: element[k] for k in ("element", "error", "attempts", "log")}
            )
    order = {task: i for i, task in enumerate(dict.fromkeys(k[0] for k in groups))}
    return sorted(
        groups.values(),
        key=lambda g: (g["state"] == _BLOCKED, order[g["task"]], -g["count"]),
    )


def group_label(group: dict[str, Any]) -> str:
    """``parse: 2 failed (exception: ValueError)``."""
    kind = f"{group['reason']}: {group['type']}" if group["type"] else group["reason"]
    return f"{group['task']}: {group['count']} {group['state']} ({kind})"


def render_failed(status: dict[str, Any]) -> str:
    """Every failed or cancelled element, one line each, for ``status --failed``."""
    if not status["failed"]:
        return f"run {status['run_id']}: no failed or cancelled elements\n"
    lines = [f"run {status['run_id']}: {len(status['failed'])} failed or cancelled element(s)"]
    lines.append("  task[index]  state  reason  error  log")
    for element in status["failed"]:
        kind = element["reason"]
        lines.append(
            f"  {element['task']}[{element['element']}]  {element['state']}  {kind}"
            f"  {element['error'] or '-'}  {element['log'] or '-'}"
        )
    return "\n".join(lines) + "\n"


def render_status(status: dict[str, Any]) -> str:
    """A table for people: one row per task, then failures grouped by reason."""
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["created"]))
    lines = [
        f"run {status['run_id']} ({status['workflow']}): {status['state'].upper()}"
        f"  executor={status['executor']}  created {created}",
    ]
    if status["message"]:
        lines.append(f"  {status['message']}")
    lines += [f"  at submit: {warning}" for warning in status.get("warnings", ())]
    if status["dispatcher"].get("alive") is False:
        lines.append(
            "  the dispatcher is not running; continue the run with: "
            + console_command("retry", status["run_id"], status["run_dir"])
        )
    width = max(len(t["task"]) for t in status["tasks"]) if status["tasks"] else 4
    lines.append(
        f"  {'task'.ljust(width)}  {'elements':>8}  " + "  ".join(f"{s:>9}" for s in STATE_ORDER)
    )
    for task in status["tasks"]:
        size = "-" if task["elements"] is None else str(task["elements"])
        cells = "  ".join(f"{task['counts'].get(s, 0) or '':>9}" for s in STATE_ORDER)
        note = (
            f"  {task['error']}" if task["error"] else ("  waiting" if not task["planned"] else "")
        )
        if task.get("unplanned"):
            note += f"  {task['unplanned']} wait for their upstream element"
        lines.append(f"  {task['task'].ljust(width)}  {size:>8}  {cells}{note}")
    for group in status["failures"]:
        lines.append(f"  {group_label(group)}")
        for example in group["examples"]:
            log = f"  log: {example['log']}" if example["log"] else ""
            lines.append(f"    [{example['element']}] {example['error']}{log}")
    lines += render_retried(status.get("retried", []))
    for task in status["tasks"]:
        for other, count in (task.get("waits_for_runs") or {}).items():
            lines.append(
                f"  {task['task']}: {count} element(s) wait for run {other}, which does the"
                " same work; this run takes its results"
            )
        if task.get("stale"):
            count = sum(task["stale"].values())
            why = ", ".join(f"{reason}: {n}" for reason, n in sorted(task["stale"].items()))
            lines.append(
                f"  {task['task']}: {count} cached output(s) were stale and ran again ({why})"
            )
    return "\n".join(lines) + "\n"


def load_status(
    run_dir: Path, run_id: str | None, *, ask_scheduler: bool = True, failures: bool = True
) -> dict[str, Any]:
    """The status of ``run_id`` (the latest run when None) in ``run_dir``, as data.

    ``ask_scheduler=False`` skips the scheduler query for a Slurm dispatcher's liveness;
    ``failures=False`` skips reading the failed elements.
    """
    with SqliteStore.open(Path(run_dir)) as store:
        run_id = run_id or store.latest_run_id()
        store.run(run_id)
        layout = RunLayout(Path(run_dir), run_id)
        manifest = read_manifest(layout)
        description = manifest["description"]
        tasks = [t["name"] for t in description["tasks"]]
        data = build_status(
            store,
            layout,
            tasks,
            ask_scheduler=ask_scheduler,
            failures=failures,
            allowed=allowed_attempts(description) if failures else None,
            retry_on={
                t["name"]: frozenset((t.get("retry") or {}).get("retry_on", ()))
                for t in description["tasks"]
            },
        )
    asked = asked_resources(manifest)
    for entry in data["tasks"]:
        entry["resources"] = asked.get(entry["task"], {})
    data["warnings"] = list(manifest.get("warnings", ()))  # none in a run of an older reflow
    return data
