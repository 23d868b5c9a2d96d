"""File fingerprints: a file rewritten in place reaches the tasks downstream (local executor)."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.flowfiles import calls, cli, counts, submit_and_wait

FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("files")


def log(run_dir: Path, task: str, what: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write(what + "\\n")


@wf.job()
def samples(count: Annotated[int, Param(help="samples")] = 2) -> list[str]:
    return [f"S{i}" for i in range(count)]


@wf.array_job(fingerprint=MODE)
def trim(
    sample: Annotated[str, Result(step="samples")],
    gc: Annotated[int, Param(help="GC threshold")] = 1,
    run_dir: RunDir = RunDir(),
) -> Path:
    log(run_dir, "trim", sample)
    out = run_dir / "trimmed" / f"{sample}.fq"
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"{sample} {gc // 10}\\n")  # the bytes change only when gc // 10 does
    if sample == "S9":
        out.unlink()  # returns a path to nothing
    return out


@wf.job()
def merge(paths: Annotated[list[Path], Result(step="trim")], run_dir: RunDir = RunDir()) -> str:
    log(run_dir, "merge", str(len(paths)))
    if (run_dir / "merge.fail").exists():
        raise RuntimeError("merge was told to fail")
    return "".join(path.read_text() for path in paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def write(folder: Path, mode: str) -> Path:
    flow = folder / "files_flow.py"
    flow.write_text(textwrap.dedent(FLOW).replace("MODE", repr(mode)))
    return flow


def test_a_rewritten_file_reruns_the_task_downstream_in_stat_mode(tmp_path: Path) -> None:
    flow, run_dir = write(tmp_path, "stat"), tmp_path / "runs"
    submit_and_wait(flow, run_dir, "--gc", "1")
    # A new threshold reruns trim; it rewrites the same files with the same bytes, but their
    # modification times change, so merge must not come from the cache.
    _, second = submit_and_wait(flow, run_dir, "--gc", "2")
    assert counts(second) == {"samples": {"cached": 1}, "trim": {"done": 2}, "merge": {"done": 1}}
    assert sorted(calls(run_dir, "trim")) == ["S0", "S0", "S1", "S1"]
    assert calls(run_dir, "merge") == ["2", "2"]


def test_content_mode_keeps_downstream_cached_for_identical_bytes(tmp_path: Path) -> None:
    flow, run_dir = write(tmp_path, "content"), tmp_path / "runs"
    submit_and_wait(flow, run_dir, "--gc", "1")
    _, same_bytes = submit_and_wait(flow, run_dir, "--gc", "2")
    assert counts(same_bytes)["trim"] == {"done": 2}
    assert counts(same_bytes)["merge"] == {"cached": 1}
    _, new_bytes = submit_and_wait(flow, run_dir, "--gc", "15")
    assert counts(new_bytes)["merge"] == {"done": 1}
    assert calls(run_dir, "merge") == ["2", "2"]


def test_path_mode_hashes_the_path_only(tmp_path: Path) -> None:
    flow, run_dir = write(tmp_path, "path"), tmp_path / "runs"
    submit_and_wait(flow, run_dir, "--gc", "1")
    _, second = submit_and_wait(flow, run_dir, "--gc", "15")
    assert counts(second)["merge"] == {"cached": 1}


@pytest.mark.parametrize("change", ["edit", "delete"])
def test_a_file_changed_after_its_run_is_recomputed_by_submit_verify(
    tmp_path: Path, change: str
) -> None:
    flow, run_dir = write(tmp_path, "stat"), tmp_path / "runs"
    submit_and_wait(flow, run_dir, "--count", "3")
    target = run_dir / "trimmed" / "S1.fq"
    if change == "edit":
        target.write_text("edited by hand\n")
    else:
        target.unlink()
    _, unverified = submit_and_wait(flow, run_dir, "--count", "3")
    assert counts(unverified)["trim"] == {"cached": 3}  # without --verify, files are not read
    _, verified = submit_and_wait(flow, run_dir, "--count", "3", "--verify")
    assert counts(verified) == {
        "samples": {"cached": 1},
        "trim": {"cached": 2, "done": 1},
        "merge": {"done": 1},
    }
    assert sorted(calls(run_dir, "trim")) == ["S0", "S1", "S1", "S2"]
    assert target.read_text() == "S1 0\n"
    # Status says how many cached outputs were stale, and why.
    trim = next(t for t in verified["tasks"] if t["task"] == "trim")
    reason = "file changed (size)" if change == "edit" else "file missing"
    assert trim["stale"] == {reason: 1}
    shown = cli(flow, "status", "--run-dir", str(run_dir), cwd=tmp_path)
    assert f"trim: 1 cached output(s) were stale and ran again ({reason}: 1)" in shown.stdout


def test_a_returned_path_to_nothing_fails_that_element_with_the_reason(tmp_path: Path) -> None:
    flow, run_dir = write(tmp_path, "stat"), tmp_path / "runs"
    _, status = submit_and_wait(flow, run_dir, "--count", "10")
    # S9 returns the path of a file it removed: only that element fails, and says why.
    assert counts(status)["trim"] == {"done": 9, "failed": 1}
    failure = next(f for f in status["failures"] if f["task"] == "trim")
    assert "S9.fq" in json.dumps(failure)
    assert "nothing is there" in json.dumps(failure)


def test_retry_recomputes_a_stale_upstream_file_and_only_what_depends_on_it(
    tmp_path: Path,
) -> None:
    flow, run_dir = write(tmp_path, "stat"), tmp_path / "runs"
    (run_dir).mkdir()
    (run_dir / "merge.fail").write_text("")
    run_id, first = submit_and_wait(flow, run_dir, "--count", "4")
    assert counts(first)["merge"] == {"failed": 1}
    (run_dir / "merge.fail").unlink()
    (run_dir / "trimmed" / "S2.fq").write_text("changed by hand\n")
    retried = cli(flow, "retry", run_id, "--run-dir", str(run_dir), cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert wait_for_end(flow, run_dir, run_id) == "succeeded"
    # trim S2 was stale and ran again, then merge; no other element ran twice.
    assert sorted(calls(run_dir, "trim")) == ["S0", "S1", "S2", "S2", "S3"]
    assert calls(run_dir, "merge") == ["4", "4"]
    assert (run_dir / "trimmed" / "S2.fq").read_text() == "S2 0\n"


def wait_for_end(flow: Path, run_dir: Path, run_id: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        shown = cli(flow, "status", run_id, "--run-dir", str(run_dir), "--json", cwd=flow.parent)
        state = str(json.loads(shown.stdout)["state"])
        if state != "running":
            return state
        time.sleep(0.3)
    return "running"


INPUT_FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("inputs")


def log(run_dir: Path, task: str, what: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write(what + "\\n")


@wf.job()
def samples(count: Annotated[int, Param(help="samples")] = 2) -> list[str]:
    return [f"S{i}" for i in range(count)]


@wf.array_job()
def align(
    sample: Annotated[str, Result(step="samples")],
    reference: Annotated[Path, Param(help="Reference genome")],
    run_dir: RunDir = RunDir(),
) -> str:
    log(run_dir, "align", sample)
    return sample + ":" + reference.read_text().strip()[:1]


@wf.job()
def report(
    lines: Annotated[list[str], Result(step="align")],
    outdir: Annotated[Path, Param(help="Where to write", output=True)] = Path("out"),
    run_dir: RunDir = RunDir(),
) -> Path:
    log(run_dir, "report", str(outdir))
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "report.txt").write_text("\\n".join(lines))
    return outdir / "report.txt"


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def test_an_input_file_edited_in_place_reruns_the_tasks_that_declare_it(tmp_path: Path) -> None:
    flow = tmp_path / "inputs_flow.py"
    flow.write_text(textwrap.dedent(INPUT_FLOW))
    run_dir, reference = tmp_path / "runs", tmp_path / "genome.fa"
    reference.write_text("ACGT\n")
    submit_and_wait(flow, run_dir, "--reference", "genome.fa")
    reference.write_text("AGGT\n")  # same first letter: align's outputs stay the same
    _, edited = submit_and_wait(flow, run_dir, "--reference", "genome.fa")
    assert counts(edited) == {
        "samples": {"cached": 1},
        "align": {"done": 2},
        "report": {"cached": 1},
    }
    assert sorted(calls(run_dir, "align")) == ["S0", "S0", "S1", "S1"]
    _, same = submit_and_wait(flow, run_dir, "--reference", str(reference))
    assert counts(same)["align"] == {"cached": 2}  # relative or absolute: the same file
    (tmp_path / "sub").mkdir()
    done = cli(flow, "submit", "--run-dir", str(run_dir), "--reference", "../genome.fa",
               "--wait", cwd=tmp_path / "sub")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(calls(run_dir, "align")) == ["S0", "S0", "S1", "S1"]  # ../ is normalised


def test_a_missing_input_path_is_one_line_at_submit_and_writes_nothing(tmp_path: Path) -> None:
    flow = tmp_path / "inputs_flow.py"
    flow.write_text(textwrap.dedent(INPUT_FLOW))
    run_dir = tmp_path / "runs"
    done = cli(flow, "submit", "--run-dir", str(run_dir), "--reference", "nope.fa", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "--reference" in done.stderr
    assert "nope.fa" in done.stderr
    assert "Param(output=True)" in done.stderr
    assert not run_dir.exists()


def test_a_relative_output_path_means_the_folder_submit_ran_in(tmp_path: Path) -> None:
    flow = tmp_path / "inputs_flow.py"
    flow.write_text(textwrap.dedent(INPUT_FLOW))
    run_dir = tmp_path / "runs"
    (tmp_path / "genome.fa").write_text("ACGT\n")
    for folder in (tmp_path / "one", tmp_path / "two"):
        folder.mkdir()
        done = cli(
            flow, "submit", "--run-dir", str(run_dir), "--wait", "--outdir", "rel_out",
            "--reference", str(tmp_path / "genome.fa"), cwd=folder,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (folder / "rel_out" / "report.txt").read_text() == "S0:A\nS1:A"
    assert calls(run_dir, "report") == [
        str(tmp_path / "one" / "rel_out"),
        str(tmp_path / "two" / "rel_out"),
    ]


def test_a_str_parameter_that_names_a_folder_is_warned_of_at_submit(tmp_path: Path) -> None:
    flow = tmp_path / "strdir_flow.py"
    flow.write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from typing import Annotated

            from reflow import Param, Workflow

            wf = Workflow("strdir")


            @wf.job()
            def total(data_dir: Annotated[str, Param(help="folder of numbers")]) -> int:
                return sum(int(p.read_text()) for p in sorted(Path(data_dir).glob("*.txt")))


            if __name__ == "__main__":
                raise SystemExit(wf.cli())
            """
        )
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("1\n")
    run_dir = str(tmp_path / "runs")
    done = cli(flow, "submit", "--run-dir", run_dir, "--data-dir", "data", "--wait", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    warning = (
        "warning: --data-dir 'data' names a folder, but is a str: changing what is in it"
        " reruns nothing. Annotate the parameter as Path to make it an input (Path with"
        " Param(output=True) where the workflow writes)\n"
    )
    assert warning in done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    kept = cli(flow, "status", run_id, "--run-dir", run_dir, "--json", cwd=tmp_path)
    assert json.loads(kept.stdout)["warnings"] == [warning.rstrip("\n")]  # kept with the run
    elsewhere = cli(flow, "submit", "--run-dir", run_dir, "--data-dir", "nothing-here",
                    "--wait", cwd=tmp_path)  # fmt: skip
    assert "warning" not in elsewhere.stderr  # a str that names no file is only a str
    for odd in ("x" * 300, "~nosuchuser/x"):  # no file name: never a warning, nor an error
        done = cli(flow, "submit", "--run-dir", run_dir, "--data-dir", odd, "--wait", cwd=tmp_path)
        assert "submitted run " in done.stdout, done.stderr  # the task may fail, not submit
        assert "warning" not in done.stderr
        assert "Traceback" not in done.stderr
