"""A flow whose array task names a partition the test cluster does not have."""

from typing import Annotated

from reflow import Param, Result, Workflow

wf = Workflow("refused")


@wf.job(mem="200M", time="00:05:00")
def items(count: Annotated[int, Param(help="How many items")] = 3) -> list[int]:
    return list(range(count))


@wf.array_job(mem="200M", time="00:05:00", partition="nosuchpartition")
def work(item: Annotated[int, Result(step="items")]) -> int:
    return item * 10


if __name__ == "__main__":
    raise SystemExit(wf.cli())
