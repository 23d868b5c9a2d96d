"""Reading results back: ``run.result``/``run.results`` and the ``result`` command."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reflow import UsageError
from reflow.run import Run
from tests.integration.flowfiles import cli, submit_and_wait

FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("results")


@wf.job()
def prepare(count: Annotated[int, Param(help="items")] = 3) -> list[str]:
    return [f"f{i}.nc" for i in range(count)]


@wf.array_job()
def convert(
    nc_file: Annotated[str, Result(step="prepare")],
    fail_on: Annotated[str, Param(help="element that fails")] = "",
    run_dir: RunDir = RunDir(),
) -> Path:
    if nc_file == fail_on:
        raise ValueError(f"cannot convert {nc_file}")
    out = run_dir / (nc_file + ".zarr")
    out.write_text(nc_file)
    return out


@wf.job()
def finalize(paths: Annotated[list[Path], Result(step="convert")]) -> dict[str, int]:
    return {"files": len(paths)}


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def test_results_of_done_failed_and_unplanned_elements(tmp_path: Path) -> None:
    flow = tmp_path / "results_flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    run_dir = tmp_path / "runs"
    run_id, status = submit_and_wait(flow, run_dir, "--fail-on", "f1.nc")
    assert status["state"] == "failed"

    def result(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(flow, "result", run_id, *args, "--run-dir", str(run_dir), cwd=tmp_path)

    shown = result("prepare")
    assert (shown.returncode, json.loads(shown.stdout)) == (0, ["f0.nc", "f1.nc", "f2.nc"])
    shown = result("convert", "2")
    assert (shown.returncode, shown.stdout) == (0, json.dumps(str(run_dir / "f2.nc.zarr")) + "\n")
    failed = result("convert", "1")
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1
    assert "convert[1]" in failed.stderr
    assert "failed" in failed.stderr
    assert "ValueError: cannot convert f1.nc" in failed.stderr
    assert f"; read its log: python {flow} logs {run_id} convert 1" in failed.stderr
    blocked = result("finalize")
    assert blocked.returncode == 2
    assert "never started" in blocked.stderr
    assert f"; see what failed: python {flow} status {run_id} --failed" in blocked.stderr
    unknown = result("convrt", "0")
    assert unknown.returncode == 2
    assert 'did you mean "convert"' in unknown.stderr or "convert" in unknown.stderr
    out_of_range = result("convert", "7")
    assert out_of_range.returncode == 2
    assert "no element 7" in out_of_range.stderr


def test_results_from_python_and_the_console_script_after_a_cached_run(tmp_path: Path) -> None:
    flow = tmp_path / "results_flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    run_dir = tmp_path / "runs"
    submit_and_wait(flow, run_dir)
    run_id, status = submit_and_wait(flow, run_dir)  # everything comes from the cache
    assert {t["task"]: t["counts"] for t in status["tasks"]}["convert"] == {"cached": 3}
    run = Run(run_dir, run_id)
    assert run.results("convert") == [run_dir / f"f{i}.nc.zarr" for i in range(3)]
    assert isinstance(run.result("convert", 0), Path)
    assert run.result("finalize") == {"files": 3}
    with pytest.raises(UsageError, match=r"the element of convert must be an int, not '1'"):
        run.result("convert", "1")  # type: ignore[arg-type]
    numpy_like = _Index(2)  # as numpy's ints: not an int, but works as one
    assert run.result("convert", numpy_like) == run_dir / "f2.nc.zarr"  # type: ignore[arg-type]
    console = Path(sys.executable).with_name("reflow")
    shown = subprocess.run(
        [str(console), "result", run_id, "finalize", "--json", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (shown.returncode, shown.stdout) == (0, '{"files": 3}\n')
    # A result naming a file that is gone is still shown, with one line saying so.
    (run_dir / "f1.nc.zarr").unlink()
    listed = cli(flow, "result", run_id, "convert", "--run-dir", str(run_dir), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [str(run_dir / f"f{i}.nc.zarr") for i in range(3)]
    assert listed.stderr == (
        f"note: 1 path in this result no longer exists ({run_dir / 'f1.nc.zarr'});"
        " submit --verify reruns what made it\n"
    )
    present = cli(flow, "result", run_id, "convert", "2", "--run-dir", str(run_dir), cwd=tmp_path)
    assert (present.returncode, present.stderr) == (0, "")


def test_a_fan_out_over_an_empty_list_has_no_elements_and_says_so(tmp_path: Path) -> None:
    flow = tmp_path / "results_flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    run_dir = tmp_path / "runs"
    run_id, status = submit_and_wait(flow, run_dir, "--count", "0")
    assert status["state"] == "succeeded"
    for command in ("result", "logs"):
        done = cli(flow, command, run_id, "convert", "--run-dir", str(run_dir), cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr == (
            f"error: convert has no elements in run {run_id}: the list it fans out over was"
            f" empty; see the run: python {flow} status {run_id} --run-dir {run_dir}\n"
        )


class _Index:
    """An integer type that is not ``int``, as numpy's are: it has ``__index__``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


RELATIVE_FLOW = """
from pathlib import Path

from reflow import Workflow

wf = Workflow("relative")


@wf.job()
def make() -> Path:
    made = Path("made.txt")  # below the folder submit ran in, where the worker runs
    made.write_text("made")
    return made


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def test_result_looks_for_a_relative_path_below_the_folder_the_run_was_submitted_from(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    flow = work / "relative_flow.py"
    flow.write_text(textwrap.dedent(RELATIVE_FLOW))
    run_dir = tmp_path / "runs"
    run_id, status = submit_and_wait(flow, run_dir)  # from work/
    assert status["state"] == "succeeded"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shown = cli(flow, "result", run_id, "make", "--run-dir", str(run_dir), cwd=elsewhere)
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, '"made.txt"\n', "")
    (work / "made.txt").unlink()
    gone = cli(flow, "result", run_id, "make", "--run-dir", str(run_dir), cwd=elsewhere)
    assert gone.returncode == 0
    assert gone.stderr == (
        f"note: 1 path in this result no longer exists ({work / 'made.txt'});"
        " submit --verify reruns what made it\n"
    )
