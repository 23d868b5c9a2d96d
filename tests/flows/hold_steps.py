"""A flow whose ``work`` elements wait while ``<run_dir>/hold`` exists, for fault injection.

A test creates the marker before submitting, so every element is running (and writes no
result) until the test removes it or kills the workers.
"""

import time
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("hold")


@wf.job()
def prepare(count: Annotated[int, Param(help="items")] = 4) -> list[int]:
    return list(range(count))


@wf.array_job()
def work(item: Annotated[int, Result(step="prepare")], run_dir: RunDir = RunDir()) -> int:
    deadline = time.monotonic() + 120
    while (run_dir / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return item * 10
