"""A flow for the live view's failures: ``fail``'s element ``i`` prints a line, waits
``i * 0.4`` s and fails, so its elements fail in index order; even ones raise ``ValueError``,
odd ones ``KeyError``. ``fail`` asks for ``mem="256M"``: a test that edits a copy of this file
changes what a retry takes. Every call appends ``fail <item>`` to ``calls`` in the run
directory, so a test counts what ran.
"""

import time
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("failing")


@wf.job()
def items(count: Annotated[int, Param(help="items")] = 4) -> list[int]:
    return list(range(count))


@wf.array_job(mem="256M")
def fail(item: Annotated[int, Result(step="items")], run_dir: RunDir = RunDir()) -> int:
    with (run_dir / "calls").open("a") as handle:
        handle.write(f"fail {item}\n")
    print(f"fail element {item} starts", flush=True)
    time.sleep(item * 0.4)
    if item % 2:
        raise KeyError(f"item {item}")
    raise ValueError(f"item {item} is even")


if __name__ == "__main__":
    raise SystemExit(wf.cli())
