"""Keep going where a chain meets a fan-out: each element waits only for its own inputs.

``label`` zips ``convert``'s elements (a chain) with ``prepare``'s items (a fan-out); ``merge``
concatenates ``convert``'s elements and ``prepare``'s items in one parameter. The flow file runs
as a user runs it (a subprocess); its tasks log every call, which is how the tests tell what ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reflow.running.store.sqlite import SqliteStore
from tests.integration.flowfiles import calls, cli, copy_flow, counts, submit_and_wait


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", "2")
    return copy_flow("mixchain_steps", tmp_path)


def test_elements_fed_by_a_chain_and_a_fan_out_start_when_their_own_input_is_done(
    flow: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_id, status = submit_and_wait(flow, run_dir, "--count", "4", "--slow", "3", "--seconds", "3")
    assert status["state"] == "succeeded"
    with SqliteStore.open(run_dir) as store:
        rows = {(r.task, r.element): r for r in store.instances(run_id)}
    slowest = rows[("convert", 3)]
    assert slowest.ended is not None
    for task, size in (("label", 4), ("merge", 8)):
        first = min(rows[(task, e)].started or slowest.ended for e in range(size))
        assert first < slowest.ended, task
    # merge's items from prepare need no convert element: they start before convert ends
    assert (rows[("merge", 4)].started or slowest.ended) < slowest.ended
    assert sorted(calls(run_dir, "label")) == [f"{i}:{i + 100}" for i in range(4)]
    assert sorted(map(int, calls(run_dir, "merge"))) == [0, 1, 2, 3, 100, 101, 102, 103]
    assert calls(run_dir, "gather") == ["4+8"]
    # Planned whole this time (everything upstream is cached): the same identities, all cached
    _again, status = submit_and_wait(flow, run_dir, "--count", "4", "--slow", "3", "--seconds", "3")
    assert counts(status) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 4},
        "label": {"cached": 4},
        "merge": {"cached": 8},
        "gather": {"cached": 1},
    }
    assert len(calls(run_dir, "label")) == 4


def test_a_failed_chain_element_blocks_only_the_elements_that_consume_it(
    flow: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "fail.marker").touch()
    run_id, status = submit_and_wait(flow, run_dir, "--fail", "3,7")
    assert status["state"] == "failed"
    assert counts(status)["convert"] == {"done": 8, "failed": 2}
    assert counts(status)["label"] == {"done": 8, "blocked": 2}
    assert counts(status)["merge"] == {"done": 18, "blocked": 2}
    ran = [i for i in range(10) if i not in (3, 7)]
    assert sorted(calls(run_dir, "label")) == sorted(f"{i}:{i + 100}" for i in ran)
    assert sorted(map(int, calls(run_dir, "merge"))) == sorted(
        [*range(10), *(i + 100 for i in ran)]
    )
    assert calls(run_dir, "gather") == []
    blocked = {
        (e["task"], e["element"]): e["error"] for e in status["failed"] if e["state"] == "blocked"
    }
    assert blocked == {
        ("label", 3): "upstream convert[3] failed",
        ("label", 7): "upstream convert[7] failed",
        ("merge", 3): "upstream convert[3] failed",
        ("merge", 7): "upstream convert[7] failed",
    }

    (run_dir / "fail.marker").unlink()
    retried = cli(flow, "retry", run_id, "--run-dir", str(run_dir), "--wait", cwd=tmp_path)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert sorted(map(int, calls(run_dir, "convert"))) == sorted([*range(10), 3, 7])
    assert sorted(calls(run_dir, "label")) == sorted(f"{i}:{i + 100}" for i in range(10))
    assert sorted(map(int, calls(run_dir, "merge"))) == sorted([*range(10), *range(100, 110)])
    assert calls(run_dir, "gather") == ["10+20"]
