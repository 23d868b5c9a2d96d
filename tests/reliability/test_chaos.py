"""Crash and resume: a 300-element run whose dispatcher is SIGKILLed at random moments.

Every run must end exactly as an undisturbed run of the same flow: the same instances in the
same states with the same outputs and errors, each result ingested once, and a store that
passes ``integrity_problems``. ``REFLOW_CHAOS_SEED=N`` replays a session's kill schedule;
``scripts/test-long`` runs the long variant (marked ``slow``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.flows.chaos_steps import wf as chaos_wf
from tests.reliability.chaos import (
    MODES,
    Tally,
    chaos_run,
    chaos_seed,
    consistency_problems,
    final_state,
)

KILL_DELAY_S = 0.5


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "2")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def reference(tmp_path: Path) -> dict[str, Any]:
    """The end state of an undisturbed run."""
    root = tmp_path / "reference"
    run = chaos_wf.submit(run_dir=root, count=300, seconds=0.01, fail_every=25)
    assert run.wait(timeout=120) == "failed"
    problems, _ = consistency_problems(root)
    assert problems == []
    state = final_state(root)
    outcome = {key: row[1:] for key, row in state["instances"].items()}
    for item in range(300):
        fails = item % 25 == 0
        assert outcome["work", item] == (
            ("failed", "exception", f"ValueError: item {item} fails", None)
            if fails
            else ("done", None, None, str(item * 2))
        )
        assert outcome["check", item] == ("done", None, None, f'"ok-{item}"')
    assert outcome["total", 0] == ("done", None, None, "300")
    return state


def chaos_session(tmp_path: Path, *, kill_points: int, kills_per_run: int) -> Tally:
    """Kill dispatchers of fresh runs until ``kill_points`` kills have landed."""
    seed = chaos_seed()
    print(f"chaos seed: REFLOW_CHAOS_SEED={seed}")
    rng = random.Random(seed)
    expected = reference(tmp_path)
    tally = Tally()
    while tally.kill_points < kill_points:
        mode = MODES[tally.runs % len(MODES)]
        root = tmp_path / f"chaos-{tally.runs}-{mode}"
        landed = chaos_run(root, mode, rng, kills_per_run, KILL_DELAY_S)
        tally.runs += 1
        tally.kill_points += landed
        tally.by_mode[mode] += landed
        problems, ran_twice = consistency_problems(root)
        tally.ran_twice += ran_twice
        context = f"seed {seed}, run {root.name}, {landed} kills"
        assert problems == [], context
        got = final_state(root)
        assert got["state"] == expected["state"], context
        assert got["planned"] == expected["planned"], context
        differing = {
            key: (value, got["instances"].get(key))
            for key, value in expected["instances"].items()
            if got["instances"].get(key) != value
        }
        assert differing == {}, context
        assert got == expected, context
    print(
        f"chaos seed {seed}: {tally.kill_points} kill points survived over {tally.runs} runs"
        f" ({dict(tally.by_mode)}); {tally.ran_twice} elements ran twice, ingested once"
    )
    return tally


def test_killed_dispatchers_converge_to_the_undisturbed_end_state(tmp_path: Path) -> None:
    tally = chaos_session(tmp_path, kill_points=50, kills_per_run=18)
    assert tally.kill_points >= 50
    assert set(tally.by_mode) == set(MODES)


@pytest.mark.slow
def test_many_killed_dispatchers_converge(tmp_path: Path) -> None:
    tally = chaos_session(tmp_path, kill_points=400, kills_per_run=40)
    assert tally.kill_points >= 400
