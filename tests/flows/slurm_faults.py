"""A flow whose element ``bad`` of ``work`` misbehaves as ``--fault`` says, once.

``oom`` allocates far beyond its memory limit, ``timeout`` and ``hang`` sleep past the one
minute time limit (``hang`` is for a test to ``scancel``), ``raise`` raises, and ``wait``
waits until ``fixed`` exists, then succeeds. Each writes ``started.<fault>`` into the run
directory first. Once ``fixed`` exists in the run directory every element succeeds, so
``retry`` completes the run. ``work`` has ``retries=0``: its failures end the run as they are,
without automatic retries, which ``tests/flows/slurm_retries.py`` is for.
"""

import time
from typing import Annotated, Literal

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("faults")

_OOM_CHUNK = 16 * 1024 * 1024
_OOM_CHUNKS = 128  # 2 GiB at most, far beyond the 200M the task asks for
_OOM_PAUSE_S = 0.02  # slow enough for Slurm's 1 s memory sampling where cgroups are missing
_SLEEP_S = 600
_POLL_S = 0.1


@wf.job(mem="200M", time="00:05:00")
def items(count: Annotated[int, Param(help="How many items")] = 3) -> list[int]:
    return list(range(count))


@wf.array_job(mem="200M", time="00:01:00", retries=0)
def work(
    item: Annotated[int, Result(step="items")],
    fault: Annotated[
        Literal["none", "oom", "timeout", "hang", "raise", "wait"], Param(help="How bad fails")
    ] = "none",
    bad: Annotated[int, Param(help="The item that misbehaves")] = 1,
    run_dir: RunDir = RunDir(),
) -> int:
    if item != bad or fault == "none" or (run_dir / "fixed").exists():
        return item * 10
    (run_dir / f"started.{fault}").write_text(str(item))
    if fault == "raise":
        raise RuntimeError(f"item {item} cannot be processed")
    if fault == "wait":
        while not (run_dir / "fixed").exists():
            time.sleep(_POLL_S)
        return item * 10
    if fault == "oom":
        hoard = []
        for _ in range(_OOM_CHUNKS):
            hoard.append(b"x" * _OOM_CHUNK)
            time.sleep(_OOM_PAUSE_S)
    time.sleep(_SLEEP_S)
    return item * 10


@wf.job(mem="200M", time="00:05:00")
def total(values: Annotated[list[int], Result(step="work")]) -> int:
    return sum(values)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
