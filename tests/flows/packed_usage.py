"""A fan-out packed two elements per array task, each element keeping a core busy its own time.

``prepare(count)`` lists the items; ``burn`` spins the CPU for ``0.1 + 0.3 * item`` seconds,
so the elements of one array task differ in elapsed and CPU time and a report that took the
array task's figures for each element would show it.
"""

from __future__ import annotations

import time
from typing import Annotated

from reflow import Param, Result, Workflow

wf = Workflow("pusage")

BASE_S = 0.1
STEP_S = 0.3


@wf.job()
def prepare(count: Annotated[int, Param(help="How many items")]) -> list[int]:
    return list(range(count))


@wf.array_job(pack=2, time="00:01:00")
def burn(item: Annotated[int, Result(step="prepare")]) -> int:
    deadline = time.process_time() + BASE_S + STEP_S * item
    spins = 0
    while time.process_time() < deadline:
        spins += 1
    return item


if __name__ == "__main__":
    raise SystemExit(wf.cli())
