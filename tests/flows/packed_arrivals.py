"""A fan-out packed three elements per array task: one element fails at once, some are slow.

``prepare(count)`` lists the items. ``convert`` raises for item 1 at once, returns at once for
items 0 and 3, and holds the others until ``go`` exists in the run directory (at most a
minute), so a test reads ``status`` while the packed array tasks still run.
"""

from __future__ import annotations

import time
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("parrive")

_QUICK = (0, 3)
_HOLD_S = 60.0


@wf.job()
def prepare(count: Annotated[int, Param(help="How many items")]) -> list[int]:
    return list(range(count))


@wf.array_job(pack=3)
def convert(item: Annotated[int, Result(step="prepare")], run_dir: RunDir = RunDir()) -> int:
    if item == 1:
        raise ValueError(f"item {item} is bad")
    deadline = time.monotonic() + _HOLD_S
    while item not in _QUICK and not (run_dir / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return item * 10


if __name__ == "__main__":
    raise SystemExit(wf.cli())
