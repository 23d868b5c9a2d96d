"""End to end on the local executor: real processes, a real store, the Python API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reflow.running.store.sqlite import SqliteStore
from tests.flows.demo_steps import wf

DEADLINE_S = 60


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def calls(run_dir: Path, task: str) -> list[str]:
    path = run_dir / f"{task}.calls"
    return path.read_text().split() if path.exists() else []


def final_output(run_dir: Path, run_id: str, task: str) -> list[object]:
    store = SqliteStore.open(run_dir)
    try:
        return [json.loads(value) for _e, value, _h in store.element_outputs(run_id, task)]
    finally:
        store.close()


def test_demo_runs_to_success_and_second_submit_is_fully_cached(tmp_path: Path) -> None:
    run = wf.submit(run_dir=tmp_path, count=3)
    assert run.wait(timeout=DEADLINE_S) == "succeeded"
    assert final_output(tmp_path, run.run_id, "finalize") == ["f0.zarr,f1.zarr,f2.zarr"]
    assert sorted(calls(tmp_path, "convert")) == ["f0.nc", "f1.nc", "f2.nc"]

    again = wf.submit(run_dir=tmp_path, count=3)
    assert again.wait(timeout=DEADLINE_S) == "succeeded"
    status = again.status(as_dict=True)
    assert status is not None
    assert {t["task"]: t["counts"] for t in status["tasks"]} == {
        "prepare": {"cached": 1},
        "convert": {"cached": 3},
        "finalize": {"cached": 1},
    }
    assert len(calls(tmp_path, "prepare")) == 1


def test_changed_param_reruns_convert_but_not_unchanged_finalize(tmp_path: Path) -> None:
    assert wf.submit(run_dir=tmp_path, count=2).wait(timeout=DEADLINE_S) == "succeeded"
    run = wf.submit(run_dir=tmp_path, count=2, bucket="other")
    assert run.wait(timeout=DEADLINE_S) == "succeeded"
    status = run.status(as_dict=True)
    assert status is not None
    counts = {t["task"]: t["counts"] for t in status["tasks"]}
    assert counts["convert"] == {"done": 2}
    assert counts["finalize"] == {"cached": 1}


def test_one_more_item_runs_exactly_one_more_element(tmp_path: Path) -> None:
    assert wf.submit(run_dir=tmp_path, count=3).wait(timeout=DEADLINE_S) == "succeeded"
    run = wf.submit(run_dir=tmp_path, count=4)
    assert run.wait(timeout=DEADLINE_S) == "succeeded"
    status = run.status(as_dict=True)
    assert status is not None
    counts = {t["task"]: t["counts"] for t in status["tasks"]}
    assert counts["prepare"] == {"done": 1}
    assert counts["convert"] == {"done": 1, "cached": 3}
    assert sorted(calls(tmp_path, "convert")) == ["f0.nc", "f1.nc", "f2.nc", "f3.nc"]


def test_failed_element_shows_in_status_and_retry_reruns_only_it(tmp_path: Path) -> None:
    run = wf.submit(run_dir=tmp_path, count=3, fail_on="f1.nc")
    assert run.wait(timeout=DEADLINE_S) == "failed"
    status = run.status(as_dict=True)
    assert status is not None
    (group,) = status["failures"]
    assert (group["task"], group["reason"], group["count"]) == ("convert", "exception", 1)
    example = group["examples"][0]
    assert example["element"] == 1
    assert "ValueError: cannot convert f1.nc" in example["error"]
    assert "converting f1.nc" in Path(example["log"]).read_text()

    (tmp_path / "fixed").touch()
    assert run.retry() == 1
    assert run.wait(timeout=DEADLINE_S) == "succeeded"
    assert sorted(calls(tmp_path, "convert")) == ["f0.nc", "f1.nc", "f1.nc", "f2.nc"]
    assert final_output(tmp_path, run.run_id, "finalize") == ["f0.zarr,f1.zarr,f2.zarr"]


def test_store_is_consistent_after_runs(tmp_path: Path) -> None:
    assert wf.submit(run_dir=tmp_path, count=5).wait(timeout=DEADLINE_S) == "succeeded"
    store = SqliteStore.open(tmp_path)
    try:
        assert store.integrity_problems() == []
    finally:
        store.close()
    assert os.listdir(tmp_path / "runs")
