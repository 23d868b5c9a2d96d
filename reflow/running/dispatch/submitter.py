"""Running: step 4 of a dispatcher turn: hand ready instances to the executor in batches.

One batch per task and resource shape (the task's resources, raised where an element was
retried with more), never one per element; an element held back by a retry's back-off goes
to an executor that can start work later (Slurm's ``--begin``) with that delay, and to one
that cannot only when its time has come. Work is shared between the runs of one run
directory under the share lock (``_share``). Part of ``Dispatcher``.
"""

from __future__ import annotations

import functools
import math
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reflow.definition.errors import SubmissionError, SubmissionLimitError
from reflow.definition.graph import Graph
from reflow.definition.resources import Resources
from reflow.running.dispatch.locks import share_lock
from reflow.running.dispatch.packing import fit_budget, pack_for, packed_resources
from reflow.running.dispatch.retrier import Retrier
from reflow.running.dispatch.retry_rule import resource_shape
from reflow.running.executors.base import BatchRequest, Executor, FailureReason
from reflow.running.rundir.batches import BatchFile, write_batch
from reflow.running.rundir.element_logs import logged_elements
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import manifest_environment, submitted_from
from reflow.running.store.records import InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState
from reflow.running.worker.command import worker_command


class Submitter:
    """The submitting half of ``Dispatcher``, which gives these attributes."""

    layout: RunLayout
    store: SqliteStore
    graph: Graph
    manifest: Mapping[str, Any]
    executor: Executor
    # Most jobs queued at once; a callable is given how many the run would have queued.
    submit_budget: int | Callable[[int], int] | None
    # Jobs of the run that Slurm counts and the store does not: the job running this turn.
    held_jobs: int
    min_task_time_s: int
    submitted_jobs: list[str]
    _retrier: Retrier

    @property
    def run_id(self) -> str:
        """The run this dispatcher drives."""
        return self.layout.run_id

    def submit_ready(self) -> int:
        """Hand every ready instance to the executor, one batch per task, within the budget.

        Work is shared between the runs of one run directory (see ``_share``). Returns how
        many instances were taken from the cache that way.
        """
        ready = self.store.instances_in(self.run_id, [InstanceState.READY])
        if not ready:
            return 0
        if not self.store.others_active(self.run_id):  # only this run's turns change its rows
            self._submit(ready)
            return 0
        with share_lock(self.layout):
            ready = self.store.instances_in(self.run_id, [InstanceState.READY])  # as locked
            rest, adopted = self._share(ready)
            self._submit(rest)
        return adopted

    def _submit(self, ready: list[InstanceRow]) -> None:
        """Submit ``ready`` instances, as many scheduler jobs as the budget allows.

        One batch per task and resource shape: elements retried with raised resources, or
        held back by a retry's back-off, go out together when they ask for the same. An
        executor that cannot start work later (``begins_later``) is not given an element
        before its ``not_before``. On Slurm a batch may pack several elements into one array
        task (``packing``); the budget counts array tasks, as Slurm does.
        """
        now = time.time()
        later = bool(getattr(self.executor, "begins_later", False))
        ready = [row for row in ready if later or (row.not_before or 0) <= now]
        groups: dict[tuple[str, Resources, int], list[InstanceRow]] = defaultdict(list)
        for row in ready:
            begin_s = max(0, math.ceil((row.not_before or 0) - now))
            groups[(row.task, self._retrier.resources(row), begin_s)].append(row)
        limits = getattr(self.executor, "partition_limits", None)  # one sinfo per turn at most
        packs = {
            key: pack_for(  # a local process runs many elements anyway: never packed
                key[1],
                count=len(rows) if self.executor.name != "local" else 1,
                history=functools.partial(self.store.done_elapsed, key[0]),
                max_time_s=None if limits is None else lambda p: limits(p).time_s,
                min_task_s=self.min_task_time_s,
            )
            for key, rows in groups.items()
        }
        room = self._room(
            sum(fit_budget(len(rows), packs[k], None)[1] for k, rows in groups.items())
        )
        plans = self.store.planned_tasks(self.run_id) if groups and room != 0 else {}
        for (task, resources, begin_s), rows in groups.items():
            pack = packs[(task, resources, begin_s)]
            count, jobs = fit_budget(len(rows), pack, room)
            room = None if room is None else room - jobs
            if count:
                self._submit_batch(task, plans[task][0], rows[:count], resources, begin_s, pack)

    def _room(self, wanted: int) -> int | None:
        """How many more jobs the run may queue now (None: no budget), ``wanted`` of them."""
        budget = self.submit_budget
        if budget is None:
            return None
        queued = self.store.queued_jobs(self.run_id) + self.held_jobs
        if callable(budget):  # the cluster's limit, still being asked
            budget = budget(queued + wanted)
        return max(0, budget - queued)

    def next_start(self) -> float | None:
        """When the earliest element held back by a retry's back-off may start, if any."""
        return self.store.earliest_start(self.run_id)

    def _share(self, ready: list[InstanceRow]) -> tuple[list[InstanceRow], int]:
        """The ready instances this run should submit now, and how many it took as cached.

        Called under the share lock while another run is active. A ready instance whose
        result another run made since this run planned it is taken as cached; one whose
        identity another running run claims (submitted there, or ready in an older run) waits
        for it. Both are read in one snapshot, and the lock holds until the rest is marked
        submitted, so two runs of the same work into one run directory run each element once.
        """
        done, claimed = self.store.shared_work(self.run_id, [row.identity for row in ready])
        adopted = 0
        if done:
            by_task: dict[str, list[int]] = defaultdict(list)
            for row in ready:
                if row.identity in done:
                    by_task[row.task].append(row.element)
            adopted = sum(
                self.store.adopt_cached(self.run_id, task, elements)
                for task, elements in by_task.items()
            )
        rest = [row for row in ready if row.identity not in done and row.identity not in claimed]
        return rest, adopted

    def _submit_batch(
        self,
        task: str,
        plan_id: str,
        rows: list[InstanceRow],
        resources: Resources,
        begin_s: int,
        pack: int,
    ) -> None:
        batch = f"{time.strftime('%H%M%S')}{secrets.token_hex(3)}"
        elements = tuple(row.element for row in rows)
        # A packed worker appends an attempt to an element's log only when it printed, failed
        # or has a log already: the dispatcher lists the folder once, no array task does.
        again = logged_elements(self.layout, task, elements) if pack > 1 else frozenset()
        record = BatchFile(task=task, elements=elements, pack=pack, again=again)
        write_batch(self.layout, batch, record)
        request = BatchRequest(
            run_id=self.run_id,
            workflow=self.graph.name,
            task=task,
            batch_id=batch,
            elements=elements,
            resources=packed_resources(resources, pack),
            pack=pack,
            environment=self.graph.task(task).environment.over(manifest_environment(self.manifest)),
            begin_s=begin_s,
            command=worker_command(
                str(self.manifest.get("python") or sys.executable),
                run_dir=self.layout.root,
                run_id=self.run_id,
                task=task,
                batch=batch,
                plan=plan_id,
            ),
            workdir=Path(submitted_from(self.manifest)),
            log_dir=self.layout.logs_dir(task),
            script_path=self.layout.script(task, batch),
        )
        self.layout.logs_dir(task).mkdir(parents=True, exist_ok=True)
        self.layout.results_dir(task).mkdir(parents=True, exist_ok=True)
        try:
            submission = self.executor.submit(request)
        except SubmissionLimitError:
            return  # a submit limit is reached: the instances stay ready for a later turn
        except SubmissionError as err:
            reason = FailureReason.SUBMISSION.value
            self.store.fail_submission(self.run_id, task, elements, reason, err.problem)
            return
        self.submitted_jobs.extend(submission.scheduler_ids)
        jobs = list(zip(elements, submission.job_ids, strict=True))
        self.store.mark_submitted(
            self.run_id,
            task,
            batch,
            jobs,
            resources=resource_shape(resources),
            begin=time.time() + begin_s if begin_s else None,
        )
