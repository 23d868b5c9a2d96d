"""A demo flow whose behaviour the tests steer through environment-free parameters.

``prepare`` returns ``count`` files; ``convert`` fails for the element named by ``fail_on``
(unless a marker file says the failure was fixed); ``finalize`` gathers.
"""

from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("steps")


@wf.job(version="1")
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
    bucket: Annotated[str, Param(help="Bucket")] = "b",
    fail_on: Annotated[str, Param(help="Element that fails")] = "",
    run_dir: RunDir = RunDir(),
) -> str:
    print(f"converting {nc_file}")
    with (run_dir / "convert.calls").open("a") as handle:
        handle.write(nc_file + "\n")
    if nc_file == fail_on and not (run_dir / "fixed").exists():
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
