"""The packed benchmark flow: prepare -> convert[N] packed 500 per array task -> finalize."""

from typing import Annotated

from reflow import Param, Result, Workflow

wf = Workflow("packed")
PACK = 500


@wf.job()
def prepare(count: Annotated[int, Param(help="How many elements the fan-out has")]) -> list[str]:
    return [f"file-{index:07d}.nc" for index in range(count)]


@wf.array_job(pack=PACK)
def convert(nc_file: Annotated[str, Result(step="prepare")]) -> str:
    return nc_file.removesuffix(".nc") + ".zarr"


@wf.job()
def finalize(paths: Annotated[list[str], Result(step="convert")]) -> int:
    return len(paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
