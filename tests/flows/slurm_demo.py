"""The spec's demo flow (prepare -> convert fan-out -> finalize), sized for the Slurm tests.

As in the spec, ``prepare`` takes ``--start``, ``--end`` and ``--model`` and ``convert`` a
``--bucket``; ``--count`` sets the fan-out and ``--revise 3,17`` renames those files, so that
exactly those elements of ``convert`` miss the cache on a resubmit. ``convert`` asks for one
cpu (the spec's four would run two elements at a time on the eight-slot test node) and
prints a line only for files whose number ends in 3, so that only those elements have a log.
"""

from typing import Annotated, Literal

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("sdemo")


@wf.job(time="00:05:00", mem="200M")
def prepare(
    start: Annotated[str, Param(help="Start date, ISO-8601")],
    end: Annotated[str, Param(help="End date, ISO-8601")],
    model: Annotated[Literal["era5", "icon"], Param(help="Model")] = "era5",
    count: Annotated[int, Param(help="How many files")] = 3,
    revise: Annotated[str, Param(help="Comma-separated file numbers to rename")] = "",
    run_dir: RunDir = RunDir(),
) -> list[str]:
    revised = {int(number) for number in revise.split(",") if number.strip()}
    return [
        f"{model}-{start}-{end}-{number:03d}{'-rev' if number in revised else ''}.nc"
        for number in range(count)
    ]


@wf.array_job(cpus=1, mem="200M", time="00:05:00")
def convert(
    nc_file: Annotated[str, Result(step="prepare")],
    bucket: Annotated[str, Param(help="S3 bucket")],
    run_dir: RunDir = RunDir(),
) -> str:
    if nc_file.removesuffix("-rev.nc").removesuffix(".nc").endswith("3"):
        print(f"converting {nc_file}")
    return f"/data/{bucket}/{nc_file}.zarr"


@wf.job(mem="200M", time="00:05:00")
def finalize(
    paths: Annotated[list[str], Result(step="convert")],
    run_dir: RunDir = RunDir(),
) -> str:
    return f"{len(paths)} files"


if __name__ == "__main__":
    raise SystemExit(wf.cli())
