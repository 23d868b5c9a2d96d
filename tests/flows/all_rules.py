"""Every wiring rule of the spec table, plus broadcast, multi-source Result and after=.

=========  ===========================  ================  ===================
task       reads                        from              mode
=========  ===========================  ================  ===================
files      -                            -                 -
label      -                            -                 -
convert    name                         files             fan-out
convert    tag                          label             broadcast
check      item                         convert           chain
split      item                         check             chain
parts      part                         split             flatten+fan-out
collect    items                        check             gather
flat       items                        split             gather+flatten
total      count                        collect           direct
both       item                         files, convert    fan-out, chain
bundle     items                        files, parts      direct, gather
report     -                            after=[total]     after
=========  ===========================  ================  ===================
"""

from typing import Annotated

from reflow import Param, Result, Workflow

wf = Workflow("all_rules")


@wf.job()
def files(count: Annotated[int, Param(help="How many files")] = 3) -> list[str]:
    return [f"f{i}" for i in range(count)]


@wf.job()
def label(prefix: Annotated[str, Param(help="Label prefix")] = "x") -> str:
    return prefix


@wf.array_job()
def convert(
    name: Annotated[str, Result(step="files")],
    tag: Annotated[str, Result(step="label")],
) -> str:
    return f"{tag}-{name}"


@wf.array_job()
def check(item: Annotated[str, Result(step="convert")]) -> str:
    return item


@wf.array_job()
def split(item: Annotated[str, Result(step="check")]) -> list[str]:
    return [f"{item}.a", f"{item}.b"]


@wf.array_job()
def parts(part: Annotated[str, Result(step="split")]) -> str:
    return part.upper()


@wf.job()
def collect(items: Annotated[list[str], Result(step="check")]) -> int:
    return len(items)


@wf.job()
def flat(items: Annotated[list[str], Result(step="split")]) -> int:
    return len(items)


@wf.job()
def total(count: Annotated[int, Result(step="collect")]) -> int:
    return count


@wf.array_job()
def both(item: Annotated[str, Result(steps=["files", "convert"])]) -> str:
    return item


@wf.job()
def bundle(items: Annotated[list[str], Result(steps=["files", "parts"])]) -> int:
    return len(items)


@wf.job(after=["total"])
def report() -> str:
    return "done"


if __name__ == "__main__":
    raise SystemExit(wf.cli())
