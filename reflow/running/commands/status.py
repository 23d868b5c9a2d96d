"""Running: a run's status as data (for ``--json`` and notebooks) and as a table.

Built from a few grouped queries, never from every instance, so it stays fast for runs with
100,000 elements. Failures are grouped by task and reason with a few example elements.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from reflow.definition.errors import UsageError
from reflow.running.dispatch.command import DISPATCHER_MODULE
from reflow.running.dispatch.slurm_chain import dispatcher_alive as slurm_dispatcher_alive
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest
from reflow.running.store.records import DispatcherRecord
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState, RunState

_S = InstanceState
STATE_ORDER = tuple(
    s.value for s in (_S.DONE, _S.CACHED, _S.SUBMITTED, _S.READY, _S.FAILED, _S.CANCELLED)
)
_EXAMPLES = 3
_START_GRACE_S = 30.0


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
    store: SqliteStore, layout: RunLayout, task_names: list[str], *, ask_scheduler: bool = True
) -> dict[str, Any]:
    """Everything ``status`` shows, as JSON-able data.

    With ``ask_scheduler`` a Slurm run's dispatcher job is looked up (one ``squeue`` call);
    without it, ``dispatcher.alive`` is None for Slurm runs.
    """
    run = store.run(layout.run_id)
    counts = store.state_counts(layout.run_id)
    planned = store.planned_tasks(layout.run_id)
    tasks = []
    for name in task_names:
        task_counts = counts.get(name, {})
        error = planned[name][2] if name in planned else ""
        tasks.append(
            {
                "task": name,
                "planned": name in planned,
                "elements": planned[name][1] if name in planned else None,
                "counts": {s: task_counts[s] for s in STATE_ORDER if s in task_counts},
                "error": error,
            }
        )
    failures = []
    for task, state, reason, count in store.failure_groups(layout.run_id):
        examples = [
            {
                "element": row.element,
                "error": row.error or "",
                "attempts": row.attempts,
                "log": str(layout.log(task, row.element)),
            }
            for row in store.failure_examples(layout.run_id, task, reason, _EXAMPLES)
        ]
        failures.append(
            {
                "task": task,
                "state": state,
                "reason": reason or state,
                "count": count,
                "examples": examples,
            }
        )
    alive = None
    is_running = run.state is RunState.RUNNING
    if is_running and run.dispatcher.kind == "slurm" and ask_scheduler:
        alive = slurm_dispatcher_alive(layout, run.dispatcher)
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
        "failures": failures,
        "run_dir": str(layout.root),
    }


def render_status(status: dict[str, Any]) -> str:
    """A table for people: one row per task, then failures grouped by reason."""
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["created"]))
    lines = [
        f"run {status['run_id']} ({status['workflow']}): {status['state'].upper()}"
        f"  executor={status['executor']}  created {created}",
    ]
    if status["message"]:
        lines.append(f"  {status['message']}")
    if status["dispatcher"].get("alive") is False:
        lines.append(
            "  the dispatcher is not running; continue the run with: "
            f"retry {status['run_id']} --run-dir {status['run_dir']}"
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
        lines.append(f"  {task['task'].ljust(width)}  {size:>8}  {cells}{note}")
    for group in status["failures"]:
        lines.append(f"  {group['task']}: {group['count']} {group['state']} ({group['reason']})")
        for example in group["examples"]:
            lines.append(f"    [{example['element']}] {example['error']}  log: {example['log']}")
    return "\n".join(lines) + "\n"


def load_status(run_dir: Path, run_id: str | None, *, ask_scheduler: bool = True) -> dict[str, Any]:
    """The status of ``run_id`` (the latest run when None) in ``run_dir``, as data.

    ``ask_scheduler=False`` skips the scheduler query for a Slurm dispatcher's liveness.
    """
    with SqliteStore.open(Path(run_dir)) as store:
        if run_id is None:
            runs = store.runs()
            if not runs:
                raise UsageError(f"{run_dir} holds no runs yet", hint="submit one first")
            run_id = runs[-1].run_id
        store.run(run_id)
        layout = RunLayout(Path(run_dir), run_id)
        tasks = [t["name"] for t in read_manifest(layout)["description"]["tasks"]]
        return build_status(store, layout, tasks, ask_scheduler=ask_scheduler)
