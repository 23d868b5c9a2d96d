"""Edited task code under ``[cache] on_code_change``: what the warning counts, ``code_deps``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.integration.flowfiles import calls, counts

FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("code")


def log(run_dir: Path, task: str, what: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write(what + "\\n")


def shout(text: str) -> str:
    return SHOUT


def whisper(text: str) -> str:
    return WHISPER


@wf.job()
def samples() -> list[str]:
    return ["S0", "S1"]


@wf.array_job(code_deps=[shout])
def trim(
    sample: Annotated[str, Result(step="samples")],
    tag: Annotated[str, Param(help="tag")] = "a",
    run_dir: RunDir = RunDir(),
) -> Path:
    log(run_dir, "trim", sample)
    out = run_dir / "trimmed" / f"{sample}.fq"
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"{sample} {shout(tag)}\\n")
    return out


@wf.job()
def merge(paths: Annotated[list[Path], Result(step="trim")], run_dir: RunDir = RunDir()) -> str:
    log(run_dir, "merge", str(len(paths)))
    MERGE
    return "".join(whisper(path.read_text()) for path in paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def write(
    folder: Path,
    *,
    merge: str = "pass",
    shout: str = "text.upper()",
    whisper: str = "text.lower()",
) -> Path:
    flow = folder / "code_flow.py"
    text = textwrap.dedent(FLOW).replace("MERGE", merge)
    flow.write_text(text.replace("SHOUT", shout).replace("WHISPER", whisper))
    return flow


def submit(flow: Path, run_dir: Path, mode: str, *extra: str) -> tuple[list[str], dict[str, Any]]:
    """Submit and wait; return the warning lines and ``task -> state -> count``."""
    env = {
        **os.environ,
        "REFLOW_MODE": "local",
        "REFLOW_ON_CODE_CHANGE": mode,
        "XDG_CONFIG_HOME": str(flow.parent / "config"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(flow), *args, "--run-dir", str(run_dir)],
            capture_output=True,
            text=True,
            check=False,
            cwd=flow.parent,
            env=env,
        )

    done = run("submit", "--wait", *extra)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    status = run("status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning")]
    return warnings, counts(json.loads(status.stdout))


def warned(task: str, count: int) -> str:
    return (
        f"warning: {task}: its code changed; this run reuses {count} cached result(s) made by"
        f" earlier code. To recompute them: --force-task {task}, or set [cache]"
        ' on_code_change = "rerun"'
    )


def test_the_warning_counts_the_results_this_run_reuses_from_older_code(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs"
    submit(write(tmp_path), run_dir, "warn", "--tag", "a")
    submit(write(tmp_path), run_dir, "warn", "--tag", "bb")
    assert calls(run_dir, "merge") == ["2", "2"]  # two results of merge's old body
    edited = write(tmp_path, merge="assert paths")

    warnings, ran = submit(edited, run_dir, "warn", "--tag", "bb")
    assert warnings == [warned("merge", 1)]  # the one it reuses, not both old results
    assert ran == {"samples": {"cached": 1}, "trim": {"cached": 2}, "merge": {"cached": 1}}
    # The run keeps the warning: status shows it later, and status --json lists it.
    later = [sys.executable, str(edited), "status", "--run-dir", str(run_dir)]
    shown = subprocess.run(later, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert f"  at submit: {warned('merge', 1)}\n" in shown.stdout, shown.stdout + shown.stderr
    data = subprocess.run(
        [*later, "--json"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert json.loads(data.stdout)["warnings"] == [warned("merge", 1)]

    # Doing what the warning says recomputes the result; afterwards nothing old is reused.
    warnings, ran = submit(edited, run_dir, "warn", "--tag", "bb", "--force-task", "merge")
    assert warnings == []
    assert ran["merge"] == {"done": 1}
    data = subprocess.run(
        [*later, "--json"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert json.loads(data.stdout)["warnings"] == []  # the latest run, which warned of nothing
    assert calls(run_dir, "merge") == ["2", "2", "2"]
    warnings, ran = submit(edited, run_dir, "warn", "--tag", "bb")
    assert warnings == []
    assert ran["merge"] == {"cached": 1}

    # The --tag a result of the old body is still there, and reused by a --tag a run.
    warnings, ran = submit(edited, run_dir, "warn", "--tag", "a")
    assert warnings == [warned("merge", 1)]
    assert ran["merge"] == {"cached": 1}
    assert calls(run_dir, "merge") == ["2", "2", "2"]


def test_a_helper_in_code_deps_is_covered_and_one_not_listed_is_not(tmp_path: Path) -> None:
    everything_cached = {"samples": {"cached": 1}, "trim": {"cached": 2}, "merge": {"cached": 1}}
    for mode in ("warn", "rerun"):
        folder = tmp_path / mode
        folder.mkdir()
        run_dir = folder / "runs"
        submit(write(folder), run_dir, mode)
        # whisper() is called by merge but not listed: editing it changes nothing.
        unlisted = write(folder, whisper="text.lower().strip()")
        assert submit(unlisted, run_dir, mode) == ([], everything_cached)
        # shout() is listed in trim's code_deps: an edit is trim's code changing.
        listed = write(folder, whisper="text.lower().strip()", shout="text.upper() + '!'")
        warnings, ran = submit(listed, run_dir, mode)
        if mode == "warn":
            assert warnings == [warned("trim", 2)]
            assert ran == everything_cached
            assert sorted(calls(run_dir, "trim")) == ["S0", "S1"]
        else:
            assert warnings == []
            assert ran["trim"] == {"done": 2}
            assert ran["merge"] == {"done": 1}  # trim's files changed
            assert sorted(calls(run_dir, "trim")) == ["S0", "S0", "S1", "S1"]
            explained = subprocess.run(
                [sys.executable, str(listed), "why", "--run-dir", str(run_dir), "--json"],
                capture_output=True, text=True, check=False, cwd=folder,
            )  # fmt: skip
            assert explained.returncode == 0, explained.stderr
            (trim,) = [t for t in json.loads(explained.stdout)["tasks"] if t["task"] == "trim"]
            assert [(r["reason"], r["detail"], r["count"]) for r in trim["reasons"]] == [
                ("code", "the code of trim() changed (its body or its code_deps)", 2)
            ]


def test_a_task_of_another_workflow_with_other_code_is_named_as_such(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs"
    first = write(tmp_path)
    submit(first, run_dir, "warn")
    other = tmp_path / "other_flow.py"  # another workflow, its merge of the same name
    other.write_text(
        write(tmp_path, merge="assert paths").read_text().replace('"code"', '"other"', 1)
    )
    warnings, ran = submit(other, run_dir, "warn")
    assert warnings == [
        "warning: merge: this run reuses 1 cached result(s) of a task merge with other code in"
        " workflow 'code': the cache is shared by task name, version and inputs across a run"
        " directory. To recompute them: --force-task merge; to keep them apart, give the task"
        " a version= of its own"
    ]
    assert ran["merge"] == {"cached": 1}
