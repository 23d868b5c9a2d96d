from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from reflow.definition.environment import Environment
from reflow.definition.resources import Resources
from reflow.running.executors.base import BatchRequest, JobState
from reflow.running.executors.dry_run import DryRunExecutor, describe_resources


def _request(tmp_path: Path, elements: tuple[int, ...] = (0, 1, 2, 5)) -> BatchRequest:
    return BatchRequest(
        run_id="demo-1",
        workflow="demo",
        task="convert",
        batch_id="b1",
        elements=elements,
        resources=Resources(cpus=4, mem_mb=4096, time_s=600, partition="compute"),
        command=("python", "-m", "reflow.running.worker", "--run-dir", "/scratch/my run"),
        workdir=tmp_path,
        log_dir=tmp_path / "logs",
        script_path=tmp_path / "scripts" / "convert-b1.sh",
    )


def test_submit_prints_task_ranges_resources_and_quoted_command(tmp_path: Path) -> None:
    out = io.StringIO()
    submission = DryRunExecutor(out).submit(_request(tmp_path))
    text = out.getvalue()
    assert "would submit convert[0-2,5] (4 elements) as batch b1" in text
    assert "cpus=4 mem=4G time=00:10:00 partition=compute" in text
    assert "after:" not in text
    assert "--run-dir '/scratch/my run'" in text
    assert submission.job_ids == ("dry-b1.0", "dry-b1.1", "dry-b1.2", "dry-b1.5")
    assert submission.scheduler_ids == ("dry-b1",)


def test_submit_of_a_packed_batch_prints_elements_per_array_task(tmp_path: Path) -> None:
    out = io.StringIO()
    request = dataclasses.replace(_request(tmp_path, tuple(range(23))), pack=5)
    DryRunExecutor(out).submit(request)
    assert "convert[0-22] (23 elements, 5 per array task: 5 array tasks) as batch b1" in (
        out.getvalue()
    )


def test_submit_prints_the_rendered_script_when_given_a_renderer(tmp_path: Path) -> None:
    out = io.StringIO()
    executor = DryRunExecutor(out, render=lambda r: f"#!/bin/bash\n#SBATCH --job-name={r.task}")
    executor.submit(_request(tmp_path))
    assert "    #SBATCH --job-name=convert" in out.getvalue()
    assert "command:" not in out.getvalue()


def test_without_a_renderer_a_task_with_an_environment_shows_its_launch_lines(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    environment = Environment(setup=("module load cdo",), env=(("A", "x y"),))
    DryRunExecutor(out).submit(dataclasses.replace(_request(tmp_path), environment=environment))
    lines = out.getvalue().splitlines()
    assert "  run by bash -c:" in lines
    assert "    export A='x y'" in lines
    assert "        'module load cdo'" in lines
    worker = "    reflow_worker=(python -m reflow.running.worker --run-dir '/scratch/my run')"
    assert worker in lines
    assert lines[-1] == '    exec -- "${reflow_worker[@]}"'


def test_nothing_is_written_and_every_job_stays_pending(tmp_path: Path) -> None:
    executor = DryRunExecutor(io.StringIO())
    ids = executor.submit(_request(tmp_path)).job_ids
    executor.cancel(ids)
    assert {s.state for s in executor.states([*ids, "other"]).values()} == {JobState.PENDING}
    assert list(tmp_path.iterdir()) == []


def test_empty_batch_has_no_job_ids(tmp_path: Path) -> None:
    submission = DryRunExecutor(io.StringIO()).submit(_request(tmp_path, ()))
    assert (submission.job_ids, submission.scheduler_ids) == ((), ())


def test_unset_resources_read_as_defaults() -> None:
    assert describe_resources(Resources()) == "defaults"
    assert describe_resources(Resources(mem_mb=1500, extra=("--exclusive",))) == (
        "mem=1500M extra=--exclusive"
    )
