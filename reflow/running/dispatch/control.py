"""Running: cancel and retry a run (the store first, then the executor, then a dispatcher).

Both are safe to repeat. ``retry`` verifies cached upstream outputs by default: a stale one
is removed from the cache, and its task and everything downstream of it are planned again.
It also takes the resources and interpreter the user fixed since submit (``option_changes``)
into the run's manifest, which every later dispatcher turn reads.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from reflow.definition.description import graph_from_description
from reflow.definition.errors import StoreError, UsageError, suggest
from reflow.definition.graph import Graph
from reflow.planning.planner import Finished
from reflow.running.config import load_config
from reflow.running.dispatch.drive import launch
from reflow.running.dispatch.intake import ingest_results, reconcile_jobs
from reflow.running.dispatch.locks import dispatcher_lock
from reflow.running.dispatch.option_changes import OptionChange, Refreshed, refresh_options
from reflow.running.dispatch.verification import holds_path, make_validator, record_stale
from reflow.running.executors.local import LocalExecutor
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.rundir.element_logs import keep_cut_segments
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest, write_manifest
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import FAILED, InstanceState, RunState


class Retried(int):
    """How many failed and cancelled instances run again (the int itself), and what changed.

    ``resumed`` says whether the run goes on; ``changes`` are the options the retry changed
    (``OptionChange``, whose ``str()`` is the line the CLI prints); ``notes`` say what it
    could not take from the flow file.
    """

    resumed: bool
    changes: tuple[OptionChange, ...]
    notes: tuple[str, ...]

    def __new__(
        cls,
        count: int,
        *,
        resumed: bool,
        changes: Sequence[OptionChange] = (),
        notes: Sequence[str] = (),
    ) -> Retried:
        made = super().__new__(cls, count)
        made.resumed = resumed
        made.changes = tuple(changes)
        made.notes = tuple(notes)
        return made

    @property
    def count(self) -> int:
        """How many failed and cancelled instances run again."""
        return int(self)

    def __repr__(self) -> str:
        changes = [str(change) for change in self.changes]
        return f"Retried({int(self)}, resumed={self.resumed}, changes={changes})"


def executor_for(mode: str, layout: RunLayout) -> Any:
    """An executor able to cancel and query the jobs of a run made with ``mode``."""
    if mode == "slurm":
        return SlurmExecutor.configured(layout)
    return LocalExecutor(run_root=layout.run)


def _check_task(graph: Graph, task: str | None) -> None:
    names = [spec.name for spec in graph.tasks]
    if task is not None and task not in names:
        raise UsageError(
            f"the run has no task {task!r}",
            param="task",
            value=task,
            suggestion=suggest(task, names),
            hint=f"its tasks: {', '.join(names)}",
        )


def cancel_run(root: Any, run_id: str, task: str | None = None) -> int:
    """Cancel the run's active instances (of ``task`` only when given); return how many.

    A run that already ended keeps its state: only a running run becomes ``cancelled``.
    """
    layout = RunLayout(root, run_id)
    with SqliteStore.open(layout.root) as store:
        run = store.run(run_id)
        _check_task(graph_from_description(read_manifest(layout)["description"]), task)
        active = store.cancel(run_id, task)
    job_ids = [str(row.job_id) for row in active if row.job_id]
    extra = list(run.dispatcher.pending_jobs) if task is None else []
    if job_ids or extra:
        executor_for(run.executor, layout).cancel([*job_ids, *extra])
    # What a cancelled packed element printed is in its array task's shared output: keep it.
    stopped = [(row.task, str(row.batch), row.element) for row in active if row.batch]
    with contextlib.suppress(OSError):
        keep_cut_segments(layout, stopped, ended=False)
    return len(active)


def retry(
    root: Any,
    run_id: str,
    task: str | None = None,
    *,
    verify: bool = True,
    resources: Mapping[str, Mapping[str, Any]] | None = None,
    label: str = "resources=",
    dry_run: bool = False,
) -> Retried:
    """Make failed and cancelled instances runnable again and restart the dispatcher.

    Returns how many instances run again (not counting stale upstream ones), as an ``int``
    that also says whether the run goes on and which options it changed.

    The tasks' resources are taken from the flow file as it is now, the resource defaults
    and interpreter from the config, and ``resources`` (``{"convert": {"mem": "8G"}}``, from
    ``label``) over both; the manifest is rewritten when they changed anything. A succeeded
    run with nothing to rerun is left as it is (``resumed`` is False, nothing changes); a
    failed, cancelled or running one gets a dispatcher again. ``dry_run`` only says what
    would change.

    Raises:
        UsageError: ``task`` or an override is wrong; nothing was changed.
        ConfigError: The config's interpreter cannot run here; nothing was changed.
    """
    layout = RunLayout(root, run_id)
    with SqliteStore.open(layout.root) as store:
        run = store.run(run_id)
        manifest = read_manifest(layout)
        graph = graph_from_description(manifest["description"])
        _check_task(graph, task)
        refreshed = refresh_options(
            manifest,
            graph,
            load_config(),
            overrides=resources or {},
            label=label,
            interpreter=sys.executable,
        )
        if run.state is RunState.RUNNING and run.executor == "slurm" and not dry_run:
            _take_in_ended_jobs(layout, store)
        retried = [
            row for row in store.instances_in(run_id, FAILED) if task is None or row.task == task
        ]
        if dry_run:
            return Retried(
                len(retried), resumed=False, changes=refreshed.changes, notes=refreshed.notes
            )
        planned = store.planned_tasks(run_id)
        # What a failure blocked is planned again: blocked chain elements as their upstream
        # elements end, and tasks that could not be planned once their inputs have.
        after = graph.downstream({row.task for row in retried} | ({task} if task else set()))
        scope = None if task is None else after | {task}
        broken = [t for t, (_p, _s, err) in planned.items() if err and t in (scope or {t})]
        blocked = [
            row for row in store.instances_in(run_id, [InstanceState.BLOCKED])
            if scope is None or row.task in scope
        ]  # fmt: skip
        stale: set[str] = set()
        if verify:
            targets = {row.task for row in retried} | set(broken) | ({task} if task else set())
            validator = make_validator(manifest)
            stale = _stale_tasks(store, graph, run_id, targets, validator)
            record_stale(layout, validator)
        replan = set(broken) | stale | graph.downstream(stale)
        if run.state is RunState.SUCCEEDED and not retried and not replan:
            return Retried(0, resumed=False, notes=refreshed.notes)
        if refreshed.manifest != manifest:
            _rewrite_manifest(layout, refreshed)  # before the dispatcher reads it
        elements = [(row.task, row.element) for row in retried]
        unblock = {row.task for row in blocked}
        resumed = store.reset_for_retry(run_id, elements, replan, unblock)
    if resumed:
        launch(layout, run.executor)
    return Retried(
        len(retried) + len(blocked),
        resumed=resumed,
        changes=refreshed.changes,
        notes=refreshed.notes,
    )


def _take_in_ended_jobs(layout: RunLayout, store: SqliteStore) -> None:
    """Record how the jobs that ended while no dispatcher turn ran ended, to retry them now.

    A Slurm run whose chain died (a turn job that could not start, say with a wrong
    ``python``) still holds its ended jobs as submitted; read, they are failed, and this
    retry runs them again instead of a turn failing the run after it. Skipped while a turn
    holds the run (it takes them in itself).
    """
    with dispatcher_lock(layout) as mine:
        if mine:
            waiting = ingest_results(store, layout, layout.run_id)
            executor = SlurmExecutor.configured(layout)
            reconcile_jobs(store, layout, layout.run_id, executor, waiting, unknown_is_lost=False)


def _rewrite_manifest(layout: RunLayout, refreshed: Refreshed) -> None:
    """Write the retry's manifest (atomically), then its changes and notes into the log.

    Raises:
        StoreError: The manifest cannot be written; the run is as it was.
    """
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    lines = [*(str(change) for change in refreshed.changes), *refreshed.notes]
    try:
        write_manifest(layout, refreshed.manifest)
    except OSError as err:
        raise StoreError(
            f"cannot write the run manifest {layout.manifest}: {err.strerror or err}",
            value=str(layout.manifest),
            hint="free space in the run directory (or make it writable) and retry again",
            command=("retry", layout.run_id, "--run-dir", str(layout.root)),
        ) from err
    with contextlib.suppress(OSError), layout.dispatcher_log.open("a", encoding="utf-8") as log:
        log.writelines(f"{stamp} retry: {line}\n" for line in lines)  # the CLI showed them too


def _stale_tasks(
    store: SqliteStore, graph: Graph, run_id: str, targets: set[str], validate: Any
) -> set[str]:
    """Upstream tasks of ``targets`` with a finished output that no longer verifies."""
    ancestors: set[str] = set()
    frontier = set(targets)
    while frontier:
        ups = {up for name in frontier for up in graph.task(name).upstream} - ancestors
        ancestors |= ups
        frontier = ups
    stale: set[str] = set()
    doomed: list[str] = []
    for name in ancestors:
        spec = graph.task(name)
        if not (holds_path(spec.returns) or spec.has_verify):
            continue
        rows = store.instances(run_id, name)
        outputs = {e: Finished.from_text(v, h) for e, v, h in store.element_outputs(run_id, name)}
        for row in rows:
            finished = outputs.get(row.element)
            if finished is not None and not validate(spec, finished):
                stale.add(name)
                doomed.append(row.identity)
    store.forget_outputs(doomed)
    return stale
