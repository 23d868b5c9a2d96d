"""A wide flow for crash tests: ``work`` fails for every item divisible by ``fail_every``.

``prepare`` fans out to three array tasks: ``work`` (some elements fail deterministically),
``flaky`` (every seventh element raises ``OSError`` on its first call, and is retried on its
own) and ``check`` (all succeed), which ``total`` gathers. Every call of ``work`` is logged,
so a test can tell an element that ran twice from one that was ingested twice.
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
def flaky(item: Annotated[int, Result(step="prepare")], run_dir: RunDir = RunDir()) -> int:
    marker = run_dir / f"flaky.{item}"
    if item % 7 == 0 and not marker.exists():
        marker.touch()
        raise OSError(f"item {item}: the file system hiccuped")
    return item


@wf.array_job()
def check(item: Annotated[int, Result(step="prepare")]) -> str:
    return f"ok-{item}"


@wf.job()
def total(labels: Annotated[list[str], Result(step="check")]) -> int:
    return len(labels)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
