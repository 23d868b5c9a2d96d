"""The live view's reading of a status: the dispatcher's state and when a run has ended."""

from __future__ import annotations

from typing import Any

import pytest

from reflow.running.commands.watch import dispatcher_state, has_ended, log_note
from reflow.running.store.states import InstanceState


def status(state: str, alive: bool | None) -> dict[str, Any]:
    return {"state": state, "dispatcher": {"kind": "slurm", "alive": alive}}


@pytest.mark.parametrize(
    ("state", "alive", "known", "shown"),
    [
        ("running", True, None, "alive"),
        ("running", False, True, "not running"),
        ("running", None, True, "alive"),
        ("running", None, False, "not running"),
        ("running", None, None, "unknown"),
        ("succeeded", None, True, "finished"),
        ("failed", False, None, "finished"),
    ],
)
def test_the_dispatcher_state_is_what_status_last_said(
    state: str, alive: bool | None, known: bool | None, shown: str
) -> None:
    assert dispatcher_state(status(state, alive), known) == shown


@pytest.mark.parametrize(
    ("state", "alive", "ended"),
    [("running", True, False), ("running", None, False), ("running", False, True),
     ("cancelled", None, True), ("succeeded", None, True)],
)  # fmt: skip
def test_a_run_has_ended_when_final_or_its_dispatcher_is_gone(
    state: str, alive: bool | None, ended: bool
) -> None:
    assert has_ended(status(state, alive)) is ended


def test_an_element_without_a_log_is_told_apart_by_its_state() -> None:
    assert log_note(InstanceState.READY) == " (not started)"
    assert log_note(InstanceState.SUBMITTED) == " (not started)"  # no header yet
    assert log_note(None) == " (not started)"
    assert log_note(InstanceState.DONE) == " (done: no output)"  # a silent success has none
    assert log_note(InstanceState.CACHED).startswith(" (cached: its log is the one of the run")
    assert log_note(InstanceState.BLOCKED) == " (blocked: it did not run)"
