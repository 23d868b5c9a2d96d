"""A chain beside a fan-out of the same list, and a chain concatenated with it. Calls are logged.

``label`` takes element ``i`` of ``convert`` (a chain) and item ``i`` of ``prepare``'s list (a
fan-out); ``merge`` takes ``convert``'s elements and then ``prepare``'s items, concatenated into
one parameter. ``convert`` fails for the items in ``--fail`` while ``<run_dir>/fail.marker``
exists, and the item ``--slow`` sleeps ``--seconds`` first, so that a test can see ``label`` and
``merge`` start on the finished elements while it still runs.
"""

import time
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("mixchain")


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
    return item + 100


@wf.array_job()
def label(
    value: Annotated[int, Result(step="convert")],
    item: Annotated[int, Result(step="prepare")],
    run_dir: RunDir = RunDir(),
) -> str:
    log(run_dir, "label", f"{item}:{value}")
    return f"{item}:{value}"


@wf.array_job()
def merge(
    value: Annotated[int, Result(steps=["convert", "prepare"])], run_dir: RunDir = RunDir()
) -> int:
    log(run_dir, "merge", str(value))
    return value


@wf.job()
def gather(
    labels: Annotated[list[str], Result(step="label")],
    merged: Annotated[list[int], Result(step="merge")],
    run_dir: RunDir = RunDir(),
) -> int:
    log(run_dir, "gather", f"{len(labels)}+{len(merged)}")
    return len(labels) + len(merged)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
