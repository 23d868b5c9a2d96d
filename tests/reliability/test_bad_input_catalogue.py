"""A catalogue of bad inputs: each is one clear line, exit code 2, and changes nothing.

Flow definitions, command-line arguments, ``submit()`` calls, config files, environment
variables and run directories. Every case must give exactly one line that names the problem
(``says``) and the fix (``fix``), exit code 2 from the CLI, no traceback, and leave every
file of the run directory (and around it) as it was. Errors found by the argument parser
(``argparse=True``) end in the command's help to read (``see: ... submit --help``).

To add a case, append a ``Case`` to ``CASES`` (in ``catalogue_cases.py``): a CLI ``argv``
(run in-process through the parameter-types flow's ``run_cli``, or as a flow script with
``script=True``) or a Python
``call`` with the ``error`` type it must raise (``flow``: the flow script's text, when not the
broken one; ``stdin``: a flow script given to ``python -`` on standard input), an optional
``setup`` run before the snapshot, extra environment variables, and the words of the message
(``never``: words it must not hold). ``{root}`` (a copy of a run directory holding one failed
run), ``{run_id}``, ``{base}`` (the case's folder), ``{file}``, ``{empty}`` and ``{missing}``
in ``argv``, ``env``, ``says`` and ``fix`` are filled in per case. ``known`` records a known
defect as a strict xfail, so that its fix shows up as a failure to remove the mark.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reflow.cli import run_cli
from reflow.definition.errors import ReflowError
from tests.flows.demo_steps import wf as demo_wf
from tests.flows.param_types import wf as params_wf
from tests.reliability.catalogue_cases import CASES
from tests.reliability.catalogue_support import (
    BAD_FLOW_SCRIPT,
    Case,
    Ctx,
)
from tests.reliability.processes import wait_for_workers


def test_the_catalogue_is_large_and_its_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40
    kinds = {case.id.split("-")[0] for case in CASES}
    assert kinds == {"cli", "rd", "env", "cfg", "py", "def"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run directory with one failed run of the demo flow (convert[1] raises)."""
    root = tmp_path_factory.mktemp("pristine") / "runs"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REFLOW_MODE", "local")
        env.setenv("XDG_CONFIG_HOME", str(root.parent / "config"))
        run = demo_wf.submit(run_dir=root, count=2, fail_on="f1.nc")
        assert run.wait(timeout=120) == "failed"
    wait_for_workers(root)
    return root, run.run_id


@pytest.fixture
def ctx(pristine: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ctx:
    base = tmp_path / "case"
    shutil.copytree(pristine[0], base / "runs")
    (base / "a-file.txt").write_text("not a directory")
    (base / "empty").mkdir()
    (base / "empty" / "notes.txt").write_text("not a run directory")
    for name in [name for name in os.environ if name.startswith("REFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REFLOW_MODE", "dry-run")  # a case that wrongly passes submits nothing
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    return Ctx(
        base=base,
        root=base / "runs",
        run_id=pristine[1],
        config=base / "config" / "reflow" / "config.toml",
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``, with a digest of each file's bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_file()
        else "folder"
        for path in sorted(folder.rglob("*"))
    }


def error_line(stderr: str, case: Case) -> str:
    """The one error line of ``stderr``; a parser's error names the command's help."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    if case.argparse:
        assert lines[0].endswith(" --help"), stderr
        assert "; see: python " in lines[0], stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def run_case(case: Case, ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> str:
    """Run one case and return its error line."""
    if case.call is not None:
        with pytest.raises(case.error) as caught:
            case.call(ctx)
        error = caught.value
        assert isinstance(error, ReflowError)
        assert error.hint or error.suggestion, f"{case.id}: no fix in {error}"
        assert "\n" not in str(error)
        return str(error)
    assert case.argv is not None
    argv = [arg.format(**ctx.fields) for arg in case.argv]
    if case.script:
        script = ctx.base / "broken_flow.py"
        script.write_text(case.flow or BAD_FLOW_SCRIPT)
        command = [sys.executable, "-" if case.stdin else str(script), *argv]
        done = subprocess.run(
            command,
            input=case.stdin or None,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=ctx.base,
        )
        script.unlink()
        assert done.returncode == 2, done.stderr
        return error_line(done.stderr, case)
    capsys.readouterr()
    code = run_cli(params_wf, argv, out=io.StringIO())
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    line = error_line(stderr, case)
    assert "; " in line, f"{case.id}: no fix in {line}"
    return line


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=pytest.mark.xfail(reason=case.known, strict=True))
        if case.known
        else case
        for case in CASES
    ],
    ids=lambda case: case.id,
)
def test_bad_input_is_one_clear_line_and_changes_nothing(
    case: Case, ctx: Ctx, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.format(**ctx.fields))
    if case.setup is not None:
        case.setup(ctx)
    before = snapshot(ctx.base)
    line = run_case(case, ctx, capsys)
    for word in (*case.says, *case.fix):
        word = word.format(**ctx.fields)
        assert word in line, f"{case.id}: {word!r} not in {line!r}"
    for word in case.never:
        assert word not in line, f"{case.id}: {word!r} in {line!r}"
    assert snapshot(ctx.base) == before
