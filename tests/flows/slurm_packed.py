"""A fan-out packed five elements per Slurm array task, whose element ``bad`` misbehaves once.

``work`` appends ``<element>`` to ``ran`` in the run directory each time an element runs, so a
test counts executions. ``--fault raise`` raises in element ``bad``; ``--fault hang`` writes
``started.hang`` and sleeps (for a test to ``scancel`` its array task). Once ``fixed`` exists
in the run directory every element succeeds, so ``retry`` completes the run.
"""

import os
import time
from typing import Annotated, Literal

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("spack")

_SLEEP_S = 600


@wf.job(mem="200M", time="00:05:00")
def items(count: Annotated[int, Param(help="How many items")] = 23) -> list[int]:
    return list(range(count))


@wf.array_job(mem="200M", time="00:01:00", pack=5)
def work(
    item: Annotated[int, Result(step="items")],
    fault: Annotated[Literal["none", "raise", "hang"], Param(help="How bad fails")] = "none",
    bad: Annotated[int, Param(help="The item that misbehaves")] = 7,
    run_dir: RunDir = RunDir(),
) -> int:
    fd = os.open(run_dir / "ran", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{item}\n".encode())
    os.close(fd)
    print(f"working on {item}")
    if item != bad or fault == "none" or (run_dir / "fixed").exists():
        return item * 10
    if fault == "raise":
        raise RuntimeError(f"item {item} cannot be processed")
    (run_dir / "started.hang").write_text(str(item))
    time.sleep(_SLEEP_S)
    return item * 10


@wf.job(mem="200M", time="00:05:00")
def total(values: Annotated[list[int], Result(step="work")]) -> int:
    return sum(values)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
