"""A flow for the live view: ``work`` elements print a line and wait while ``<run_dir>/hold``
exists; element 1 fails at once. ``total`` waits for all of ``work``.
"""

import time
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("watched")


@wf.job()
def prepare(count: Annotated[int, Param(help="items")] = 4) -> list[int]:
    return list(range(count))


@wf.array_job()
def work(item: Annotated[int, Result(step="prepare")], run_dir: RunDir = RunDir()) -> int:
    print(f"work element {item} starts", flush=True)
    if item == 1:
        raise RuntimeError("element 1 was told to fail")
    deadline = time.monotonic() + 120
    while (run_dir / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return item * 10


@wf.job()
def total(values: Annotated[list[int], Result(step="work")]) -> int:
    return sum(values)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
