"""A flow whose element ``bad`` fails as ``--fault`` says, then recovers: for automatic retries.

Every call of ``work`` and ``plain`` appends ``<task> <item>`` to ``calls`` in the run
directory first, so a test counts what ran. ``oserror``: ``work``'s element raises
``FileNotFoundError`` (an ``OSError``) on its first two calls; ``work`` retries on
``OSError``. ``plain``: ``plain``'s element raises ``FileNotFoundError`` on its first call,
and ``plain`` names no ``retry_on``. ``sigkill``: ``work``'s element kills its own process on
its first call.
"""

import os
import signal
from pathlib import Path
from typing import Annotated, Literal

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("retries")

Fault = Literal["none", "oserror", "plain", "sigkill"]


def called(run_dir: Path, task: str, item: int) -> int:
    """Record a call; return how many calls of ``task`` on ``item`` came before it."""
    calls = run_dir / "calls"
    before = calls.read_text().splitlines().count(f"{task} {item}") if calls.exists() else 0
    with calls.open("a") as handle:
        handle.write(f"{task} {item}\n")
    return before


@wf.job()
def items(count: Annotated[int, Param(help="How many items")] = 3) -> list[int]:
    return list(range(count))


@wf.array_job(retry_on=(OSError,), retry_delay=0.2)
def work(
    item: Annotated[int, Result(step="items")],
    fault: Annotated[Fault, Param(help="How the bad item fails")] = "none",
    bad: Annotated[int, Param(help="The item that fails")] = 1,
    run_dir: RunDir = RunDir(),
) -> int:
    before = called(run_dir, "work", item)
    if item == bad and fault == "oserror" and before < 2:
        raise FileNotFoundError(f"item {item} is not there yet")
    if item == bad and fault == "sigkill" and before < 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * 10


@wf.array_job()
def plain(
    value: Annotated[int, Result(step="work")],
    fault: Annotated[Fault, Param(help="How the bad item fails")] = "none",
    bad: Annotated[int, Param(help="The item that fails")] = 1,
    run_dir: RunDir = RunDir(),
) -> int:
    item = value // 10
    before = called(run_dir, "plain", item)
    if item == bad and fault == "plain" and before < 1:
        raise FileNotFoundError(f"item {item} is not there yet")
    return value + 1


if __name__ == "__main__":
    raise SystemExit(wf.cli())
