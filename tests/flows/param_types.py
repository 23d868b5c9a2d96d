"""Every kind of command-line parameter: each scalar type, bool, Path, Literal, list, optional,
short flags, a global shared by two tasks, and a local one."""

from pathlib import Path
from typing import Annotated, Literal

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("param_types")


@wf.job()
def configure(
    name: Annotated[str, Param(help="Run name", short="-n")],
    years: Annotated[list[int], Param(help="Years to process")],
    count: Annotated[int, Param(help="How many")] = 3,
    ratio: float = 0.5,
    dry: Annotated[bool, Param(help="Only pretend")] = False,
    output: Annotated[Path, Param(help="Output folder", output=True)] = Path("out"),
    model: Annotated[Literal["era5", "icon"], Param(help="Model", short="-m")] = "era5",
    level: Literal[1, 2, 3] = 1,
    tags: tuple[str, ...] = ("a", "b"),
    seed: int | None = None,
    run_dir: RunDir = RunDir(),
) -> list[str]:
    return [f"{name}-{year}" for year in years]


@wf.array_job()
def ingest(
    item: Annotated[str, Result(step="configure")],
    name: Annotated[str, Param(help="Run name", short="-n")],
    chunk: Annotated[int, Param(help="Chunk size", namespace="local")] = 256,
) -> str:
    return f"{item}:{chunk}"


if __name__ == "__main__":
    raise SystemExit(wf.cli())
