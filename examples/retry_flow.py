r"""Failure and retry: one bad input file fails one element; fix it and retry just that one.

``scan`` lists the ``*.txt`` files of an inbox folder, ``parse`` sums the numbers in each file
(one array element per file), and ``total`` adds the sums. A file with a line that is not a
number makes its element fail with a ``ValueError``; the other elements succeed and stay
cached. The walk-through:

    mkdir -p /tmp/inbox && printf '1\n2\n' > /tmp/inbox/a.txt
    printf '3\nfour\n' > /tmp/inbox/b.txt      # "four" is not a number
    python examples/retry_flow.py submit --run-dir /tmp/retry-demo --inbox /tmp/inbox --wait
    reflow status --run-dir /tmp/retry-demo    # parse: 1 failed (exception: ValueError), its log
    reflow logs RUN_ID parse --run-dir /tmp/retry-demo
    printf '3\n4\n' > /tmp/inbox/b.txt              # fix the cause
    reflow retry RUN_ID --run-dir /tmp/retry-demo --wait

``retry`` reruns the failed element only (and what waits for it), after checking that the
cached upstream outputs still hold: ``scan`` returns paths, so it checks the files exist.
"""

from pathlib import Path
from typing import Annotated

from reflow import Param, Result, Workflow

wf = Workflow("inbox")


@wf.job()
def scan(inbox: Annotated[Path, Param(help="Folder with one *.txt file per batch")]) -> list[Path]:
    return sorted(inbox.absolute().glob("*.txt"))


@wf.array_job()
def parse(text_file: Annotated[Path, Result(step="scan")]) -> int:
    total = 0
    for number, line in enumerate(text_file.read_text().splitlines(), start=1):
        print(f"{text_file.name}:{number}: {line!r}")
        try:
            total += int(line)
        except ValueError as err:
            raise ValueError(f"{text_file}, line {number}: {line!r} is not a number") from err
    return total


@wf.job()
def total(sums: Annotated[list[int], Result(step="parse")]) -> int:
    return sum(sums)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
