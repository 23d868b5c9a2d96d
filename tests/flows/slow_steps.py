"""A flow whose elements take a while, for cancel and crash tests; calls are logged."""

import time
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("slow")


@wf.job()
def prepare(count: Annotated[int, Param(help="items")] = 4) -> list[int]:
    return list(range(count))


@wf.array_job()
def work(
    item: Annotated[int, Result(step="prepare")],
    seconds: Annotated[float, Param(help="how long each element sleeps")] = 1.0,
    run_dir: RunDir = RunDir(),
) -> int:
    with (run_dir / "work.calls").open("a") as handle:
        handle.write(f"{item}\n")
    time.sleep(seconds)
    return item * 2


@wf.job()
def total(values: Annotated[list[int], Result(step="work")]) -> int:
    return sum(values)
