"""Writes small flow files into a test's folder and runs their CLI as a user would."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reflow.running.store.sqlite import SqliteStore

FLOW_TEMPLATE = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("cache")


def log(run_dir: Path, task: str, what: str) -> None:
    with (run_dir / f"{{task}}.calls").open("a") as handle:
        handle.write(what + "\\n")


@wf.job(version="{prepare_version}")
def prepare(
    count: Annotated[int, Param(help="items")] = 3, run_dir: RunDir = RunDir()
) -> list[str]:
    log(run_dir, "prepare", str(count))
    return [{items_expression} for i in range(count)]


@wf.array_job(cache={convert_cache})
def convert(item: Annotated[str, Result(step="prepare")], run_dir: RunDir = RunDir()) -> Path:
    log(run_dir, "convert", item)
    path = run_dir / "out" / (item + ".txt")
    path.parent.mkdir(exist_ok=True)
    path.write_text(item)
    return path


@wf.job()
def publish(
    paths: Annotated[list[Path], Result(step="convert")], run_dir: RunDir = RunDir()
) -> int:
    log(run_dir, "publish", str(len(paths)))
    if (run_dir / "publish.fail").exists():
        raise RuntimeError("publish was told to fail")
    return sum(len(p.read_text()) for p in paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def write_flow(
    folder: Path,
    *,
    prepare_version: str = "1",
    items_expression: str = 'f"item{i}"',
    convert_cache: bool = True,
) -> Path:
    """Write the caching flow file into ``folder`` and return its path."""
    path = folder / "cache_flow.py"
    path.write_text(
        textwrap.dedent(FLOW_TEMPLATE).format(
            prepare_version=prepare_version,
            items_expression=items_expression,
            convert_cache=convert_cache,
        )
    )
    return path


def copy_flow(name: str, folder: Path) -> Path:
    """Copy ``tests/flows/<name>.py`` into ``folder`` as ``flow.py``: a user's own flow file."""
    path = folder / "flow.py"
    shutil.copy(Path(__file__).parents[1] / "flows" / f"{name}.py", path)
    return path


def cli(
    flow: Path, *args: str, cwd: Path, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python FLOW ARGS`` as a user would, on the local executor."""
    return cli_with_mode(flow, "local", *args, cwd=cwd, timeout_s=timeout_s)


def cli_with_mode(
    flow: Path, mode: str, *args: str, cwd: Path, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python FLOW ARGS`` with ``REFLOW_MODE=mode``."""
    env = {**os.environ, "REFLOW_MODE": mode, "XDG_CONFIG_HOME": str(cwd / "config")}
    return subprocess.run(
        [sys.executable, str(flow), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def submit_and_wait(flow: Path, run_dir: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """Submit with ``--wait``; return the run id and its ``status --json``."""
    done = cli(flow, "submit", "--run-dir", str(run_dir), "--wait", *args, cwd=flow.parent)
    assert "submitted run " in done.stdout, done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    status = cli(flow, "status", run_id, "--run-dir", str(run_dir), "--json", cwd=flow.parent)
    assert status.returncode == 0, status.stderr
    data: dict[str, Any] = json.loads(status.stdout)
    data["exit_code"] = done.returncode
    return run_id, data


def counts(status: dict[str, Any]) -> dict[str, dict[str, int]]:
    """``task -> state -> count`` from ``status --json``."""
    return {task["task"]: task["counts"] for task in status["tasks"]}


def calls(run_dir: Path, task: str) -> list[str]:
    """What the flow's tasks logged about their calls."""
    path = run_dir / f"{task}.calls"
    return path.read_text().split() if path.exists() else []


def seed(store: SqliteStore, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
    """Write rows the way no reflow command would, to set up a state to look at."""
    db = sqlite3.connect(store.path)
    try:
        with db:
            for sql, rows in statements:
                db.executemany(sql, rows)
    finally:
        db.close()
