"""The benchmark flow: the spec demo's shape (prepare -> convert[N] -> finalize), any N."""

from typing import Annotated

from reflow import Param, Result, Workflow

wf = Workflow("fanout")


def file_name(index: int) -> str:
    """The name of the fan-out's element ``index``."""
    return f"file-{index:07d}.nc"


@wf.job()
def prepare(count: Annotated[int, Param(help="How many elements the fan-out has")]) -> list[str]:
    return [file_name(index) for index in range(count)]


@wf.array_job()
def convert(nc_file: Annotated[str, Result(step="prepare")]) -> str:
    return nc_file.removesuffix(".nc") + ".zarr"


@wf.job()
def finalize(paths: Annotated[list[str], Result(step="convert")]) -> int:
    return len(paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
