"""The reflow demo: prepare a list of files, convert each in an array job, then finalize."""

from typing import Annotated, Literal

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("demo")


@wf.job()
def prepare(
    start: Annotated[str, Param(help="Start date, ISO-8601")],
    end: Annotated[str, Param(help="End date, ISO-8601")],
    model: Annotated[Literal["era5", "icon"], Param(help="Model")] = "era5",
    run_dir: RunDir = RunDir(),
) -> list[str]:
    return ["a.nc", "b.nc", "c.nc"]


@wf.array_job(cpus=4, time="00:10:00")
def convert(
    nc_file: Annotated[str, Result(step="prepare")],
    bucket: Annotated[str, Param(help="S3 bucket")],
    run_dir: RunDir = RunDir(),
) -> str:
    return f"/data/{nc_file}.zarr"


@wf.job()
def finalize(
    paths: Annotated[list[str], Result(step="convert")],
    run_dir: RunDir = RunDir(),
) -> str:
    return "done"


if __name__ == "__main__":
    raise SystemExit(wf.cli())
