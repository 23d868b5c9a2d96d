"""Files as outputs: tasks that return ``Path``s, and a custom ``verify=`` check.

``download`` writes one CSV file per day and returns their paths; ``summarize`` reads one
file per array element and writes a JSON summary next to it; ``report`` gathers the
summaries into one number. Every returned ``Path`` carries its file's fingerprint, so a file
that changes reruns what reads it; ``summarize`` fingerprints by content, so a summary
rewritten with the same bytes keeps ``report`` cached. ``report`` adds its own check with
``verify=``. The cache trusts finished work on a plain ``submit``; ``submit --verify`` (and
``retry``) check the files first and recompute only what went missing or changed:

    python examples/paths_flow.py submit --run-dir /tmp/paths-demo --days 3 --wait
    rm /tmp/paths-demo/summaries/day1.json
    python examples/paths_flow.py submit --run-dir /tmp/paths-demo --days 3 --verify --wait
"""

import json
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("paths")


@wf.job()
def download(
    days: Annotated[int, Param(help="Number of daily files to fetch")] = 3,
    run_dir: RunDir = RunDir(),
) -> list[Path]:
    folder = run_dir / "raw"
    folder.mkdir(exist_ok=True)
    paths: list[Path] = []
    for day in range(days):
        path = folder / f"day{day}.csv"
        path.write_text("".join(f"{day},{hour},{day * 10 + hour % 7}\n" for hour in range(24)))
        paths.append(path)
    return paths


@wf.array_job(mem="500M", fingerprint="content")
def summarize(
    csv_file: Annotated[Path, Result(step="download")], run_dir: RunDir = RunDir()
) -> Path:
    values = [int(line.split(",")[2]) for line in csv_file.read_text().splitlines()]
    folder = run_dir / "summaries"
    folder.mkdir(exist_ok=True)
    target = folder / f"{csv_file.stem}.json"
    target.write_text(json.dumps({"file": csv_file.name, "max": max(values), "sum": sum(values)}))
    print(f"summarized {csv_file.name}: max {max(values)}")
    return target


@wf.job(verify=lambda total: total >= 0)
def report(summaries: Annotated[list[Path], Result(step="summarize")]) -> float:
    return float(sum(json.loads(path.read_text())["sum"] for path in summaries))


if __name__ == "__main__":
    raise SystemExit(wf.cli())
