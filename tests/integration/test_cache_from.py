"""Results from other run directories: ``--cache-from``, ``cache_from=`` and ``[cache] cache_from``.

A flow file in the test's folder logs every call of its tasks to ``calls/<task>.calls`` beside
it, whatever the run directory, so the counters prove what ran in which run. Runs use the
local executor, in subprocesses, as a user would run them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
V1_FLOW = HERE.parent / "migrations" / "flow_v1.py"
V1_FIXTURE = HERE.parent / "migrations" / "stores" / "v1"
DEADLINE_S = 120

FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("shared")


def log(task: str, what: str) -> None:
    folder = Path(__file__).resolve().parent / "calls"
    folder.mkdir(exist_ok=True)
    with (folder / f"{task}.calls").open("a") as handle:
        handle.write(what + "\\n")


@wf.job()
def prepare(count: Annotated[int, Param(help="items")] = 2) -> list[str]:
    log("prepare", str(count))
    return [f"item{i}" for i in range(count)]


@wf.array_job()
def convert(item: Annotated[str, Result(step="prepare")], run_dir: RunDir = RunDir()) -> Path:
    log("convert", item)
    print(f"converting {item}")
    path = run_dir / "out" / f"{item}.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text(item)
    return path


@wf.job()
def publish(paths: Annotated[list[Path], Result(step="convert")]) -> int:
    log("publish", str(len(paths)))
    return sum(len(path.read_text()) for path in paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "shared_flow.py"
    path.write_text(textwrap.dedent(FLOW))
    return path


def run(
    argv: list[str], cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with the local executor and a config folder of the test's own."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
    environment.update(REFLOW_MODE="local", XDG_CONFIG_HOME=str(cwd / "config"), **(env or {}))
    return subprocess.run(
        argv, cwd=cwd, env=environment, capture_output=True, text=True, timeout=DEADLINE_S,
        check=False,
    )  # fmt: skip


def submit(
    flow: Path, run_dir: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """``submit --wait`` into ``run_dir``; the run id and its ``status --json``."""
    done = run([sys.executable, str(flow), "submit", "--run-dir", str(run_dir), "--wait", *args],
               flow.parent, env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    return run_id, status(flow, run_dir, run_id)


def status(flow: Path, run_dir: Path, run_id: str) -> dict[str, Any]:
    done = run([sys.executable, str(flow), "status", run_id, "--run-dir", str(run_dir), "--json"],
               flow.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def counts(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {task["task"]: task["counts"] for task in data["tasks"]}


def calls(folder: Path) -> dict[str, list[str]]:
    """``task -> what it was called with``, from the flow's counters in ``folder``."""
    return {
        path.stem: sorted(path.read_text().split())
        for path in sorted((folder / "calls").glob("*.calls"))
    }


def origins(run_dir: Path) -> dict[str, list[str]]:
    """``task -> origin of each of its outputs`` in the store of ``run_dir``."""
    db = sqlite3.connect(run_dir / "reflow.sqlite")
    try:
        rows = db.execute("SELECT task, origin FROM outputs ORDER BY task, origin").fetchall()
    finally:
        db.close()
    found: dict[str, list[str]] = {}
    for task, origin in rows:
        found.setdefault(task, []).append(origin)
    return found


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


ALL_CACHED = {"prepare": {"cached": 1}, "convert": {"cached": 2}, "publish": {"cached": 1}}
FIRST_CALLS = {"prepare": ["2"], "convert": ["item0", "item1"], "publish": ["2"]}


@pytest.fixture
def first(flow: Path) -> Path:
    """Run directory A, after one run with ``--count 2``."""
    a = flow.parent / "A"
    _, data = submit(flow, a, "--count", "2")
    assert counts(data) == {"prepare": {"done": 1}, "convert": {"done": 2}, "publish": {"done": 1}}
    assert calls(flow.parent) == FIRST_CALLS
    return a


def test_a_new_run_directory_with_cache_from_runs_nothing(flow: Path, first: Path) -> None:
    a_before = digests(first)
    b = flow.parent / "B"
    run_id, data = submit(flow, b, "--count", "2", "--cache-from", str(first))
    assert counts(data) == ALL_CACHED
    assert calls(flow.parent) == FIRST_CALLS  # nothing ran again
    # B's store holds the outputs, each naming the run directory it came from.
    assert origins(b) == {
        "convert": [str(first)] * 2,
        "prepare": [str(first)],
        "publish": [str(first)],
    }
    # A was only read: not a byte of it changed, and no file was added.
    assert digests(first) == a_before
    result = run([sys.executable, str(flow), "result", run_id, "publish", "--run-dir", str(b)],
                 flow.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10"
    paths = run([sys.executable, str(flow), "result", run_id, "convert", "--run-dir", str(b),
                 "--json"], flow.parent)  # fmt: skip
    assert paths.returncode == 0, paths.stderr
    assert str(first / "out" / "item1.txt") in paths.stdout
    why = run([sys.executable, str(flow), "why", run_id, "--run-dir", str(b), "--json"],
              flow.parent)  # fmt: skip
    assert why.returncode == 0, why.stderr
    assert json.loads(why.stdout) == {"run_id": run_id, "tasks": []}  # every instance cached
    # A cached element's log is its maker's, in the run directory that made it.
    logs = run([sys.executable, str(flow), "logs", run_id, "convert", "1", "--run-dir", str(b)],
               flow.parent)  # fmt: skip
    assert logs.returncode == 0, logs.stderr
    assert f"in {first}, which made this result" in logs.stdout
    assert "converting item1" in logs.stdout


def test_a_partial_overlap_runs_exactly_the_new_element(flow: Path, first: Path) -> None:
    b = flow.parent / "B"
    _, data = submit(flow, b, "--count", "3", "--cache-from", str(first))
    # prepare's parameter changed, so it runs; item0 and item1 come from A; publish gathers
    # a new list.
    assert counts(data) == {
        "prepare": {"done": 1},
        "convert": {"cached": 2, "done": 1},
        "publish": {"done": 1},
    }
    assert calls(flow.parent) == {
        "prepare": ["2", "3"],
        "convert": ["item0", "item1", "item2"],
        "publish": ["2", "3"],
    }
    assert origins(b)["convert"] == ["", str(first), str(first)]


def test_wf_submit_with_cache_from_runs_nothing(flow: Path, first: Path) -> None:
    b = flow.parent / "B"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from shared_flow import wf;"
        " run = wf.submit(run_dir=sys.argv[2], cache_from=[sys.argv[3]], count=2);"
        " print(run.run_id, run.wait(timeout=60))"
    )
    done = run([sys.executable, "-c", code, str(flow.parent), str(b), str(first)], flow.parent)
    assert done.returncode == 0, done.stderr
    run_id, state = done.stdout.split()
    assert state == "succeeded"
    assert counts(status(flow, b, run_id)) == ALL_CACHED
    assert calls(flow.parent) == FIRST_CALLS
    assert set(origins(b)["convert"]) == {str(first)}


def test_the_config_and_the_environment_name_run_directories_to_reuse(
    flow: Path, first: Path
) -> None:
    config = flow.parent / "config" / "reflow" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f"[cache]\ncache_from = [{str(first)!r}]\n")
    _, data = submit(flow, flow.parent / "B", "--count", "2")
    assert counts(data) == ALL_CACHED
    # The environment, a list like PATH, wins over the file; the first hit counts.
    config.write_text('[cache]\ncache_from = ["/nowhere/at/all"]\n')
    _, data = submit(flow, flow.parent / "C", "--count", "2",
                     env={"REFLOW_CACHE_FROM": f"{flow.parent / 'B'}:{first}"})  # fmt: skip
    assert counts(data) == ALL_CACHED
    assert set(origins(flow.parent / "C")["convert"]) == {str(flow.parent / "B")}
    assert calls(flow.parent) == FIRST_CALLS


def test_an_older_store_is_read_as_it_is_never_migrated(tmp_path: Path) -> None:
    old = tmp_path / "v1"
    shutil.copytree(V1_FIXTURE, old)
    before = digests(old)
    b = tmp_path / "B"
    _, data = submit(V1_FLOW, b, "--count", "4", "--cache-from", str(old))
    assert counts(data) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 4},
        "finalize": {"cached": 1},
    }
    assert sorted(p.name for p in b.glob("*.calls")) == []
    assert digests(old) == before  # still version 1, no backup, nothing added


def _newer(folder: Path) -> None:
    _foreign_store(folder, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                   " INSERT INTO meta VALUES ('schema', '99')")  # fmt: skip


def _foreign_store(folder: Path, script: str = "CREATE TABLE notes (text TEXT)") -> None:
    folder.mkdir()
    db = sqlite3.connect(folder / "reflow.sqlite")
    try:
        db.executescript(script)
    finally:
        db.close()


def _damaged(folder: Path) -> None:
    folder.mkdir()
    (folder / "reflow.sqlite").write_bytes(b"this is not sqlite" * 100)


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (lambda folder: None, "it does not exist"),
        (lambda folder: folder.write_text("a file"), "is a file"),
        (lambda folder: folder.mkdir(), "no reflow.sqlite"),
        (_foreign_store, "not a reflow store"),
        (_damaged, "damaged"),
        (_newer, "schema version 99, newer than"),
    ],
    ids=["missing", "a-file", "no-store", "foreign-sqlite", "damaged", "newer-schema"],
)
def test_a_bad_cache_from_directory_is_one_line_and_writes_nothing(
    flow: Path, setup: Any, says: str
) -> None:
    other = flow.parent / "other"
    setup(other)
    before = digests(flow.parent)
    b = flow.parent / "B"
    done = run([sys.executable, str(flow), "submit", "--run-dir", str(b), "--cache-from",
                str(other)], flow.parent)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: cache_from: cannot take cached results from " + str(other))
    assert says in line
    assert not b.exists()
    assert digests(flow.parent) == before


def test_a_bad_directory_from_the_config_says_where_it_was_set(flow: Path) -> None:
    config = flow.parent / "config" / "reflow" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[cache]\ncache_from = ["gone"]\n')
    done = run([sys.executable, str(flow), "submit", "--run-dir", str(flow.parent / "B")],
               flow.parent)  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert str(flow.parent / "gone") in line
    assert f"(from {config} [cache] cache_from)" in line
    assert not (flow.parent / "B").exists()
