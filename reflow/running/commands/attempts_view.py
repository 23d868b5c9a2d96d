"""Running: the story of elements that went out more than once, for ``status``. Reads only.

Each element submitted more than once is listed with its attempts and a line per retry:
``attempt 2/3: OUT_OF_MEMORY at 256M -> 512M`` when a resource was raised, ``attempt 2/3:
after exception (OSError: ...)`` otherwise. ``N`` in ``k/N`` is the most attempts the task
allows (its ``retries`` + 1; the config's ``[executor] retries`` or 2 when the task sets none).
One query reads the attempts of the retried elements only.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from reflow.definition.retry_policy import DEFAULT_RETRIES
from reflow.running.config import load_config
from reflow.running.dispatch.retry_rule import show_resource
from reflow.running.store.records import Attempt
from reflow.running.store.sqlite import SqliteStore

_SHOWN = 10
"""Retried elements the table lists; ``--json`` has all."""


def allowed_attempts(description: Mapping[str, Any]) -> dict[str, int]:
    """``task -> most attempts`` from a run's describe manifest and the config."""
    configured = load_config().retries
    fallback = DEFAULT_RETRIES if configured is None else configured
    allowed = {}
    for task in description["tasks"]:
        given = (task.get("retry") or {}).get("retries")
        allowed[task["name"]] = (fallback if given is None else int(given)) + 1
    return allowed


def retried_elements(
    store: SqliteStore, run_id: str, allowed: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Every element of the run submitted more than once, with its attempts and retries."""
    found = []
    for (task, element), attempts in store.retried_attempts(run_id).items():
        most = max(allowed.get(task, DEFAULT_RETRIES + 1), len(attempts))
        found.append(
            {
                "task": task,
                "element": element,
                "attempts": len(attempts),
                "history": [_attempt_json(number, a) for number, a in enumerate(attempts, 1)],
                "retries": [
                    retry_line(number, most, before, after)
                    for number, (before, after) in enumerate(pairwise(attempts), 2)
                ],
            }
        )
    return found


def retry_line(number: int, most: int, before: Attempt, after: Attempt) -> str:
    """``attempt 2/3: OUT_OF_MEMORY at 256M -> 512M``: why attempt ``number`` went out."""
    reason = before.reason or "unknown"
    old, new = show_resource(reason, before.resources), show_resource(reason, after.resources)
    head = f"attempt {number}/{most}:"
    if old and new:
        return f"{head} {reason.upper()} at {old} -> {new}"
    detail = f" ({before.error})" if before.error else ""
    return f"{head} after {reason}{detail}"


def render_retried(retried: list[dict[str, Any]]) -> list[str]:
    """The table's lines on retried elements: each with its attempts and retry lines."""
    lines = []
    for entry in retried[:_SHOWN]:
        lines.append(f"  {entry['task']}[{entry['element']}]: {entry['attempts']} attempts")
        lines += [f"    {line}" for line in entry["retries"]]
    if len(retried) > _SHOWN:
        lines.append(f"  ... and {len(retried) - _SHOWN} more retried element(s) (--json)")
    return lines


def _attempt_json(number: int, attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": number,
        "job_id": attempt.job_id,
        "state": attempt.state,
        "reason": attempt.reason,
        "error": attempt.error,
        "resources": attempt.resources,
        "submitted_at": attempt.submitted,
        "begin_at": attempt.begin,
        "ended_at": attempt.ended,
    }
