"""Every example in examples/, run end to end as a user would: ``python examples/X.py ...``.

Each runs on the local executor (``REFLOW_MODE=local``) in a subprocess with its run
directory in ``tmp_path``; the tests assert on exit codes, final outputs and files.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reflow.definition.diagram import render_text
from reflow.planning.encoding import PATH_TAG
from reflow.running.commands.status import load_status
from reflow.running.store.sqlite import SqliteStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEADLINE_S = 120


def flow(tmp_path: Path, example: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python examples/<example> ARGS`` on the local executor."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
    env.update(REFLOW_MODE="local", XDG_CONFIG_HOME=str(tmp_path / "config"))
    return subprocess.run(
        [sys.executable, str(EXAMPLES / example), *map(str, args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )


def submit(tmp_path: Path, example: str, *args: str | Path, ok: bool = True) -> str:
    """Submit and wait; return the run id."""
    done = flow(tmp_path, example, "submit", "--run-dir", tmp_path / "run", *args, "--wait")
    assert done.returncode == (0 if ok else 1), done.stdout + done.stderr
    match = re.search(r"^submitted run (\S+)", done.stdout, re.M)
    assert match, done.stdout
    state = "succeeded" if ok else "failed"
    assert f"run {match.group(1)} {state} after" in done.stdout
    return match.group(1)


def outputs(tmp_path: Path, run_id: str, task: str) -> list[Any]:
    store = SqliteStore.open(tmp_path / "run")
    try:
        return [json.loads(value) for _e, value, _h in store.element_outputs(run_id, task)]
    finally:
        store.close()


def counts(tmp_path: Path, run_id: str) -> dict[str, dict[str, int]]:
    data = load_status(tmp_path / "run", run_id)
    return {task["task"]: task["counts"] for task in data["tasks"]}


@pytest.mark.parametrize(
    "example", sorted(path.name for path in EXAMPLES.glob("*.py")), ids=lambda name: name
)
def test_every_example_validates_and_draws_its_graph(example: str) -> None:
    namespace = runpy.run_path(str(EXAMPLES / example))
    assert render_text(namespace["wf"].graph()).startswith("workflow ")


def test_demo_fans_out_over_the_files_and_gathers(tmp_path: Path) -> None:
    run_id = submit(
        tmp_path, "demo_flow.py", "--start", "2025-01-01", "--end", "2025-01-31", "--bucket", "b"
    )
    assert outputs(tmp_path, run_id, "convert") == [f"/data/{n}.nc.zarr" for n in "abc"]
    assert outputs(tmp_path, run_id, "finalize") == ["done"]
    again = submit(
        tmp_path, "demo_flow.py", "--start", "2025-01-01", "--end", "2025-01-31", "--bucket", "b"
    )
    assert counts(tmp_path, again) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 3},
        "finalize": {"cached": 1},
    }


def test_include_runs_both_prefixed_copies_of_the_flow(tmp_path: Path) -> None:
    dag = flow(tmp_path, "include_flow.py", "dag")
    assert dag.returncode == 0, dag.stderr
    assert "era5_convert" in dag.stdout
    assert "icon_convert" in dag.stdout
    run_id = submit(tmp_path, "include_flow.py", "--era5-prepare-count", "3")
    assert outputs(tmp_path, run_id, "merge") == ["merged 3 era5 and 2 icon outputs"]
    assert outputs(tmp_path, run_id, "icon_convert") == ["file0.zarr", "file1.zarr"]


def test_paths_are_verified_and_a_missing_file_is_recomputed(tmp_path: Path) -> None:
    run_id = submit(tmp_path, "paths_flow.py", "--days", "3")
    summaries = tmp_path / "run" / "summaries"
    assert sorted(p.name for p in summaries.iterdir()) == ["day0.json", "day1.json", "day2.json"]
    paths = [output[PATH_TAG] for output in outputs(tmp_path, run_id, "summarize")]
    assert paths == [str(summaries / f"day{day}.json") for day in range(3)]
    # Each path carries the fingerprint its worker took.
    assert all(o["$fp"].startswith("content:") for o in outputs(tmp_path, run_id, "summarize"))
    total = outputs(tmp_path, run_id, "report")[0]
    assert total == sum(sum(d * 10 + h % 7 for h in range(24)) for d in range(3))

    (summaries / "day1.json").unlink()
    trusted = submit(tmp_path, "paths_flow.py", "--days", "3")
    assert counts(tmp_path, trusted)["summarize"] == {"cached": 3}
    assert not (summaries / "day1.json").exists()

    verified = submit(tmp_path, "paths_flow.py", "--days", "3", "--verify")
    assert counts(tmp_path, verified) == {
        "download": {"cached": 1},
        "summarize": {"done": 1, "cached": 2},
        "report": {"cached": 1},
    }
    assert json.loads((summaries / "day1.json").read_text())["file"] == "day1.csv"


def test_sweep_runs_every_case_and_widening_it_runs_only_new_cases(tmp_path: Path) -> None:
    run_id = submit(tmp_path, "sweep_flow.py", "--models", "era5", "icon", "-r", "1", "2")
    assert outputs(tmp_path, run_id, "cases") == [["era5@1", "era5@2", "icon@1", "icon@2"]]
    assert outputs(tmp_path, run_id, "best") == ["era5@1 scores best (4.000)"]
    wider = submit(tmp_path, "sweep_flow.py", "--models", "era5", "icon", "-r", "1", "2", "4")
    assert counts(tmp_path, wider)["simulate"] == {"done": 2, "cached": 4}

    refused = flow(tmp_path, "sweep_flow.py", "submit", "--run-dir", "x", "--models", "gfs")
    assert refused.returncode == 2
    assert "invalid choice: 'gfs'" in refused.stderr


def test_retry_walkthrough_fails_shows_why_and_succeeds_after_the_fix(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.txt").write_text("1\n2\n")
    (inbox / "b.txt").write_text("3\nfour\n")
    run_id = submit(tmp_path, "retry_flow.py", "--inbox", inbox, ok=False)

    status = flow(tmp_path, "retry_flow.py", "status", run_id, "--run-dir", tmp_path / "run")
    assert status.returncode == 0, status.stderr
    assert "FAILED" in status.stdout
    assert "parse: 1 failed (exception: ValueError)" in status.stdout
    assert "line 2: 'four' is not a number" in status.stdout
    assert counts(tmp_path, run_id)["parse"] == {"done": 1, "failed": 1}

    (inbox / "b.txt").write_text("3\n4\n")
    retried = flow(
        tmp_path, "retry_flow.py", "retry", run_id, "--run-dir", tmp_path / "run", "--wait"
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "1 instance(s) will run again" in retried.stdout
    assert f"run {run_id} succeeded after" in retried.stdout
    assert outputs(tmp_path, run_id, "total") == [10]
    logs = tmp_path / "run" / "runs" / run_id / "logs" / "parse"
    assert (logs / "0.log").read_text().count("a.txt:1:") == 1  # element 0 ran once
    second = (logs / "1.log").read_text()
    assert "'four'" in second
    assert "b.txt:2: '4'" in second
