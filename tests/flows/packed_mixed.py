"""A fan-out packed three elements per array task, with every way an element's line can say.

``convert`` appends ``<item>`` to ``calls`` in the run directory on every call, so a test
counts what ran. Item 1 raises ``ValueError`` (a final failure), item 4 raises
``FileNotFoundError`` on its first call (an ``OSError``, which ``convert`` retries), item 2
waits until ``go`` exists in the run directory (at most a minute), so that a test can kill
its array task meanwhile (it says so first); the others return ``item * 10`` at once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("pmixed")

_HOLD_S = 60.0


def called(run_dir: Path, item: int) -> int:
    """Record a call; return how many calls of ``item`` came before it."""
    calls = run_dir / "calls"
    before = calls.read_text().split().count(str(item)) if calls.exists() else 0
    with calls.open("a") as handle:
        handle.write(f"{item}\n")
    return before


@wf.job()
def prepare(count: Annotated[int, Param(help="How many items")]) -> list[int]:
    return list(range(count))


@wf.array_job(pack=3, retry_on=(OSError,), retry_delay=0.2)
def convert(item: Annotated[int, Result(step="prepare")], run_dir: RunDir = RunDir()) -> int:
    before = called(run_dir, item)
    if item == 1:
        raise ValueError(f"item {item} is bad")
    if item == 4 and before == 0:
        raise FileNotFoundError(f"item {item} is not there yet")
    if item == 2:
        print(f"item {item} waits for go", flush=True)
    deadline = time.monotonic() + _HOLD_S
    while item == 2 and not (run_dir / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return item * 10


if __name__ == "__main__":
    raise SystemExit(wf.cli())
