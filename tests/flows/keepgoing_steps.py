"""A chain and a gather; two elements fail while a marker file exists. Calls are logged.

``convert`` fails for the items in ``--fail`` while ``<run_dir>/fail.marker`` exists, and the
item ``--slow`` sleeps ``--seconds`` first, so that a test can see ``check`` start on the
finished elements while it still runs.
"""

import time
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("keepgoing")


def log(run_dir: Path, task: str, what: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write(what + "\n")


@wf.job()
def prepare(count: Annotated[int, Param(help="items")] = 10) -> list[int]:
    return list(range(count))


@wf.array_job()
def convert(
    item: Annotated[int, Result(step="prepare")],
    fail: Annotated[str, Param(help="items that fail while fail.marker exists")] = "",
    slow: Annotated[int, Param(help="the item that sleeps")] = -1,
    seconds: Annotated[float, Param(help="how long it sleeps")] = 0.0,
    run_dir: RunDir = RunDir(),
) -> int:
    log(run_dir, "convert", str(item))
    if item == slow:
        time.sleep(seconds)
    failing = {int(i) for i in fail.split(",") if i}
    if item in failing and (run_dir / "fail.marker").exists():
        raise ValueError(f"item {item} is bad")
    return item


@wf.array_job()
def check(value: Annotated[int, Result(step="convert")], run_dir: RunDir = RunDir()) -> int:
    log(run_dir, "check", str(value))
    return value * 10


@wf.job()
def gather(values: Annotated[list[int], Result(step="check")], run_dir: RunDir = RunDir()) -> int:
    log(run_dir, "gather", str(len(values)))
    return sum(values)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
