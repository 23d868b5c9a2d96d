"""Reusable flows: one conversion Flow included twice, with prefixes, into one workflow.

``conversion`` knows nothing about where it is used. ``combined`` includes it as ``era5_*``
and ``icon_*`` tasks, then gathers both conversions in its own ``merge`` task.

    python examples/include_flow.py dag
    python examples/include_flow.py describe
    python examples/include_flow.py submit --help
"""

from typing import Annotated

from reflow import Flow, Param, Result, RunDir, Workflow

conversion = Flow("conversion")


@conversion.job()
def prepare(
    count: Annotated[int, Param(help="Number of files to convert", namespace="local")] = 2,
) -> list[str]:
    return [f"file{i}.nc" for i in range(count)]


@conversion.array_job()
def convert(nc_file: Annotated[str, Result(step="prepare")]) -> str:
    return nc_file.replace(".nc", ".zarr")


wf = Workflow("combined")
wf.include(conversion, prefix="era5")
wf.include(conversion, prefix="icon")


@wf.job()
def merge(
    era5: Annotated[list[str], Result(step="era5_convert")],
    icon: Annotated[list[str], Result(step="icon_convert")],
    run_dir: RunDir = RunDir(),
) -> str:
    return f"merged {len(era5)} era5 and {len(icon)} icon outputs"


if __name__ == "__main__":
    raise SystemExit(wf.cli())
