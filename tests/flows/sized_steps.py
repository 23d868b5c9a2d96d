"""A flow whose tasks use known resources, for the right-sizing report.

``hog`` holds ``--megabytes`` of touched memory for ``--hold`` seconds (long enough for
Slurm's one-second memory sampling) and asks for 512M; ``nap`` sleeps and asks for 4G, far
more than it uses; ``spin`` keeps one core busy for ``--busy`` seconds of CPU time and asks
for nothing.
"""

import time
from typing import Annotated

from reflow import Param, Workflow

wf = Workflow("sized")

_PAGE = 4096


@wf.job(mem="512M")
def hog(
    megabytes: Annotated[int, Param(help="Memory to hold, in MB")] = 300,
    hold: Annotated[float, Param(help="Seconds to hold it")] = 2.5,
) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    for offset in range(0, len(block), _PAGE):
        block[offset] = 1
    time.sleep(hold)
    return len(block) // (1024 * 1024)


@wf.job(mem="4G", time="00:10:00")
def nap(seconds: Annotated[float, Param(help="Seconds to sleep")] = 1.0) -> float:
    time.sleep(seconds)
    return seconds


@wf.job()
def spin(busy: Annotated[float, Param(help="Seconds of CPU time to use")] = 1.0) -> int:
    start = time.process_time()
    turns = 0
    while time.process_time() - start < busy:
        turns += 1
    return turns


if __name__ == "__main__":
    raise SystemExit(wf.cli())
