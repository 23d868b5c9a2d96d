"""The workflow of ``notebook.ipynb``: a notebook imports its tasks from a module like this.

Workers run on other processes (or nodes) and import the tasks by module name, which a
notebook's own cells cannot offer; so the tasks live here and the notebook only submits,
waits and looks. The functions stay plain functions: ``convert("a.nc")`` works as well.
"""

import datetime
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("experiment")


@wf.job()
def prepare(
    start: Annotated[str, Param(help="First day, ISO-8601")],
    days: Annotated[int, Param(help="Number of days")] = 3,
    run_dir: RunDir = RunDir(),
) -> list[str]:
    first = datetime.date.fromisoformat(start)
    return [f"{first + datetime.timedelta(days=i)}.nc" for i in range(days)]


@wf.array_job(cpus=2, time="00:10:00")
def convert(nc_file: Annotated[str, Result(step="prepare")], run_dir: RunDir = RunDir()) -> str:
    target = run_dir / "zarr" / nc_file.replace(".nc", ".zarr")
    target.parent.mkdir(exist_ok=True)
    target.write_text(f"converted from {nc_file}\n")
    return target.name


@wf.job()
def publish(stores: Annotated[list[str], Result(step="convert")]) -> str:
    return f"published {len(stores)} stores: {', '.join(stores)}"
