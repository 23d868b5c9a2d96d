"""Running: the rows the store reads and writes (runs, instances, the dispatcher record).

Plain frozen values; building them from sqlite rows and stored JSON happens here, once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reflow.running.store.states import InstanceState, RunState

DispatcherKind = Literal["", "local", "slurm"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherRecord:
    """What the store knows of a run's dispatcher; ``runs.dispatcher`` as a value.

    Attributes:
        kind: ``local`` (a background process), ``slurm`` (a chain of turn jobs) or "" (none
            recorded yet).
        starting: When a local dispatcher was asked to start (before it wrote its pid).
        pid: The local dispatcher's process id.
        host: The host of the local dispatcher or of the last Slurm turn.
        started: When the local dispatcher process started.
        submit_budget: The most instances a Slurm run keeps queued.
        turns: How many Slurm turns ran.
        job_id: The Slurm job id of the last turn.
        turn_at: When the last Slurm turn ran.
        errors: Slurm turns in a row that failed.
        last_error: The message of the last failed turn.
        pending_jobs: Job ids of the queued successor turn(s); ``cancel`` removes them.
        waits_for: How many jobs the successor waits for.
    """

    kind: DispatcherKind = ""
    starting: float | None = None
    pid: int | None = None
    host: str | None = None
    started: float | None = None
    submit_budget: int | None = None
    turns: int = 0
    job_id: str | None = None
    turn_at: float | None = None
    errors: int = 0
    last_error: str | None = None
    pending_jobs: tuple[str, ...] = ()
    waits_for: int | None = None

    @classmethod
    def from_json(cls, text: str | None) -> DispatcherRecord:
        """The record stored as ``text``; keys that older records lack take their defaults."""
        try:
            data = json.loads(text or "{}")
        except json.JSONDecodeError:
            return cls()
        if not isinstance(data, Mapping):
            return cls()
        kind = data.get("kind")
        return cls(
            kind=kind if kind in ("local", "slurm") else "",
            starting=_number(data.get("starting")),
            pid=_integer(data.get("pid")),
            host=_text(data.get("host")),
            started=_number(data.get("started")),
            submit_budget=_integer(data.get("submit_budget")),
            turns=_integer(data.get("turns")) or 0,
            job_id=_text(data.get("job_id")),
            turn_at=_number(data.get("turn_at")),
            errors=_integer(data.get("errors")) or 0,
            last_error=_text(data.get("last_error")),
            pending_jobs=tuple(str(job) for job in data.get("pending_jobs") or ()),
            waits_for=_integer(data.get("waits_for")),
        )

    def to_json(self) -> str:
        """The record as stored: JSON with the fields that are set."""
        return json.dumps(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set, as JSON-able data (``status --json`` shows them)."""
        data = dataclasses.asdict(self)
        data["pending_jobs"] = list(self.pending_jobs)
        # "kind" always, and "waits_for" when set: waiting for 0 jobs is worth saying.
        return {
            k: v
            for k, v in data.items()
            if v not in (None, "", 0, []) or k == "kind" or (k == "waits_for" and v is not None)
        }

    def replace(self, **changes: Any) -> DispatcherRecord:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def _number(value: Any) -> float | None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if is_number else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """One run as the store records it."""

    run_id: str
    workflow: str
    created: float
    state: RunState
    executor: str
    options: dict[str, Any]
    dispatcher: DispatcherRecord
    updated: float
    message: str


RUN_COLUMNS = "run_id, workflow, created, state, executor, options, dispatcher, updated, message"


def run_row(row: Sequence[Any]) -> RunRow:
    """A ``RunRow`` from the columns ``RUN_COLUMNS``."""
    return RunRow(
        run_id=row[0],
        workflow=row[1],
        created=row[2],
        state=RunState(row[3]),
        executor=row[4],
        options=json.loads(row[5]),
        dispatcher=DispatcherRecord.from_json(row[6]),
        updated=row[7],
        message=row[8],
    )


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """One element of one task in one run."""

    task: str
    element: int
    identity: str
    state: InstanceState
    attempts: int
    batch: str | None
    job_id: str | None
    submitted: float | None
    started: float | None
    ended: float | None
    reason: str | None
    error: str | None
    host: str | None
    peak_rss_mb: float | None
    not_before: float | None = None
    resources: str | None = None

    def raised(self) -> dict[str, int]:
        """The resources its next submission takes at least (``mem_mb``, ``time_s``)."""
        data = json.loads(self.resources) if self.resources else {}
        return {k: int(v) for k, v in data.items() if isinstance(v, int | float)}


INSTANCE_COLUMNS = (
    "task, element, identity, state, attempts, batch, job_id, submitted, started, ended, "
    "reason, error, host, peak_rss_mb, not_before, resources"
)
_INSTANCE_STATES = {state.value: state for state in InstanceState}
ELEMENT_PAIRS = (
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
)
"""``(task, element)`` pairs from one JSON parameter, for ``(task, element) IN`` clauses."""


def instance_row(row: Sequence[Any]) -> InstanceRow:
    """An ``InstanceRow`` from the columns ``INSTANCE_COLUMNS``."""
    task, element, identity, state, *rest = row
    return InstanceRow(task, element, identity, _INSTANCE_STATES[state], *rest)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ended:
    """How one submitted instance ended: what ``ingest_results`` and ``fail_lost`` write.

    ``output`` is ``(JSON text, hash)`` for a done instance and None for a failed one; the
    write lands only while the instance is still ``submitted`` in ``batch``.
    """

    task: str
    element: int
    batch: str
    state: InstanceState
    started: float | None
    ended: float | None
    reason: str | None = None
    error: str | None = None
    host: str | None = None
    peak_rss_mb: float | None = None
    output: tuple[str, str] | None = None

    @classmethod
    def of(
        cls,
        row: InstanceRow,
        state: InstanceState,
        *,
        started: float | None,
        ended: float | None,
        reason: str | None = None,
        error: str | None = None,
        host: str | None = None,
        peak_rss_mb: float | None = None,
        output: tuple[str, str] | None = None,
    ) -> Ended:
        """How the submitted instance ``row`` ended, in ``state``."""
        return cls(
            task=row.task, element=row.element, batch=str(row.batch), state=state,
            started=started, ended=ended, reason=reason, error=error, host=host,
            peak_rss_mb=peak_rss_mb, output=output,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """A failed attempt whose instance goes out again on its own: what ``auto_retry`` writes.

    ``failed`` is how the attempt ended (state ``failed``); the instance becomes ready again,
    not to start before ``not_before``, with at least ``resources`` (``mem_mb``, ``time_s``).
    """

    failed: Ended
    not_before: float
    resources: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One submission of one element, as the ``attempts`` table records it."""

    task: str
    element: int
    attempt: int
    job_id: str | None
    resources: dict[str, int]
    state: str
    reason: str | None
    error: str | None
    submitted: float
    begin: float | None
    ended: float | None


ATTEMPT_COLUMNS = (
    "task, element, attempt, job_id, resources, state, reason, error, submitted, begin, ended"
)


def attempt_row(row: Sequence[Any]) -> Attempt:
    """An ``Attempt`` from the columns ``ATTEMPT_COLUMNS``."""
    task, element, attempt, job_id, resources, *rest = row
    return Attempt(
        task=task,
        element=element,
        attempt=attempt,
        job_id=job_id,
        resources=json.loads(resources or "{}"),
        state=rest[0],
        reason=rest[1],
        error=rest[2],
        submitted=rest[3],
        begin=rest[4],
        ended=rest[5],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedOutput:
    """A cached output found in another run directory's store, as ``persist_plan`` records it.

    ``run_id`` and ``created`` are those of the run that made it there; ``origin`` is that
    run directory.
    """

    identity: str
    value: str
    hash: str
    created: float
    run_id: str
    origin: str
