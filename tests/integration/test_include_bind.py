"""``include(flow, prefix=, bind=)``: a reusable flow names an external step by a local name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest

from reflow import DefinitionError, Flow, Result, Workflow
from tests.integration.flowfiles import cli, submit_and_wait
from tests.reliability.catalogue_support import include_flow


def write(folder: Path, bind: str) -> Path:
    flow = folder / "analysis.py"
    flow.write_text(include_flow(bind))
    return flow


def test_a_bound_external_step_is_wired_and_runs(tmp_path: Path) -> None:
    flow = write(tmp_path, ', bind={"clean": "raw_clean"}')
    dag = cli(flow, "dag", cwd=tmp_path)
    assert dag.returncode == 0, dag.stderr
    assert "raw_clean" in dag.stdout
    assert "stats_summarize" in dag.stdout
    run_id, status = submit_and_wait(flow, tmp_path / "runs")
    assert status["state"] == "succeeded"
    shown = cli(flow, "result", run_id, "stats_summarize", "--run-dir", str(tmp_path / "runs"),
                cwd=tmp_path)  # fmt: skip
    assert shown.stdout.strip() == "6"


def test_an_unbound_external_step_is_one_error_listing_the_candidates(tmp_path: Path) -> None:
    flow = write(tmp_path, "")
    done = cli(flow, "dag", cwd=tmp_path)
    assert done.returncode == 2
    assert "external step 'clean'" in done.stderr
    assert "raw_clean" in done.stderr  # the candidate
    assert 'bind={"clean": TASK}' in done.stderr
    assert "Traceback" not in done.stderr


def test_bind_errors_name_what_is_wrong() -> None:
    stats = Flow("stats")

    @stats.job()
    def summarize(values: Annotated[list[int], Result(step="clean")]) -> int:
        return sum(values)

    wf = Workflow("analysis")

    @wf.job()
    def raw_clean() -> list[int]:
        return [1]

    with pytest.raises(DefinitionError) as unknown:
        wf.include(stats, prefix="s", bind={"clena": "raw_clean"})
    assert unknown.value.suggestion == "clean"
    with pytest.raises(DefinitionError) as missing:
        wf.include(stats, prefix="s", bind={"clean": "raw_clan"})
    assert missing.value.suggestion == "raw_clean"
    assert not any(name.startswith("s_") for name in wf.tasks)  # nothing half included
    wf.include(stats, prefix="s", bind={"clean": "raw_clean"})
    assert wf.graph().task("s_summarize").upstream == ("raw_clean",)
