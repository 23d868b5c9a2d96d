"""The instance state machine, driven at random against a real sqlite store.

A Hypothesis state machine plans (a chain element by element, some elements blocked),
submits, refuses, writes result files, ingests them (and replays old results), loses jobs,
cancels (a run or a task), retries, forgets tasks, settles and restarts the dispatcher
(closes and reopens the store) on a run of three small tasks. The
writes are the store's own intent-named methods; results are real result files ingested by
the dispatcher's intake. After every step the store is compared with a small model, and
every instance's change is checked against ``states.INSTANCE_TRANSITIONS``:

- a final instance state (done, cached, failed, cancelled, blocked) changes only through
  retry (which also forgets blocked instances of a chain) or forget (which deletes the rows
  of a task that retry replans);
- every result is ingested at most once: per (element, batch) at most one move out of
  ``submitted``, and one cache output per done instance;
- attempts never decrease, except that retry resets them to 0 and requeueing a job that
  never started gives back the one attempt its submission counted;
- cancel is sticky: a cancelled instance never becomes done without a retry;
- only moves of the table happen, each under the intent that allows it.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from reflow.planning.encoding import to_text
from reflow.planning.identity import value_hash
from reflow.running.dispatch.intake import ingest_results
from reflow.running.rundir.layout import STORE_NAME, RunLayout
from reflow.running.rundir.results import ResultError, result_text, write_result
from reflow.running.store.records import Ended, Retry
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import (
    ACTIVE,
    FAILED,
    FINAL,
    INSTANCE_TRANSITIONS,
    RUN_FINAL,
    STOPPED,
    InstanceState,
    Intent,
    RunState,
    allowed_instance_moves,
)

S = InstanceState
RUN = "r1"
SIZES = {"a": 2, "b": 1, "c": 2}
CHAIN = "c"
"""A task planned element by element (a 1:1 chain): some elements may be blocked."""
TASKS = st.sampled_from(sorted(SIZES))
Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Row:
    state: InstanceState
    attempts: int
    batch: str | None


class InstanceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="reflow-states-"))
        self.layout = RunLayout(self.root, RUN)
        self.store = SqliteStore.open(self.root, create=True)
        self.store.create_run(run_id=RUN, workflow="w", executor="local", options={})
        self.model: dict[Key, Row] = {}
        self.run_state = RunState.RUNNING
        self.generation = 0
        self.batches = 0
        self.results: list[Ended] = []  # every result written, for replays
        self.ingested: Counter[tuple[str, int, str]] = Counter()
        self.done_outputs = 0
        self.intent: Intent | None = None
        self.before = self.snapshot()
        self.run_before = RunState.RUNNING

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # Reading the store

    def snapshot(self) -> dict[Key, Row]:
        return {
            (r.task, r.element): Row(r.state, r.attempts, r.batch)
            for r in self.store.instances(RUN)
        }

    def has(self, *states: InstanceState) -> bool:
        return any(r.state in states for r in self.model.values())

    def keys(self, task: str | None, states: frozenset[InstanceState]) -> list[Key]:
        return sorted(
            k for k, r in self.model.items() if (task in (None, k[0])) and r.state in states
        )

    # Rules: each sets the intent its moves must be allowed by

    @initialize(data=st.data())
    def start(self, data: st.DataObject) -> None:
        """The first turn: plan every task, submit what is ready."""
        self.plan(data)
        self.before = self.check_moves(self.before)
        for task in sorted(SIZES):
            self.submit(task, refuse=False)
            self.before = self.check_moves(self.before)

    @precondition(lambda self: len({k[0] for k in self.model}) < len(SIZES))
    @rule(data=st.data())
    def plan(self, data: st.DataObject) -> None:
        """Persist the plan of every task not planned yet."""
        self.intent = Intent.PERSIST_PLAN
        for task in sorted(set(SIZES) - {k[0] for k in self.model}):
            self.plan_task(task, data)

    def plan_task(self, task: str, data: st.DataObject) -> None:
        self.generation += 1
        size = SIZES[task]
        cached = data.draw(st.sets(st.integers(0, size - 1)))
        identities = [f"{task}-{e}-{self.generation}" for e in range(size)]
        self.store.persist_plan(
            RUN, task, plan_id=f"p{self.generation}", identities=identities, cached=cached
        )
        for e in range(size):
            self.model[(task, e)] = Row(S.CACHED if e in cached else S.READY, 0, None)

    @precondition(lambda self: sum(k[0] == CHAIN for k in self.model) < SIZES[CHAIN])
    @rule(data=st.data())
    def plan_elements(self, data: st.DataObject) -> None:
        """Plan the chain's elements not planned yet: ready, cached or blocked."""
        self.intent = Intent.PERSIST_PLAN
        self.generation += 1
        missing = [e for e in range(SIZES[CHAIN]) if (CHAIN, e) not in self.model]
        chosen = data.draw(st.lists(st.sampled_from(missing), unique=True))
        kinds = {e: data.draw(st.sampled_from([S.READY, S.CACHED, S.BLOCKED])) for e in chosen}
        planned = [e for e in chosen if kinds[e] is not S.BLOCKED]
        blocked = {e: "upstream a[0] failed" for e in chosen if kinds[e] is S.BLOCKED}
        self.store.persist_plan(
            RUN,
            CHAIN,
            plan_id=f"p{self.generation}",
            identities=[f"{CHAIN}-{e}-{self.generation}" for e in planned],
            cached={e for e in planned if kinds[e] is S.CACHED},
            chain=(SIZES[CHAIN], planned, blocked),
        )
        for e in chosen:
            self.model[(CHAIN, e)] = Row(kinds[e], 0, None)

    @precondition(lambda self: self.has(S.READY))
    @rule(task=TASKS, refuse=st.booleans())
    def submit(self, task: str, refuse: bool) -> None:
        ready = self.keys(task, frozenset({S.READY}))
        if not ready:
            return
        if refuse:
            self.intent = Intent.FAIL_SUBMISSION
            self.store.fail_submission(RUN, task, [e for _t, e in ready], "submission", "no")
            for key in ready:
                self.model[key] = replace(self.model[key], state=S.FAILED)
            return
        self.intent = Intent.MARK_SUBMITTED
        self.batches += 1
        batch = f"b{self.batches}"
        self.store.mark_submitted(RUN, task, batch, [(e, f"{batch}.{e}") for _t, e in ready])
        for key in ready:
            row = self.model[key]
            self.model[key] = Row(S.SUBMITTED, row.attempts + 1, batch)

    @precondition(lambda self: self.has(S.SUBMITTED))
    @rule(data=st.data())
    def write_results(self, data: st.DataObject) -> None:
        """Workers write the result files of some submitted elements (the store is untouched)."""
        self.intent = None  # no store write at all
        submitted = self.keys(None, frozenset({S.SUBMITTED}))
        for key in data.draw(st.lists(st.sampled_from(submitted), unique=True)):
            self.write_result(*key, ok=data.draw(st.booleans()))

    def write_result(self, task: str, element: int, *, ok: bool) -> None:
        batch = str(self.model[(task, element)].batch)
        if any((r.task, r.element, r.batch) == (task, element, batch) for r in self.results):
            return  # one result file per element and batch
        now = time.time()
        digest = value_hash(to_text(element))
        text = result_text(
            run_id=RUN,
            task=task,
            element=element,
            batch=batch,
            output=element if ok else None,
            output_hash=digest if ok else None,
            error=None if ok else ResultError(type="ValueError", message="bad"),
            started=now,
            ended=now,
            host=socket.gethostname(),
            pid=os.getpid(),
            peak_rss_mb=1.0,
        )
        write_result(self.layout.result(task, element, batch), text)
        self.results.append(
            Ended(
                task=task,
                element=element,
                batch=batch,
                state=S.DONE if ok else S.FAILED,
                started=now,
                ended=now,
                output=(to_text(element), digest) if ok else None,
            )
        )

    @rule(restart=st.booleans())
    def ingest(self, restart: bool) -> None:
        """The dispatcher's intake reads result files; then every old result is offered again.

        With ``restart`` the dispatcher died before and a new one opens the store again.
        """
        self.intent = Intent.INGEST_RESULT
        if restart:
            self.store.close()
            self.store = SqliteStore.open(self.root)
        ingest_results(self.store, self.layout, RUN)
        self.store.ingest_results(RUN, self.results)
        for result in self.results:
            key = (result.task, result.element)
            row = self.model.get(key)
            if row is not None and row.state is S.SUBMITTED and row.batch == result.batch:
                self.model[key] = replace(row, state=result.state)
                self.done_outputs += result.state is S.DONE

    @precondition(lambda self: self.has(S.SUBMITTED))
    @rule(data=st.data(), started=st.booleans(), requeue=st.booleans())
    def lose_job(self, data: st.DataObject, started: bool, requeue: bool) -> None:
        """Reconcile: a job ended without a result; it is requeued or failed."""
        submitted = self.keys(None, frozenset({S.SUBMITTED}))
        if not submitted:
            return
        key = data.draw(st.sampled_from(submitted))
        row = self.model[key]
        batch = str(row.batch)
        if requeue:
            self.intent = Intent.REQUEUE_LOST
            self.store.requeue_lost(RUN, [(key[0], key[1], batch, not started)])
            self.model[key] = Row(S.READY, row.attempts - (not started), row.batch)
        else:
            self.intent = Intent.FAIL_LOST
            lost = Ended(
                task=key[0],
                element=key[1],
                batch=batch,
                state=S.FAILED,
                started=None,
                ended=time.time(),
                reason="lost",
            )
            self.store.fail_lost(RUN, [lost])
            self.model[key] = replace(row, state=S.FAILED)

    @precondition(lambda self: self.has(S.SUBMITTED))
    @rule(data=st.data())
    def retry_on_its_own(self, data: st.DataObject) -> None:
        """Reconcile or intake: a failed attempt goes out again with raised resources."""
        submitted = self.keys(None, frozenset({S.SUBMITTED}))
        if not submitted:
            return
        key = data.draw(st.sampled_from(submitted))
        row = self.model[key]
        self.intent = Intent.AUTO_RETRY
        failed = Ended(
            task=key[0],
            element=key[1],
            batch=str(row.batch),
            state=S.FAILED,
            started=None,
            ended=time.time(),
            reason="out_of_memory",
        )
        retry = Retry(failed=failed, not_before=time.time(), resources={"mem_mb": 512})
        assert self.store.auto_retry(RUN, [retry]) == 1
        assert self.store.auto_retry(RUN, [retry]) == 0  # seen again by a later turn
        self.model[key] = replace(row, state=S.READY)

    @rule(task=st.none() | TASKS)
    def cancel(self, task: str | None) -> None:
        self.intent = Intent.CANCEL
        active = self.keys(task, ACTIVE)
        cancelled = self.store.cancel(RUN, task)
        assert sorted((r.task, r.element) for r in cancelled) == active
        for key in active:
            self.model[key] = replace(self.model[key], state=S.CANCELLED)
        if task is None and self.run_state is RunState.RUNNING:
            self.run_state = RunState.CANCELLED

    @precondition(
        lambda self: self.has(S.FAILED, S.CANCELLED, S.BLOCKED) or self.run_state in RUN_FINAL
    )
    @rule(task=st.none() | TASKS, data=st.data(), unblock=st.booleans())
    def retry(self, task: str | None, data: st.DataObject, unblock: bool) -> None:
        """Retry; the caller's list may be stale, so it also names elements no longer failed.

        With ``unblock`` the chain's blocked elements are forgotten too.
        """
        self.intent = Intent.RETRY
        named = self.keys(task, FAILED)
        stale = data.draw(st.lists(st.sampled_from(sorted(self.model) or [("a", 0)])))
        blocked = self.keys(CHAIN, frozenset({S.BLOCKED})) if unblock else []
        resumed = self.store.reset_for_retry(
            RUN, [*named, *stale], unblock=[CHAIN] if unblock else []
        )
        again = sorted(
            {k for k in [*named, *stale] if k in self.model} & set(self.keys(None, FAILED))
        )
        for key in again:
            self.model[key] = Row(S.READY, 0, self.model[key].batch)
        for key in blocked:
            del self.model[key]
        if self.run_state in (RunState.FAILED, RunState.CANCELLED) or (
            self.run_state is RunState.SUCCEEDED and (again or blocked)
        ):
            self.run_state = RunState.RUNNING
        assert resumed == (self.run_state is RunState.RUNNING)

    @rule(task=TASKS)
    def forget(self, task: str) -> None:
        """Retry replans a task (a stale upstream output): its rows are deleted."""
        self.intent = Intent.FORGET
        self.store.forget_tasks(RUN, [task])
        for key in [k for k in self.model if k[0] == task]:
            del self.model[key]

    @precondition(lambda self: self.run_state is RunState.RUNNING)
    @rule()
    def settle(self) -> None:
        """The dispatcher ends a run with nothing active."""
        self.intent = None
        if self.keys(None, ACTIVE):
            return
        states = {r.state for r in self.model.values()}
        ending = RunState.FAILED if states & STOPPED else RunState.SUCCEEDED
        assert self.store.finish_run(RUN, ending, "")
        self.run_state = ending

    # Checks after every step

    @invariant()
    def store_matches_model_and_moves_follow_the_table(self) -> None:
        self.before = self.check_moves(self.before)

    def check_moves(self, before: dict[Key, Row]) -> dict[Key, Row]:
        after = self.snapshot()
        assert {k: r.state for k, r in after.items()} == {k: r.state for k, r in self.model.items()}
        assert {k: r.attempts for k, r in after.items()} == {
            k: r.attempts for k, r in self.model.items()
        }
        for key in set(before) | set(after):
            old, new = before.get(key), after.get(key)
            was, now = (old.state if old else None), (new.state if new else None)
            if was == now:
                if old and new and old.attempts != new.attempts:
                    raise AssertionError(f"{key}: attempts changed in {was} by {self.intent}")
                continue
            assert (was, now) in allowed_instance_moves(), (key, was, now)
            assert self.intent is not None, f"{key}: {was} -> {now} without a write"
            # retry also forgets blocked instances, under its own intent
            intent = Intent.UNBLOCK if self.intent is Intent.RETRY and was is S.BLOCKED else None
            befores, afters = INSTANCE_TRANSITIONS[intent or self.intent]
            assert was in befores, (key, was, now, self.intent)
            assert now in afters, (key, was, now, self.intent)
            if was in FINAL:  # final states change only through retry (or forget)
                assert self.intent in (Intent.RETRY, Intent.FORGET), (key, was, now)
            if was is S.CANCELLED:  # cancel is sticky
                assert now is not S.DONE
            if old and new:
                self.check_attempts(key, old, new)
            if was is S.SUBMITTED and now in (S.DONE, S.FAILED) and old is not None:
                self.ingested[(key[0], key[1], str(old.batch))] += 1
        assert all(n == 1 for n in self.ingested.values()), self.ingested
        return after

    def check_attempts(self, key: Key, old: Row, new: Row) -> None:
        """Attempts never decrease, but retry resets them and an unstarted requeue gives one
        back."""
        if self.intent is Intent.RETRY:
            assert new.attempts == 0, key
        elif self.intent is Intent.REQUEUE_LOST:
            assert new.attempts in (old.attempts, old.attempts - 1), key
        else:
            assert new.attempts >= old.attempts, (key, old, new)

    @invariant()
    def each_result_is_ingested_once(self) -> None:
        with sqlite3.connect(self.root / STORE_NAME) as db:
            (outputs,) = db.execute("SELECT count(*) FROM outputs").fetchone()
        assert outputs == self.done_outputs

    @invariant()
    def run_state_moves_only_as_allowed(self) -> None:
        now = self.store.run(RUN).state
        assert now is self.run_state
        if self.run_before in RUN_FINAL and now != self.run_before:
            assert self.intent is Intent.RETRY, (self.run_before, now, self.intent)
        self.run_before = now


InstanceMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestInstanceStateMachine = InstanceMachine.TestCase
