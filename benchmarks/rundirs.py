"""Setup: run directories in a known state, built through reflow's own store and dispatcher.

Two templates per size N, each a run directory of the benchmark flow (``fanout_flow``):

- ``planned``: one run whose ``prepare`` is done (its result ingested by the dispatcher)
  and whose ``convert`` fan-out of N elements is not planned yet: the next dispatcher turn
  plans and persists N instances.
- ``cached``: run A finished (N convert outputs in the cache; ``finalize`` done) plus run B
  with the same parameters, created but never turned: its first turn finds everything
  cached.

Only the setup takes shortcuts: a worker's result for ``prepare`` is written with reflow's
result writer, and the N convert outputs of run A go into the store through the store's own
``mark_submitted`` and ``ingest_results`` (one batch, no worker processes and no result
files). What the benchmarks time is the unchanged
dispatcher code.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import fanout_flow
from reflow.definition.options import submit_options
from reflow.planning.encoding import to_json, to_text
from reflow.planning.identity import value_hash
from reflow.running.commands.submission import check_params, new_run_id
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.executors.base import BatchRequest, JobState, JobStatus, Submission
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import build_manifest, write_manifest
from reflow.running.rundir.results import result_text, write_result
from reflow.running.store.records import Ended
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState

RUN_OPTIONS = {"force": False, "force_tasks": [], "verify": False}
_PENDING = JobStatus(state=JobState.PENDING)


class NullExecutor:
    """An executor that starts nothing and remembers what it was asked to submit."""

    name = "null"

    def __init__(self) -> None:
        self.submitted: list[tuple[str, int]] = []

    def submit(self, request: BatchRequest, /) -> Submission:
        self.submitted.append((request.task, len(request.elements)))
        return Submission(
            job_ids=tuple(f"null-{request.batch_id}.{e}" for e in request.elements),
            scheduler_ids=(f"null-{request.batch_id}",),
        )

    def cancel(self, job_ids: Sequence[str], /) -> None:
        """Nothing runs, so nothing to cancel."""

    def states(self, job_ids: Sequence[str], /) -> dict[str, JobStatus]:
        return dict.fromkeys(job_ids, _PENDING)


@dataclass(frozen=True, slots=True)
class Template:
    """A run directory and the run a benchmark acts on."""

    root: Path
    run_id: str


def new_run(root: Path, count: int, flow: Any = fanout_flow) -> RunLayout:
    """Record a run of the benchmark flow as ``submit`` would, without starting it."""
    wf = flow.wf
    graph = wf.graph()
    values = check_params(submit_options(graph.tasks), {"count": count}, by_key=False)
    run_id = new_run_id(wf.name)
    manifest = build_manifest(wf, graph, run_id, values)
    layout = RunLayout(root, run_id)
    with SqliteStore.open(root, create=True) as store:
        write_manifest(layout, manifest)
        store.create_run(run_id=run_id, workflow=wf.name, executor="local", options=RUN_OPTIONS)
    return layout


def finish_prepare(layout: RunLayout, count: int, flow: Any = fanout_flow) -> None:
    """Turn once (submits ``prepare``), write its result as a worker would, ingest it."""
    with SqliteStore.open(layout.root) as store:
        dispatcher = make_dispatcher(layout, store, NullExecutor())
        dispatcher.turn()
        (row,) = store.instances(layout.run_id, "prepare")
        assert row.batch is not None, "prepare was not submitted"
        output = to_json(flow.prepare(count))
        now = time.time()
        text = result_text(
            run_id=layout.run_id,
            task="prepare",
            element=0,
            batch=row.batch,
            output=output,
            output_hash=value_hash(to_text(output)),
            error=None,
            started=now,
            ended=now,
            host=socket.gethostname(),
            pid=os.getpid(),
            peak_rss_mb=0.0,
        )
        write_result(layout.result("prepare", 0, row.batch), text)
        dispatcher.ingest()
        if store.state_counts(layout.run_id).get("prepare") != {"done": 1}:
            raise RuntimeError("the prepare result was not ingested")


def build_planned(root: Path, count: int) -> Template:
    """A run directory whose next turn plans a fan-out of ``count`` elements."""
    layout = new_run(root, count)
    finish_prepare(layout, count)
    return Template(root, layout.run_id)


def build_cached(root: Path, count: int) -> tuple[Template, Template]:
    """Run A finished with ``count`` elements, and run B that will find all of it cached.

    Returns:
        (run A, run B): A for ``status`` on a finished run, B for a cached resubmit.
    """
    first = new_run(root, count)
    finish_prepare(first, count)
    with SqliteStore.open(root) as store:
        dispatcher = make_dispatcher(first, store, NullExecutor())
        dispatcher.plan_and_persist(RUN_OPTIONS)
        _mark_done(store, first.run_id, "convert", fanout_flow.convert)
        dispatcher.plan_and_persist(RUN_OPTIONS)
        _mark_done(store, first.run_id, "finalize", lambda _item: count)
        if dispatcher.settle() != "succeeded":
            raise RuntimeError("the first run did not succeed")
    second = new_run(root, count)
    return Template(root, first.run_id), Template(root, second.run_id)


def _mark_done(store: SqliteStore, run_id: str, task: str, compute: Any) -> None:
    """Record every instance of ``task`` as done, with the output ``compute(item)``.

    As one batch would: submitted under one batch id, then every result ingested.
    """
    rows = store.instances(run_id, task)
    names = fanout_flow.prepare(len(rows))
    now = time.time()
    batch = "setup"
    store.mark_submitted(
        run_id, task, batch, [(row.element, f"setup.{row.element}") for row in rows]
    )
    ended = []
    for row in rows:
        text = to_text(to_json(compute(names[row.element])))
        ended.append(
            Ended(
                task=task,
                element=row.element,
                batch=batch,
                state=InstanceState.DONE,
                started=now,
                ended=now,
                output=(text, value_hash(text)),
            )
        )
    store.ingest_results(run_id, ended)
