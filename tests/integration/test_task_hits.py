"""A resubmit takes whole tasks from the cache at once, with exactly the per-element answer.

Every run records each task's key (what all its identities are computed from); a later run
with the same key takes the task whole when every output is still cached. These tests run a
flow file through the CLI on the local executor, count what ran, and compare what each run
recorded (identities and states) with what the per-element planning gives: the same
identities, the same outputs, the same states, whatever changed in between.
"""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

from tests.integration.flowfiles import calls, counts, submit_and_wait

FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("hits")


def log(run_dir: Path, task: str, what: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write(what + "\\n")


@wf.job()
def prepare(
    count: Annotated[int, Param(help="items")] = 3, run_dir: RunDir = RunDir()
) -> list[str]:
    log(run_dir, "prepare", str(count))
    return [f"item{i}" for i in range(count)]


@wf.array_job()
def convert(item: Annotated[str, Result(step="prepare")], run_dir: RunDir = RunDir()) -> Path:
    log(run_dir, "convert", item)
    if (run_dir / f"fail-{item}").exists():
        raise RuntimeError(f"told to fail on {item}")
    path = run_dir / "out" / (item + ".txt")
    path.parent.mkdir(exist_ok=True)
    path.write_text(item)
    return path


@wf.array_job()
def check(path: Annotated[Path, Result(step="convert")], run_dir: RunDir = RunDir()) -> int:
    log(run_dir, "check", path.name)
    if (run_dir / "fail-check").exists():
        raise RuntimeError("told to fail")
    return len(path.read_text())


@wf.job()
def publish(
    sizes: Annotated[list[int], Result(step="check")],
    paths: Annotated[list[Path], Result(step="convert")],
    run_dir: RunDir = RunDir(),
) -> int:
    log(run_dir, "publish", str(len(paths)))
    return sum(sizes)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""

ALL_CACHED = {
    "prepare": {"cached": 1},
    "convert": {"cached": 3},
    "check": {"cached": 3},
    "publish": {"cached": 1},
}


def write_flow(folder: Path) -> Path:
    flow = folder / "hits_flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    return flow


def planned(run_dir: Path, run_id: str) -> dict[tuple[str, int], tuple[str, str]]:
    """``(task, element) -> (identity, state)`` of every instance the run recorded."""
    db = sqlite3.connect(run_dir / "reflow.sqlite")
    try:
        rows = db.execute(
            "SELECT task, element, identity, state FROM instances WHERE run_id = ?", (run_id,)
        ).fetchall()
    finally:
        db.close()
    return {(task, element): (identity, state) for task, element, identity, state in rows}


def identities(run_dir: Path, run_id: str) -> dict[tuple[str, int], str]:
    return {key: identity for key, (identity, _state) in planned(run_dir, run_id).items()}


def task_keys(run_dir: Path, run_id: str) -> dict[str, str]:
    db = sqlite3.connect(run_dir / "reflow.sqlite")
    try:
        rows = db.execute("SELECT task, task_key FROM tasks WHERE run_id = ?", (run_id,))
        return dict(rows.fetchall())
    finally:
        db.close()


def recorded(run_dir: Path) -> set[tuple[str, str, int]]:
    """``(task, task key, changed outputs count)`` of each recorded digest of outputs."""
    db = sqlite3.connect(run_dir / "reflow.sqlite")
    try:
        rows = db.execute("SELECT task, task_key, changes FROM task_outputs").fetchall()
        return {(task, key, changes) for task, key, changes in rows}
    finally:
        db.close()


def ran(run_dir: Path) -> dict[str, list[str]]:
    return {task: sorted(calls(run_dir, task)) for task in ("prepare", "convert", "check")}


def test_a_resubmit_takes_every_task_whole_with_the_first_runs_identities(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    first, _ = submit_and_wait(flow, run_dir)
    before = ran(run_dir)
    second, status = submit_and_wait(flow, run_dir)
    third, again = submit_and_wait(flow, run_dir)
    assert counts(status) == counts(again) == ALL_CACHED
    assert status["state"] == again["state"] == "succeeded"
    assert ran(run_dir) == before  # nothing ran again
    assert calls(run_dir, "publish") == ["3"]
    assert identities(run_dir, second) == identities(run_dir, third) == identities(run_dir, first)
    keys = task_keys(run_dir, second)
    assert sorted(keys) == ["check", "convert", "prepare", "publish"]
    assert all(keys.values())
    assert task_keys(run_dir, third) == keys
    # the first run planned the 1:1 chain element by element, as convert's elements ended:
    # it has no key; the second planned it whole and recorded it
    assert task_keys(run_dir, first) == {**keys, "check": ""}
    # what the keys were computed from (each upstream task's outputs) is recorded, at a
    # count of 0 changed outputs
    assert recorded(run_dir) == {(task, keys[task], 0) for task in ("prepare", "convert", "check")}


def test_a_forced_task_then_a_resubmit_gives_the_gather_the_new_outputs(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    first, _ = submit_and_wait(flow, run_dir)
    forced, status = submit_and_wait(flow, run_dir, "--force-task", "convert")
    # convert rewrites its files: same identities, new fingerprints, so what reads them reruns
    assert counts(status) == {
        "prepare": {"cached": 1},
        "convert": {"done": 3},
        "check": {"done": 3},
        "publish": {"done": 1},
    }
    after, again = submit_and_wait(flow, run_dir)
    assert counts(again) == ALL_CACHED
    assert ran(run_dir)["convert"] == ["item0", "item0", "item1", "item1", "item2", "item2"]
    old, new, now = (identities(run_dir, run) for run in (first, forced, after))
    assert old[("convert", 1)] == new[("convert", 1)] == now[("convert", 1)]
    # what consumes convert's outputs takes the forced run's outputs, not the first run's
    assert now[("publish", 0)] == new[("publish", 0)] != old[("publish", 0)]
    assert now[("check", 2)] == new[("check", 2)] != old[("check", 2)]
    assert now == new


def test_an_element_that_failed_earlier_runs_and_the_rest_is_cached(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    (run_dir / "fail-item1").touch()
    failed, status = submit_and_wait(flow, run_dir)
    assert status["state"] == "failed"
    assert counts(status)["convert"] == {"done": 2, "failed": 1}
    (run_dir / "fail-item1").unlink()
    fixed, status = submit_and_wait(flow, run_dir)
    assert counts(status) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 2, "done": 1},
        "check": {"cached": 2, "done": 1},  # a 1:1 chain: its other elements ran then
        "publish": {"done": 1},
    }
    assert ran(run_dir)["convert"] == ["item0", "item1", "item1", "item2"]
    same, again = submit_and_wait(flow, run_dir)
    assert counts(again) == ALL_CACHED
    assert identities(run_dir, same) == identities(run_dir, fixed)
    assert identities(run_dir, fixed)[("convert", 1)] == identities(run_dir, failed)[("convert", 1)]


def test_an_output_gone_from_the_store_reruns_that_element(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    first, _ = submit_and_wait(flow, run_dir)
    gone = identities(run_dir, first)[("convert", 1)]
    # What `submit --verify` and `retry` do with a cached output that no longer verifies.
    db = sqlite3.connect(run_dir / "reflow.sqlite")
    with db:
        db.execute("DELETE FROM outputs WHERE identity = ?", (gone,))
    db.close()
    second, status = submit_and_wait(flow, run_dir)
    assert counts(status) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 2, "done": 1},
        "check": {"cached": 2, "done": 1},  # convert[1] rewrote its file
        "publish": {"done": 1},
    }
    assert ran(run_dir)["convert"] == ["item0", "item1", "item1", "item2"]
    assert planned(run_dir, second)[("convert", 1)] == (gone, "done")


def test_a_different_count_runs_only_the_new_element_and_the_old_count_is_cached(
    tmp_path: Path,
) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    first, _ = submit_and_wait(flow, run_dir)
    _, bigger = submit_and_wait(flow, run_dir, "--count", "4")
    assert counts(bigger) == {
        "prepare": {"done": 1},
        "convert": {"cached": 3, "done": 1},
        "check": {"cached": 3, "done": 1},
        "publish": {"done": 1},
    }
    assert ran(run_dir)["convert"] == ["item0", "item1", "item2", "item3"]
    back, status = submit_and_wait(flow, run_dir, "--count", "3")
    assert counts(status) == ALL_CACHED
    assert identities(run_dir, back) == identities(run_dir, first)


def test_a_verified_resubmit_checks_each_element_and_reruns_a_deleted_file(
    tmp_path: Path,
) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    submit_and_wait(flow, run_dir)
    submit_and_wait(flow, run_dir)  # a whole-task resubmit: trusts outputs, as before
    (run_dir / "out" / "item2.txt").unlink()
    _, trusted = submit_and_wait(flow, run_dir)
    assert counts(trusted) == ALL_CACHED  # without --verify nothing looks at files
    _, verified = submit_and_wait(flow, run_dir, "--verify")
    assert counts(verified)["convert"] == {"cached": 2, "done": 1}
    assert ran(run_dir)["convert"] == ["item0", "item1", "item2", "item2"]
    assert (run_dir / "out" / "item2.txt").read_text() == "item2"


def test_outputs_replaced_by_a_run_that_stopped_early_are_read_again(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    first, _ = submit_and_wait(flow, run_dir)
    # convert runs again and rewrites its files (new outputs, same identities); what reads
    # them fails, so nothing downstream records the new outputs' hashes
    (run_dir / "fail-check").touch()
    _, stopped = submit_and_wait(flow, run_dir, "--force-task", "convert")
    assert counts(stopped)["convert"] == {"done": 3}
    assert counts(stopped)["check"] == {"failed": 3}
    (run_dir / "fail-check").unlink()
    after, status = submit_and_wait(flow, run_dir)
    assert counts(status) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 3},
        "check": {"done": 3},
        "publish": {"done": 1},
    }
    old, now = identities(run_dir, first), identities(run_dir, after)
    assert now[("convert", 0)] == old[("convert", 0)]
    assert now[("publish", 0)] != old[("publish", 0)]  # the new files' fingerprints
