"""The flow the migration fixtures were made with: ``prepare`` fans out, ``convert``, ``finalize``.

Each task appends a line to ``<run_dir>/<task>.calls``, so a test can count what ran. Keep
this file as it is: the fixture stores hold the cache of these exact tasks.
"""

from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("migrated")


@wf.job()
def prepare(
    count: Annotated[int, Param(help="How many files")] = 3,
    run_dir: RunDir = RunDir(),
) -> list[str]:
    with (run_dir / "prepare.calls").open("a") as handle:
        handle.write("x\n")
    return [f"f{i}.nc" for i in range(count)]


@wf.array_job()
def convert(
    nc_file: Annotated[str, Result(step="prepare")],
    fail_on: Annotated[str, Param(help="Element that fails")] = "",
    run_dir: RunDir = RunDir(),
) -> str:
    with (run_dir / "convert.calls").open("a") as handle:
        handle.write(nc_file + "\n")
    if nc_file == fail_on:
        raise ValueError(f"cannot convert {nc_file}")
    return nc_file.replace(".nc", ".zarr")


@wf.job()
def finalize(
    paths: Annotated[list[str], Result(step="convert")], run_dir: RunDir = RunDir()
) -> str:
    with (run_dir / "finalize.calls").open("a") as handle:
        handle.write("x\n")
    return ",".join(paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
