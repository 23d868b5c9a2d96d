"""Running: one dispatcher turn: ingest results -> reconcile -> plan -> persist -> submit.

Every step is idempotent: a turn killed at any line and run again converges to the same
state. A result is ingested only while its instance is ``submitted`` with the same batch, so
an element that ran twice is ingested once. Planning itself is the pure ``planner.plan``.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflow.definition.description import graph_from_description, resources_from_json
from reflow.definition.errors import ReflowError, StoreError, UsageError
from reflow.definition.graph import Graph
from reflow.definition.resources import Resources
from reflow.planning.planner import (
    Finished,
    TaskPlan,
    TaskProgress,
    Validator,
    plan,
)
from reflow.planning.task_hits import TaskHit, stored_outputs
from reflow.running.config import load_config
from reflow.running.dispatch.intake import ingest_results, reconcile_jobs
from reflow.running.dispatch.packing import DEFAULT_MIN_TASK_TIME_S as _MIN_TASK_S
from reflow.running.dispatch.retrier import Retrier
from reflow.running.dispatch.snapshot import read_progress
from reflow.running.dispatch.submitter import Submitter
from reflow.running.dispatch.verification import make_validator, record_stale
from reflow.running.executors.base import Executor
from reflow.running.rundir.inputs import write_inputs
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest
from reflow.running.store.foreign import ForeignStore
from reflow.running.store.records import ImportedOutput, InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import (
    ACTIVE,
    FINISHED,
    RUN_FINAL,
    InstanceState,
    RunState,
)

TERMINAL_RUN_STATES = RUN_FINAL
MAX_TURN_ERRORS = 5
"""Turns in a row that may fail (scheduler or store trouble) before the run is failed."""


def turn_problem(layout: RunLayout, err: OSError | ReflowError) -> ReflowError:
    """What a turn that failed reports: a write refused in the run directory is a store error."""
    if isinstance(err, OSError):  # e.g. a full disk while writing inputs or scripts
        return StoreError(f"cannot write in the run directory: {err}", value=str(layout.run))
    return err


def failed_run_message(errors: int, problem: ReflowError) -> str | None:
    """The run's message once ``errors`` turns in a row failed; None while turns may go on."""
    return f"{errors} dispatcher turns failed: {problem}" if errors >= MAX_TURN_ERRORS else None


@dataclass(kw_only=True)
class Dispatcher(Submitter):
    """Everything a turn needs: the run's layout and store, its graph, and an executor."""

    layout: RunLayout
    store: SqliteStore
    graph: Graph
    manifest: Mapping[str, Any]
    executor: Executor
    defaults: Resources = field(default_factory=Resources)
    submit_budget: int | Callable[[int], int] | None = None
    held_jobs: int = 0
    min_task_time_s: int = _MIN_TASK_S
    validate: Validator | None = None
    unknown_is_lost: bool = False
    retries: int | None = None
    submitted_jobs: list[str] = field(default_factory=list)
    # How long the last turn's ingest step took, in seconds (the Slurm turn logs it).
    ingest_s: float = 0.0
    # Whether ready instances are handed to the executor in this turn; the local driver
    # holds them while the executor still has work queued, so that chain elements planned
    # a few at a time go out together instead of one process each.
    may_submit: Callable[[], bool] = field(default=lambda: True)
    # Other run directories' stores (the run's ``cache_from``), opened when first needed in
    # a turn, and the outputs found there per task, until the task's plan is persisted.
    _cache_from: tuple[Path, ...] = field(default=(), init=False, repr=False)
    _foreign: list[ForeignStore] | None = field(default=None, init=False, repr=False)
    _imports: dict[str, dict[str, ImportedOutput]] = field(
        default_factory=dict, init=False, repr=False
    )
    _retrier: Retrier = field(init=False, repr=False)
    # How many cached outputs had changed when this planning began (``outputs_changes``).
    _changes: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._retrier = self._new_retrier()

    def _new_retrier(self) -> Retrier:
        """The turn's retry decisions (it caches partition limits for one turn only)."""
        return Retrier(
            store=self.store,
            run_id=self.run_id,
            graph=self.graph,
            executor=self.executor,
            defaults=self.defaults,
            retries=self.retries,
        )

    def turn(self) -> RunState:
        """Run one turn and return the run's state afterwards."""
        run = self.store.run(self.run_id)
        if run.state in TERMINAL_RUN_STATES:
            return run.state
        self._retrier = self._new_retrier()
        started = time.perf_counter()
        waiting = self.ingest()
        self.ingest_s = time.perf_counter() - started
        self.reconcile(waiting)
        adopted = 1
        while adopted:  # results taken from another run can make more tasks plannable
            self.plan_and_persist(run.options)
            adopted = self.submit_ready() if self.may_submit() else 0
        return self.settle()

    # 1 and 2. Ingest result files; reconcile what is still in flight with the executor.

    def ingest(self) -> list[InstanceRow]:
        """Ingest the result files of submitted instances; return those still without one."""
        return ingest_results(self.store, self.layout, self.run_id, self._retrier)

    def reconcile(self, waiting: list[InstanceRow]) -> None:
        """Fail instances whose job ended without a result; requeue lost ones."""
        reconcile_jobs(
            self.store,
            self.layout,
            self.run_id,
            self.executor,
            waiting,
            unknown_is_lost=self.unknown_is_lost,
            retrier=self._retrier,
        )

    # 3. Plan what became plannable, and persist it.

    def progress(self) -> dict[str, TaskProgress]:
        """A snapshot of the run's planned tasks; outputs only where a task needs them."""
        return read_progress(self.store, self.graph, self.run_id)

    def plan_and_persist(self, options: Mapping[str, Any]) -> list[TaskPlan]:
        """Plan every plannable task and write instances (cached or ready) and input files."""
        self._cache_from = tuple(Path(folder) for folder in options.get("cache_from", ()))
        self._changes = self.store.outputs_changes()  # before any output is read
        try:
            result = plan(
                self.graph,
                self.manifest["params"],
                self.progress(),
                self._lookup,
                force_tasks=options.get("force_tasks", ()),
                force_all=bool(options.get("force", False)),
                validate=self.validate if options.get("verify") else None,
                task_lookup=self._task_lookup,
            )
            for task_plan in result.tasks:
                self._persist(task_plan)
            self._record_digests(result.tasks)
            record_stale(self.layout, self.validate)
        finally:
            for foreign in self._foreign or ():
                foreign.close()
            self._foreign = None
            self._imports.clear()
        return list(result.tasks)

    def _lookup(self, task: str, identities: Sequence[str]) -> dict[str, Finished]:
        """Cache hits in this run directory's store, then in the ``cache_from`` stores."""
        found = self.store.cached_outputs(task, identities)
        hits = {i: Finished.from_text(value, digest) for i, (value, digest) in found.items()}
        if self._cache_from:
            missing = [i for i in identities if i not in found]
            if missing:
                imported = self._lookup_elsewhere(task, missing)
                hits.update((i, Finished.from_text(o.value, o.hash)) for i, o in imported.items())
        return hits

    def _task_lookup(self, task: str, key: str) -> TaskHit | None:
        """The whole task from the cache: an earlier planning with ``key``, every output kept."""
        found = self.store.task_hit(self.run_id, task, key, self._changes)
        if found is None:
            return None
        source, size, hashes, digest = found
        store = self.store
        outputs = stored_outputs(
            size,
            hashes=hashes,
            digest=digest,
            read_hashes=lambda: store.planned_hashes(source, task),
            read=lambda: store.planned_outputs(source, task),
        )
        return TaskHit(source=source, outputs=outputs)

    def _record_digests(self, plans: Sequence[TaskPlan]) -> None:
        """Record the digests of whole upstream outputs the plans' keys were computed from.

        Only for an upstream task planned whole in this run (it has a key) and with an
        output per element; a later run that finds nothing changed since takes them as
        they are, without reading one hash.
        """
        if not any(task_plan.digests for task_plan in plans):
            return
        keys = self.store.task_keys(self.run_id)
        sizes = {
            task: size for task, (_p, size, _e) in self.store.planned_tasks(self.run_id).items()
        }
        found = {
            (source, keys[source]): digest
            for task_plan in plans
            for source, (digest, count) in task_plan.digests.items()
            if keys.get(source) and sizes.get(source) == count
        }
        records = [(task, key, digest) for (task, key), digest in found.items()]
        self.store.record_task_outputs(records, self._changes)

    def _lookup_elsewhere(self, task: str, missing: list[str]) -> dict[str, ImportedOutput]:
        """Outputs of ``missing`` identities in the ``cache_from`` stores: one query each."""
        if self._foreign is None:
            self._foreign = _open_foreign(self._cache_from)
        imported: dict[str, ImportedOutput] = {}
        for foreign in self._foreign:
            if not missing:
                break
            found = foreign.cached_outputs(task, missing)
            if found:
                imported.update(found)
                missing = [i for i in missing if i not in found]
        self._imports[task] = imported
        return imported

    def _persist(self, task_plan: TaskPlan) -> None:
        plan_id = secrets.token_hex(4)
        if task_plan.whole is not None:
            self.store.persist_task_hit(
                self.run_id,
                task_plan.task,
                plan_id=plan_id,
                task_key=task_plan.key,
                source=task_plan.whole.source,
                size=task_plan.whole.size,
            )
            return
        chain = None
        if task_plan.elements is not None:
            chain = (task_plan.element_count, task_plan.elements, task_plan.blocked)
            if not task_plan.runnable:  # the inputs file of the task's plan stays
                plan_id = self.store.planned_tasks(self.run_id).get(task_plan.task, (plan_id,))[0]
        if task_plan.runnable:
            write_inputs(self.layout, task_plan.task, plan_id, task_plan.inputs)
        imports = self._imports.pop(task_plan.task, None)
        imported = []
        if imports:
            identity_of = task_plan.identity_of()
            used = {identity_of[element] for element in task_plan.cached}
            imported = [output for identity, output in imports.items() if identity in used]
        self.store.persist_plan(
            self.run_id,
            task_plan.task,
            plan_id=plan_id,
            identities=task_plan.identities,
            cached=task_plan.cached,
            error=task_plan.error,
            rejected=task_plan.rejected,
            imported=imported,
            chain=chain,
            task_key=task_plan.key,
        )

    # 5. Settle the run's state.

    def settle(self) -> RunState:
        """Set and return the run's state: running, or how it ended."""
        counts = self.store.state_counts(self.run_id)
        planned = self.store.planned_tasks(self.run_id)
        active = sum(c.get(s, 0) for c in counts.values() for s in ACTIVE)
        if active:
            return RunState.RUNNING
        state, message = _ending(counts, planned, len(self.graph.tasks))
        if not self.store.finish_run(self.run_id, state, message):
            return self.store.run(self.run_id).state
        return state


def _ending(
    counts: Mapping[str, Mapping[str, int]],
    planned: Mapping[str, tuple[str, int, str]],
    task_count: int,
) -> tuple[RunState, str]:
    """How a run with nothing active ends, and the message that says why."""
    errors = sorted(t for t, (_p, _s, error) in planned.items() if error)
    unplanned = sum(size - sum(counts.get(t, {}).values()) for t, (_p, size, _e) in planned.items())
    unfinished = sum(n for c in counts.values() for s, n in c.items() if s not in FINISHED)
    if len(planned) == task_count and not errors and not unfinished and not unplanned:
        return RunState.SUCCEEDED, ""
    failed = sum(c.get(InstanceState.FAILED, 0) for c in counts.values())
    cancelled = sum(c.get(InstanceState.CANCELLED, 0) for c in counts.values())
    blocked = sum(c.get(InstanceState.BLOCKED, 0) for c in counts.values())
    if cancelled and not failed:
        tasks = sorted(t for t, c in counts.items() if c.get(InstanceState.CANCELLED))
        return RunState.CANCELLED, (
            f"{cancelled} instance(s) of {', '.join(tasks)} cancelled by the user;"
            " retry runs them again"
        )
    # Nothing active, yet not done: everything that could run has run.
    parts = [f"{failed} instance(s) failed"] if failed else []
    if blocked:
        parts.append(f"{blocked} blocked by a failed upstream element")
    if errors:
        parts.append(f"{len(errors)} task(s) could not be planned ({', '.join(errors)})")
    return RunState.FAILED, "; ".join(parts or ["the run could not go on"])


def _open_foreign(folders: Sequence[Path]) -> list[ForeignStore]:
    """Open the stores of ``folders`` to read; one that can no longer be read is skipped.

    Submit checked every folder; one removed or replaced since then costs its cache hits,
    not the run, and a line in the dispatcher's log says so.
    """
    stores = []
    for folder in folders:
        try:
            stores.append(ForeignStore.open(folder))
        except UsageError as err:
            sys.stderr.write(f"warning: {err}; its cached results are not used\n")
    return stores


def make_dispatcher(
    layout: RunLayout, store: SqliteStore, executor: Any, **extra: Any
) -> Dispatcher:
    """A dispatcher for the run in ``layout`` with the resource defaults the run recorded.

    A run recorded before its manifest held them takes the config's.
    """
    manifest = read_manifest(layout)
    graph = graph_from_description(manifest["description"])
    recorded = manifest.get("defaults")
    config = load_config()
    return Dispatcher(
        layout=layout,
        store=store,
        graph=graph,
        manifest=manifest,
        executor=executor,
        defaults=config.resources if recorded is None else resources_from_json(recorded),
        min_task_time_s=config.min_task_time_s or _MIN_TASK_S,
        retries=config.retries,
        validate=make_validator(manifest),
        **extra,
    )
