"""A wide flow for crash tests: ``work`` fails for every item divisible by ``fail_every``.

``prepare`` fans out to two array tasks: ``work`` (some elements fail deterministically) and
``check`` (all succeed, every item ``7k + 6`` after an ``OSError`` on its first call, which
``check`` retries on its own), which ``total`` gathers. Every call of ``work`` is logged, so
a test can tell an element that ran twice from one that was ingested twice.
"""

import os
import time
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("chaos")


@wf.job()
def prepare(count: Annotated[int, Param(help="items")] = 300) -> list[int]:
    return list(range(count))


@wf.array_job()
def work(
    item: Annotated[int, Result(step="prepare")],
    seconds: Annotated[float, Param(help="how long each element sleeps")] = 0.01,
    fail_every: Annotated[int, Param(help="items divisible by this fail (0: none)")] = 25,
    run_dir: RunDir = RunDir(),
) -> int:
    with (run_dir / "work.calls").open("a") as handle:
        handle.write(f"{item} {os.getpid()}\n")
    time.sleep(seconds)
    if fail_every and item % fail_every == 0:
        raise ValueError(f"item {item} fails")
    return item * 2


@wf.array_job(retry_on=(OSError,), retry_delay=0.05)
def check(item: Annotated[int, Result(step="prepare")], run_dir: RunDir = RunDir()) -> str:
    marker = run_dir / f"check.{item}"
    if item % 7 == 6 and not marker.exists():
        marker.touch()
        raise OSError(f"item {item}: the file system hiccuped")
    return f"ok-{item}"


@wf.job()
def total(labels: Annotated[list[str], Result(step="check")]) -> int:
    return len(labels)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
