"""A flow for automatic retries on Slurm: element ``bad`` of one task fails as ``--fault`` says.

Every task appends ``<task> <item>`` to ``calls`` in the run directory on each call, so a test
counts what ran. ``oom``: ``hog``'s elements from ``bad`` on (``--hogs`` of them) need about
600 MB each but ask for 256M (so they run out at 256M and 512M, and fit in 1G).
``capped``: element ``bad`` of ``capped`` does the same, and ``capped`` has ``max_mem`` 512M.
``timeout``: ``slow``'s element sleeps past its one minute on its first call only.
``oserror``: ``flaky``'s element raises ``ConnectionResetError`` (an ``OSError``) on its first
two calls (``retry_on=(OSError,)``, ``retry_delay=2``).
"""

import time
from typing import Annotated, Literal

from reflow import Param, Result, RunDir, Workflow
from tests.flows.retry_steps import called

wf = Workflow("slurm_retries")

Fault = Literal["none", "oom", "capped", "timeout", "oserror"]
_CHUNK = 16 * 1024 * 1024
_NEED = 600 * 1024 * 1024
_SLEEP_S = 600


def hoard() -> int:
    """Hold about 600 MB, written so that it counts."""
    held = [b"x" * _CHUNK for _ in range(_NEED // _CHUNK)]
    return len(held)


@wf.job(mem="200M", time="00:05:00")
def items(count: Annotated[int, Param(help="How many items")] = 3) -> list[int]:
    return list(range(count))


@wf.array_job(mem="256M", time="00:05:00")
def hog(
    item: Annotated[int, Result(step="items")],
    fault: Annotated[Fault, Param(help="How the bad item fails")] = "none",
    bad: Annotated[int, Param(help="The item that fails")] = 1,
    hogs: Annotated[int, Param(help="How many items from bad on need 600 MB")] = 1,
    run_dir: RunDir = RunDir(),
) -> int:
    called(run_dir, "hog", item)
    return hoard() if bad <= item < bad + hogs and fault == "oom" else item


@wf.array_job(mem="256M", max_mem="512M", time="00:05:00")
def capped(
    item: Annotated[int, Result(step="items")],
    fault: Annotated[Fault, Param(help="How the bad item fails")] = "none",
    bad: Annotated[int, Param(help="The item that fails")] = 1,
    run_dir: RunDir = RunDir(),
) -> int:
    called(run_dir, "capped", item)
    return hoard() if item == bad and fault == "capped" else item


@wf.array_job(mem="200M", time=1)
def slow(
    item: Annotated[int, Result(step="items")],
    fault: Annotated[Fault, Param(help="How the bad item fails")] = "none",
    bad: Annotated[int, Param(help="The item that fails")] = 1,
    run_dir: RunDir = RunDir(),
) -> int:
    before = called(run_dir, "slow", item)
    if item == bad and fault == "timeout" and before < 1:
        time.sleep(_SLEEP_S)
    return item


@wf.array_job(mem="200M", time="00:05:00", retry_on=(OSError,), retry_delay=2)
def flaky(
    item: Annotated[int, Result(step="items")],
    fault: Annotated[Fault, Param(help="How the bad item fails")] = "none",
    bad: Annotated[int, Param(help="The item that fails")] = 1,
    run_dir: RunDir = RunDir(),
) -> int:
    before = called(run_dir, "flaky", item)
    if item == bad and fault == "oserror" and before < 2:
        raise ConnectionResetError(f"item {item}: the server went away")
    return item


if __name__ == "__main__":
    raise SystemExit(wf.cli())
