"""Running: a dispatcher turn's retry decisions, with what they need from the run and cluster.

``Retrier`` applies the rule of ``retry_rule`` to one failed attempt: it knows each task's
retry options and resources (from the run's manifest), the config's ``retries``, and asks the
executor for the partition's limits only when memory or time is to be raised (once per turn
and partition at most). When an element is not retried after earlier attempts, its failure
message sums up its history and the fix (``summed_up_all``, one query for a turn's failures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from reflow.definition.graph import Graph
from reflow.definition.resources import Resources
from reflow.definition.retry_policy import DEFAULT_RETRIES
from reflow.running.dispatch.retry_rule import (
    decide,
    show_resource,
    submission_resources,
)
from reflow.running.executors.base import Executor, FailureReason, PartitionLimits
from reflow.running.store.records import Attempt, Ended, InstanceRow, Retry
from reflow.running.store.sqlite import SqliteStore

_RAISES = {
    FailureReason.OUT_OF_MEMORY.value: "mem",
    FailureReason.TIMEOUT.value: "time",
}


@dataclass(kw_only=True)
class Retrier:
    """Decides, for one turn, which failed attempts go out again."""

    store: SqliteStore
    run_id: str
    graph: Graph
    executor: Executor
    defaults: Resources
    retries: int | None = None
    _limits: dict[str | None, PartitionLimits] = field(default_factory=dict, init=False)
    _notes: dict[tuple[str, int], str] = field(default_factory=dict, init=False)
    _bases: dict[str, Resources] = field(default_factory=dict, init=False)

    def resources(self, row: InstanceRow) -> Resources:
        """What ``row``'s next (or last) submission asks for."""
        base = self._bases.get(row.task)
        if base is None:
            base = self._bases[row.task] = self.graph.task(row.task).resources.over(self.defaults)
        return submission_resources(base, row.raised()) if row.resources else base

    def retries_of(self, task: str) -> int:
        """How many times an element of ``task`` may go out again on its own."""
        given = self.graph.task(task).retry.retries
        if given is not None:
            return given
        return DEFAULT_RETRIES if self.retries is None else self.retries

    def consider(self, row: InstanceRow, failed: Ended, classes: tuple[str, ...]) -> Retry | None:
        """The retry of ``row``'s failed attempt ``failed``, or None when it stays failed."""
        reason = _reason(failed.reason)
        if reason is None:
            return None
        used = self.resources(row)
        decision = decide(
            reason=reason,
            classes=classes,
            used=used,
            policy=self.graph.task(row.task).retry,
            retries=self.retries_of(row.task),
            attempt=row.attempts,
            limits=self._partition(used.partition, reason),
        )
        if not decision.retry:
            if decision.note:
                self._notes[(row.task, row.element)] = decision.note
            return None
        return Retry(
            failed=failed,
            not_before=time.time() + decision.delay_s,
            resources=decision.resources,
        )

    def summed_up_all(self, failures: list[tuple[InstanceRow, Ended]]) -> list[Ended]:
        """Each final failure, its message summing up the element's attempts when there were more.

        ``OUT_OF_MEMORY at 256M, 512M, 1G; raise max_mem= or mem=``. One query reads the
        attempts of all of them, however many elements failed in the turn.
        """
        notes = [self._notes.pop((row.task, row.element), "") for row, _ in failures]
        summed = {
            (row.task, row.element): (failed, note, row.attempts)
            for (row, failed), note in zip(failures, notes, strict=True)
            if row.attempts > 1 or note
        }
        if not summed:
            return [failed for _, failed in failures]
        history = self.store.attempts_of(self.run_id, list(summed))
        lines = {
            key: history_line(failed, history.get(key, []), note, count)
            for key, (failed, note, count) in summed.items()
        }
        return [
            replace(failed, error=lines[row.task, row.element])
            if (row.task, row.element) in lines
            else failed
            for row, failed in failures
        ]

    def _partition(self, partition: str | None, reason: FailureReason) -> PartitionLimits:
        if reason not in (FailureReason.OUT_OF_MEMORY, FailureReason.TIMEOUT):
            return PartitionLimits()
        if partition not in self._limits:
            ask = getattr(self.executor, "partition_limits", None)
            self._limits[partition] = ask(partition) if ask is not None else PartitionLimits()
        return self._limits[partition]


def history_line(failed: Ended, attempts: list[Attempt], note: str, count: int) -> str:
    """The failure of an element that went out ``count`` times, with its history and the fix."""
    reason = failed.reason or ""
    # The attempt that failed now is the last one, not closed yet: its reason is ``reason``.
    same = [a for a in attempts if (a.reason or reason) == reason]
    shown = [show_resource(reason, a.resources) for a in same]
    if reason in _RAISES and shown and all(shown):
        fix = note or f"retries ran out; raise {_RAISES[reason]}= or retries="
        return f"{reason.upper()} at {', '.join(dict.fromkeys(shown))}; {fix}"
    detail = failed.error or reason
    if count <= 1:
        return f"{detail}; {note}" if note else detail
    return f"{detail} (after {count} attempts{'; ' + note if note else ''})"


def _reason(text: str | None) -> FailureReason | None:
    try:
        return FailureReason(text)
    except ValueError:
        return None
