"""Caching semantics end to end, through the CLI as a user runs it (local executor)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.flowfiles import (
    calls,
    cli,
    cli_with_mode,
    counts,
    submit_and_wait,
    write_flow,
)


def test_identical_second_submit_runs_nothing(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    _, first = submit_and_wait(flow, run_dir)
    assert first["state"] == "succeeded"
    assert first["exit_code"] == 0
    _, second = submit_and_wait(flow, run_dir)
    assert counts(second) == {
        "prepare": {"cached": 1},
        "convert": {"cached": 3},
        "publish": {"cached": 1},
    }
    assert sorted(calls(run_dir, "convert")) == ["item0", "item1", "item2"]


def test_version_bump_reruns_prepare_and_only_changed_downstream(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs"
    submit_and_wait(write_flow(tmp_path), run_dir)
    # Version 2 returns the same items except the last one.
    flow = write_flow(
        tmp_path, prepare_version="2", items_expression='f"item{i}" if i < 2 else "new"'
    )
    _, status = submit_and_wait(flow, run_dir)
    assert counts(status) == {
        "prepare": {"done": 1},
        "convert": {"cached": 2, "done": 1},
        "publish": {"done": 1},
    }
    assert sorted(calls(run_dir, "convert")) == ["item0", "item1", "item2", "new"]


def test_force_task_and_force_rerun_what_they_name(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    submit_and_wait(flow, run_dir)
    _, forced = submit_and_wait(flow, run_dir, "--force-task", "convert")
    # convert rewrites its files: their fingerprints (mtime) change, so publish runs too.
    assert counts(forced) == {
        "prepare": {"cached": 1},
        "convert": {"done": 3},
        "publish": {"done": 1},
    }
    _, everything = submit_and_wait(flow, run_dir, "--force")
    assert counts(everything) == {
        "prepare": {"done": 1},
        "convert": {"done": 3},
        "publish": {"done": 1},
    }


def test_cache_false_always_runs(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, convert_cache=False)
    run_dir = tmp_path / "runs"
    submit_and_wait(flow, run_dir)
    _, again = submit_and_wait(flow, run_dir)
    assert counts(again)["convert"] == {"done": 3}
    assert counts(again)["publish"] == {"done": 1}  # the rewritten files are new files


def test_deleted_path_output_is_rebuilt_on_verified_submit(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    submit_and_wait(flow, run_dir)
    (run_dir / "out" / "item1.txt").unlink()
    _, trusting = submit_and_wait(flow, run_dir)
    assert counts(trusting)["convert"] == {"cached": 3}
    _, verified = submit_and_wait(flow, run_dir, "--verify")
    assert counts(verified)["convert"] == {"cached": 2, "done": 1}
    assert (run_dir / "out" / "item1.txt").exists()


def test_unknown_force_task_is_a_one_line_usage_error(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    done = cli(
        flow, "submit", "--run-dir", str(tmp_path / "r"), "--force-task", "convrt", cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert 'did you mean "convert"' in done.stderr
    assert not (tmp_path / "r").exists()


def test_dry_run_shows_what_would_run_and_writes_nothing(tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    submit_and_wait(flow, run_dir)
    before = sorted(str(p) for p in run_dir.rglob("*"))
    store_bytes = (run_dir / "reflow.sqlite").read_bytes()
    env_args = ("submit", "--run-dir", str(run_dir), "--count", "4")
    done = cli_with_mode(flow, "dry-run", *env_args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "nothing is submitted" in done.stdout
    assert "prepare: 1 submitted" in done.stdout
    assert "convert: waits for prepare" in done.stdout
    assert sorted(str(p) for p in run_dir.rglob("*")) == before
    assert (run_dir / "reflow.sqlite").read_bytes() == store_bytes
    assert calls(run_dir, "prepare") == ["3"]


def test_a_dry_run_where_slurm_does_not_answer_shows_the_scripts_with_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin"  # Slurm's commands are here, its controller is not
    fake.mkdir()
    called = tmp_path / "called"
    for command in ("sbatch", "scontrol", "sinfo", "squeue", "sacct", "sacctmgr"):
        script = fake / command
        script.write_text(
            f"#!/bin/sh\necho {command} >> '{called}'\n"
            f"echo '{command}: error: Unable to contact slurm controller' >&2\nexit 1\n"
        )
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    flow = write_flow(tmp_path)
    run_dir = tmp_path / "runs"
    done = cli_with_mode(flow, "dry-run", "submit", "--run-dir", str(run_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        "[dry-run] Slurm does not answer (scontrol show config failed: scontrol: error: Unable"
        " to contact slurm controller); the scripts assume its default MaxArraySize 1001"
    ) in done.stdout
    assert "#SBATCH --array=0\n" in done.stdout
    assert "  prepare: 1 submitted\n" in done.stdout
    assert not run_dir.exists()
    assert called.read_text() == "scontrol\n"  # once, no retries, nothing asked after it
    odd = tmp_path / "back\\slash"  # a folder sbatch cannot name logs in: the task fails
    done = cli_with_mode(flow, "dry-run", "submit", "--run-dir", str(odd), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "  prepare: 1 failed (submission: " in done.stdout
    assert "contains a backslash, which stops sbatch from naming logs per element" in done.stdout
