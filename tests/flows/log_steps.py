"""A flow for the logs command: prints lines, sleeps between them, fails or crashes on demand.

``stem(n, pause)`` prints ``line 1`` .. ``line n``, sleeping ``pause`` seconds after each
but the last. Element ``i`` of ``crash`` fails with a ``ValueError`` when ``mode`` is
``raise`` and kills itself with SIGSEGV when it is ``segv``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Annotated

from reflow import Param, Result, Workflow

wf = Workflow("logsteps")


@wf.job()
def items(count: Annotated[int, Param(help="how many elements")] = 2) -> list[int]:
    return list(range(count))


@wf.array_job()
def talk(
    item: Annotated[int, Result(step="items")],
    lines: Annotated[int, Param(help="lines each element prints")] = 5,
    pause: Annotated[float, Param(help="seconds between lines")] = 0.0,
    mode: Annotated[str, Param(help="ok, raise or segv")] = "ok",
) -> int:
    for number in range(1, lines + 1):
        print(f"element {item} line {number}", flush=True)
        if number < lines:
            time.sleep(pause)
    if mode == "raise":
        raise ValueError(f"element {item} was told to fail")
    if mode == "segv":
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGSEGV)
    return item


if __name__ == "__main__":
    raise SystemExit(wf.cli())
