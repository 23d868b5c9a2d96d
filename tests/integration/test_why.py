"""``why`` and edited code: every reason a run gives for an instance that was not cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.integration.flowfiles import calls, cli, counts, submit_and_wait, write_flow
from tests.integration.test_fingerprints import INPUT_FLOW

FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("why")


def log(run_dir: Path, task: str, what: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write(what + "\\n")


@wf.job(version=VERSION)
def prepare(count: Annotated[int, Param(help="items")] = 2) -> list[str]:
    return [f"f{i}" for i in range(count)]


@wf.array_job(cache=CACHE)
def convert(
    item: Annotated[str, Result(step="prepare")],
    scale: Annotated[int, Param(help="scale")] = 1,
    run_dir: RunDir = RunDir(),
) -> Path:
    BODY
    log(run_dir, "convert", item)
    path = run_dir / "out" / (item + ".txt")
    path.parent.mkdir(exist_ok=True)
    path.write_text(item * scale)
    return path


@wf.job()
def publish(
    paths: Annotated[list[Path], Result(step="convert")], run_dir: RunDir = RunDir()
) -> int:
    log(run_dir, "publish", str(len(paths)))
    return sum(len(p.read_text()) for p in paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def write(folder: Path, *, version: str = "1", cache: bool = True, body: str = "pass") -> Path:
    flow = folder / "why_flow.py"
    text = textwrap.dedent(FLOW).replace("VERSION", repr(version)).replace("CACHE", str(cache))
    flow.write_text(text.replace("BODY", body))
    return flow


def why(flow: Path, run_dir: Path, run_id: str) -> dict[str, set[tuple[str, str, int]]]:
    """``task -> {(reason, detail, count)}`` from ``why RUN --json``."""
    done = subprocess.run(
        [sys.executable, str(flow), "why", run_id, "--run-dir", str(run_dir), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=flow.parent,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    assert data["run_id"] == run_id
    return {
        t["task"]: {(r["reason"], r["detail"], r["count"]) for r in t["reasons"]}
        for t in data["tasks"]
    }


def test_why_names_the_reason_of_every_rerun(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs"
    flow = write(tmp_path)
    first, _ = submit_and_wait(flow, run_dir)
    first_run = "no earlier instance of this element in the run directory"
    assert why(flow, run_dir, first) == {
        "prepare": {("first run", first_run, 1)},
        "convert": {("first run", first_run, 2)},
        "publish": {("first run", first_run, 1)},
    }
    scaled, _ = submit_and_wait(flow, run_dir, "--scale", "2")
    reasons = why(flow, run_dir, scaled)
    assert reasons["convert"] == {("parameter", "--scale: 1 -> 2", 2)}
    out = run_dir / "out"
    named = f"convert: {out / 'f0.txt'} (size), {out / 'f1.txt'} (size)"
    assert reasons["publish"] == {("upstream file", named, 1)}  # every file publish read
    assert set(reasons) == {"convert", "publish"}  # prepare came from the cache

    bumped, _ = submit_and_wait(write(tmp_path, version="2"), run_dir, "--scale", "2")
    assert why(flow, run_dir, bumped) == {"prepare": {("version", "'1' -> '2'", 1)}}

    forced, _ = submit_and_wait(flow, run_dir, "--scale", "2", "--force-task", "publish")
    assert why(flow, run_dir, forced) == {"publish": {("forced", "--force-task publish", 1)}}

    uncached, _ = submit_and_wait(
        write(tmp_path, version="2", cache=False), run_dir, "--scale", "2"
    )
    assert why(flow, run_dir, uncached)["convert"] == {
        ("cache=False", "the task never uses the cache", 2)
    }


def test_why_after_a_retry_names_the_earlier_attempt_in_the_same_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs"
    body = 'if item == "f1" and (run_dir / "broken").exists(): raise ValueError("f1 is broken")'
    flow = write(tmp_path, body=body)
    (run_dir / "broken").parent.mkdir()
    (run_dir / "broken").write_text("")
    run_id, status = submit_and_wait(flow, run_dir)
    assert counts(status)["convert"] == {"done": 1, "failed": 1}
    (run_dir / "broken").unlink()
    (run_dir / "out" / "f0.txt").write_text("edited by hand")  # convert[0]'s output is stale
    done = cli(flow, "retry", run_id, "--run-dir", str(run_dir), "--wait", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # f0 ran again as stale, f1 as failed before (a failing call logs nothing)
    assert sorted(calls(run_dir, "convert")) == ["f0", "f0", "f1"]
    reasons = why(flow, run_dir, run_id)
    assert reasons["convert"] == {
        ("stale", "its earlier attempt in this run succeeded; this run found outputs of"
         " convert stale (file changed (size): 1)", 1),
        ("earlier attempt", "its earlier attempt in this run ended failed: exception", 1),
    }  # fmt: skip
    first_run = "no earlier instance of this element in the run directory"
    assert reasons["publish"] == {("first run", first_run, 1)}  # it never ran before


CHAIN_FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Result, RunDir, Workflow

wf = Workflow("chain")


@wf.job()
def items() -> list[str]:
    return ["a", "b"]


@wf.array_job()
def write(item: Annotated[str, Result(step="items")], run_dir: RunDir = RunDir()) -> Path:
    path = run_dir / f"{item}.txt"
    path.write_text(item)
    return path


@wf.array_job()
def read(path: Annotated[Path, Result(step="write")], run_dir: RunDir = RunDir()) -> str:
    if path.name == "b.txt" and (run_dir / "broken").exists():
        raise ValueError("b is broken")
    return path.read_text()


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def test_why_after_a_retry_names_an_upstream_output_found_stale(tmp_path: Path) -> None:
    flow = tmp_path / "chain_flow.py"
    flow.write_text(textwrap.dedent(CHAIN_FLOW))
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    (run_dir / "broken").write_text("")
    run_id, status = submit_and_wait(flow, run_dir)
    assert counts(status)["read"] == {"done": 1, "failed": 1}
    (run_dir / "broken").unlink()
    (run_dir / "a.txt").write_text("A, edited")  # write[0]'s output: stale at the retry
    done = cli(flow, "retry", run_id, "--run-dir", str(run_dir), "--wait", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    reasons = why(flow, run_dir, run_id)
    consumed = "its earlier attempt in this run succeeded; what it consumes changed"
    assert reasons["read"] == {
        ("upstream output", consumed, 1),  # read[0]: its input ran again
        ("earlier attempt", "its earlier attempt in this run ended failed: exception", 1),
    }


def submit(flow: Path, run_dir: Path, mode: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REFLOW_MODE": "local",
        "REFLOW_ON_CODE_CHANGE": mode,
        "XDG_CONFIG_HOME": str(flow.parent / "config"),
    }
    return subprocess.run(
        [sys.executable, str(flow), "submit", "--run-dir", str(run_dir), "--wait", *extra],
        capture_output=True,
        text=True,
        check=False,
        cwd=flow.parent,
        env=env,
    )


def test_edited_code_warns_and_reuses_or_reruns_and_formatting_does_neither(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "runs"
    assert submit(write(tmp_path), run_dir, "warn").returncode == 0
    # A comment, a docstring and reformatting are not a change of code.
    cosmetic = '"""Convert one item."""\n    # only a comment\n    pass  # still nothing'
    quiet = submit(write(tmp_path, body=cosmetic), run_dir, "warn")
    assert quiet.returncode == 0, quiet.stderr
    assert "warning" not in quiet.stderr
    assert sorted(calls(run_dir, "convert")) == ["f0", "f1"]
    edited = write(tmp_path, body="assert item")
    warned = submit(edited, run_dir, "warn")
    assert warned.returncode == 0, warned.stderr
    (line,) = [line for line in warned.stderr.splitlines() if line.startswith("warning")]
    assert "convert: its code changed; this run reuses 2 cached result(s) made by" in line
    assert "--force-task convert" in line
    assert len(calls(run_dir, "convert")) == 2  # reused: nothing reran
    ignored = submit(edited, run_dir, "ignore")
    assert "warning" not in ignored.stderr
    rerun = submit(edited, run_dir, "rerun")
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(calls(run_dir, "convert")) == ["f0", "f0", "f1", "f1"]
    run_id = rerun.stdout.split("submitted run ", 1)[1].split()[0]
    assert why(edited, run_dir, run_id)["convert"] == {
        ("code", 'on_code_change = "rerun" put the code hash into the identity', 2)
    }
    edited_again = write(tmp_path, body="assert item, item")
    rerun_again = submit(edited_again, run_dir, "rerun")
    run_id = rerun_again.stdout.split("submitted run ", 1)[1].split()[0]
    assert why(edited, run_dir, run_id)["convert"] == {
        ("code", "the code of convert() changed (its body or its code_deps)", 2)
    }
    assert len(calls(run_dir, "convert")) == 6
    _, again = submit_and_wait(edited, run_dir)  # warn again: the rerun results are current
    assert counts(again)["convert"] == {"cached": 2}


def test_why_names_an_upstream_output_and_an_edited_input_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs"
    submit_and_wait(write_flow(tmp_path), run_dir)
    # prepare's version 2 returns a new last item: only that convert element's input changed.
    bumped = write_flow(
        tmp_path, prepare_version="2", items_expression='f"item{i}" if i < 2 else "new"'
    )
    run_id, _ = submit_and_wait(bumped, run_dir)
    reasons = why(bumped, run_dir, run_id)
    assert reasons["convert"] == {("upstream output", "prepare's output changed", 1)}

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    flow = inputs / "inputs_flow.py"
    flow.write_text(textwrap.dedent(INPUT_FLOW))
    (inputs / "genome.fa").write_text("ACGT\n")
    submit_and_wait(flow, inputs / "runs", "--reference", "genome.fa")
    (inputs / "genome.fa").write_text("ACGTACGT\n")
    run_id, _ = submit_and_wait(flow, inputs / "runs", "--reference", "genome.fa")
    ((reason, detail, count),) = why(flow, inputs / "runs", run_id)["align"]
    assert (reason, count) == ("input file", 2)
    assert detail == f"--reference: {inputs / 'genome.fa'} (size)"


def test_the_code_warning_counts_only_results_this_run_may_reuse(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs"
    for scale in ("1", "2"):
        assert submit(write(tmp_path), run_dir, "warn", "--scale", scale).returncode == 0
    edited = write(tmp_path, body="assert item")
    warned = submit(edited, run_dir, "warn", "--scale", "1")
    assert "this run reuses 2 cached result(s)" in warned.stderr  # not the --scale 2 ones
    forced = submit(edited, run_dir, "warn", "--scale", "1", "--force-task", "convert")
    assert forced.returncode == 0, forced.stderr
    again = submit(edited, run_dir, "warn", "--scale", "1")
    assert "warning" not in again.stderr  # what the warning advised cleared it


GATHER_FLOW = """
from pathlib import Path
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("gather")


def log(run_dir: Path, task: str, what: str) -> None:
    with (run_dir / f"{task}.calls").open("a") as handle:
        handle.write(what + "\\n")


@wf.job()
def samples(lengths: Annotated[str, Param(help="read length per sample")] = "1,1") -> list[str]:
    return [f"S{i}:{n}" for i, n in enumerate(lengths.split(","))]


@wf.array_job()
def trim(
    sample: Annotated[str, Result(step="samples")],
    gc: Annotated[int, Param(help="GC threshold")] = 1,
    run_dir: RunDir = RunDir(),
) -> Path:
    name, length = sample.split(":")
    log(run_dir, "trim", name)
    out = run_dir / "trimmed" / f"{name}.fq"
    out.parent.mkdir(exist_ok=True)
    out.write_text("A" * int(length) * gc)
    return out


@wf.array_job()
def qc(path: Annotated[Path, Result(step="trim")], run_dir: RunDir = RunDir()) -> int:
    log(run_dir, "qc", path.stem)
    return len(path.read_text())


@wf.job()
def merge(paths: Annotated[list[Path], Result(step="trim")], run_dir: RunDir = RunDir()) -> int:
    log(run_dir, "merge", str(len(paths)))
    return sum(len(path.read_text()) for path in paths)


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


def test_why_names_every_file_a_gather_read_that_changed(tmp_path: Path) -> None:
    flow, run_dir = tmp_path / "gather_flow.py", tmp_path / "runs"
    flow.write_text(textwrap.dedent(GATHER_FLOW))
    fq = {name: run_dir / "trimmed" / f"{name}.fq" for name in ("S0", "S1", "S2")}
    submit_and_wait(flow, run_dir)

    # Only the second sample's input changes: trim rewrites S1.fq alone, merge reads both.
    second, status = submit_and_wait(flow, run_dir, "--lengths", "1,2")
    assert counts(status)["trim"] == {"cached": 1, "done": 1}
    assert sorted(calls(run_dir, "trim")) == ["S0", "S1", "S1"]
    assert calls(run_dir, "merge") == ["2", "2"]
    reasons = why(flow, run_dir, second)
    assert reasons["merge"] == {("upstream file", f"trim: {fq['S1']} (size)", 1)}
    assert reasons["qc"] == {("upstream file", f"trim: {fq['S1']} (size)", 1)}  # 1:1: qc[1]

    # A parameter of trim rewrites both files: merge names both, qc[0] and qc[1] one each.
    both, _ = submit_and_wait(flow, run_dir, "--lengths", "1,2", "--gc", "2")
    assert calls(run_dir, "merge") == ["2", "2", "2"]
    reasons = why(flow, run_dir, both)
    assert reasons["trim"] == {("parameter", "--gc: 1 -> 2", 2)}
    named = f"trim: {fq['S0']} (size), {fq['S1']} (size)"
    assert reasons["merge"] == {("upstream file", named, 1)}
    assert reasons["qc"] == {("upstream file", named, 2)}

    # A new sample: merge names the file it reads now; qc's new element never ran before.
    more, _ = submit_and_wait(flow, run_dir, "--lengths", "1,2,1", "--gc", "2")
    reasons = why(flow, run_dir, more)
    assert reasons["merge"] == {("upstream file", f"trim: {fq['S2']} (new)", 1)}
    assert {reason for reason, _detail, _count in reasons["qc"]} == {"first run"}


def test_why_counts_many_changed_files_and_names_a_few(tmp_path: Path) -> None:
    flow, run_dir = tmp_path / "gather_flow.py", tmp_path / "runs"
    flow.write_text(textwrap.dedent(GATHER_FLOW))
    lengths = ",".join(["1"] * 7)
    first, _ = submit_and_wait(flow, run_dir, "--lengths", lengths)
    run_id, _ = submit_and_wait(flow, run_dir, "--lengths", lengths, "--gc", "3")
    reasons = why(flow, run_dir, run_id)
    shown = ", ".join(f"{run_dir / 'trimmed' / f'S{i}.fq'} (size)" for i in range(3))
    many = f"trim: 7 files, e.g. {shown}"
    assert reasons["merge"] == {("upstream file", many, 1)}
    assert reasons["qc"] == {("upstream file", many, 7)}  # one line for seven elements
    done = subprocess.run(
        [sys.executable, str(flow), "why", run_id, "--run-dir", str(run_dir), "--task", "qc"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert done.stdout.splitlines() == [
        f"run {run_id}: 7 instance(s) not taken from the cache",
        f"  qc       7  upstream file: {many}  (compared with {first})",
    ]
