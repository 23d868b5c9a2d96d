"""A parameter sweep: every combination of a ``list[Literal]`` and a ``list[int]`` parameter.

``cases`` expands the grid into one case per (model, resolution) pair, ``simulate`` runs each
case as one element of an array job, and ``best`` gathers the scores. The list parameters
take several values on the command line (``--models era5 icon``), and ``Literal`` limits
them to the known choices. Each element is cached by its own case, so widening the sweep
runs only the new cases:

    python examples/sweep_flow.py submit --run-dir /tmp/sweep-demo --resolutions 1 2 --wait
    python examples/sweep_flow.py submit --run-dir /tmp/sweep-demo --resolutions 1 2 4 --wait
"""

from typing import Annotated, Literal

from reflow import Param, Result, Workflow

Model = Literal["era5", "icon", "cmip6"]

wf = Workflow("sweep")


@wf.job()
def cases(
    models: Annotated[list[Model], Param(help="Models to compare")] = ["era5", "icon"],  # noqa: B006
    resolutions: Annotated[list[int], Param(help="Grid spacings in km", short="-r")] = [1, 2],  # noqa: B006
) -> list[str]:
    return [f"{model}@{km}" for model in models for km in resolutions]


@wf.array_job(cpus=2, time="00:30:00")
def simulate(case: Annotated[str, Result(step="cases")]) -> float:
    model, km = case.split("@")
    score = len(model) / int(km)
    print(f"{case}: score {score:.3f}")
    return score


@wf.job()
def best(
    scores: Annotated[list[float], Result(step="simulate")],
    names: Annotated[list[str], Result(step="cases")],
) -> str:
    top = max(range(len(scores)), key=scores.__getitem__)
    return f"{names[top]} scores best ({scores[top]:.3f})"


if __name__ == "__main__":
    raise SystemExit(wf.cli())
