"""A catalogue of bad inputs: each is one clear line, exit code 2, and changes nothing.

Flow definitions, command-line arguments, ``submit()`` calls, config files, environment
variables and run directories. Every case must give exactly one line that names the problem
(``says``) and the fix (``fix``), exit code 2 from the CLI, no traceback, and leave every
file of the run directory (and around it) as it was. Errors found by the argument parser
(``argparse=True``) end in the command's help to read (``see: ... submit --help``).

To add a case, append a ``Case`` to ``CASES``: a CLI ``argv`` (run in-process through the
parameter-types flow's ``run_cli``, or as a flow script with ``script=True``) or a Python
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
from reflow.definition.errors import DefinitionError, ReflowError, StoreError
from tests.flows.demo_steps import wf as demo_wf
from tests.flows.param_types import wf as params_wf
from tests.reliability.catalogue_support import (
    BAD_FLOW_SCRIPT,
    DROP,
    GOOD_FLOW_SCRIPT,
    PARAMS,
    Case,
    Ctx,
    after_unknown,
    array_without_fan_out,
    bad_default,
    bad_mem,
    bad_short_flag,
    bad_time,
    break_manifest,
    config,
    cycle,
    damage_store,
    damaged_other,
    define,
    duplicate,
    empty_store,
    env_bad_name,
    foreign_sqlite,
    include_flow,
    newer_store,
    no_annotation,
    none_default_without_none,
    partition_with_space,
    py_submit,
    reserved_flag,
    schema,
    setup_line_break,
    submit,
    type_mismatch,
    unknown_step,
    unsupported_type,
    zero_cpus,
)
from tests.reliability.processes import wait_for_workers

# Definition errors whose message names no fix, or a wrong one: reflow/definition/ (resources.py,
# graph.py, spec.py) is outside this suite's edit scope, so they are recorded, strictly.
CASES: list[Case] = [
    # The command line of a flow file.
    Case(id="cli-unknown-command", argv=("launch",), argparse=True, says=("invalid choice",)),
    Case(id="cli-missing-required", argv=("submit", "--run-dir", "{root}", "--years", "1"),
         argparse=True, says=("required", "--name")),
    Case(id="cli-bad-int", argv=submit("--count", "three"), argparse=True,
         says=("--count", "invalid int value", "three")),
    Case(id="cli-bad-choice", argv=submit("--model", "gfs"), argparse=True,
         says=("--model", "invalid choice", "gfs")),
    Case(id="cli-bad-int-choice", argv=submit("--level", "7"), argparse=True, says=("--level",)),
    Case(id="cli-bad-list-item", argv=submit("--years", "2020", "twenty"), argparse=True,
         says=("--years", "twenty")),
    Case(id="cli-unknown-flag", argv=submit("--modle", "era5"), argparse=True,
         says=("unrecognized arguments", "--modle"),
         fix=('did you mean "--model"', "param_types.py submit --help")),
    Case(id="cli-unknown-flag-and-missing-required", argv=("submit", "--run-dir", "{root}",
         "--bogus"), argparse=True, says=("unrecognized arguments: --bogus",),
         fix=("; see: python param_types.py submit --help",), never=("required",)),
    Case(id="cli-abbreviated-flag", argv=submit("--mod", "era5"), argparse=True,
         says=("unrecognized arguments", "--mod"), fix=("submit --help",)),
    Case(id="cli-abbreviated-run-dir", argv=("status", "--run", "{root}"), argparse=True,
         says=("unrecognized arguments", "--run"), fix=("status --help",)),
    Case(id="cli-nan-float", argv=submit("--ratio", "nan"), argparse=True,
         says=("--ratio", "'nan' is not a finite number"), fix=("submit --help",)),
    Case(id="cli-inf-float", argv=submit("--ratio=-inf"), argparse=True,
         says=("--ratio", "'-inf' is not a finite number"), fix=("submit --help",)),
    Case(id="cli-none-for-a-required-int", argv=submit("--count", "none"), argparse=True,
         says=("--count", "invalid int value: 'none'")),
    Case(id="cli-bad-dag-format", argv=("dag", "--format", "jpg"), argparse=True,
         says=("jpg", "invalid choice")),
    Case(id="cli-logs-bad-index", argv=("logs", "{run_id}", "convert", "first"), argparse=True,
         says=("invalid int value",)),
    Case(id="cli-cancel-without-run-id", argv=("cancel", "--run-dir", "{root}"), argparse=True,
         says=("RUN_ID",)),
    Case(id="cli-force-task-unknown", argv=submit("--force-task", "ingset"),
         says=("ingset", "names no task"), fix=('did you mean "ingest"',)),
    Case(id="cli-run-dir-is-a-file", argv=("submit", "--run-dir", "{file}", *PARAMS),
         says=("is a file",), fix=("choose a directory",)),
    Case(id="cli-no-run-dir", argv=("submit", *PARAMS), says=("no run directory given",),
         fix=("--run-dir",)),
    Case(id="cli-status-unknown-run", argv=("status", "nosuch", "--run-dir", "{root}"),
         says=("no run 'nosuch'",),
         fix=("; list the runs: python param_types.py runs --run-dir {root}",)),
    Case(id="cli-watch-unknown-run", argv=("watch", "nosuch", "--run-dir", "{root}"),
         says=("no run 'nosuch'",),
         fix=("; list the runs: python param_types.py runs --run-dir {root}",)),
    Case(id="cli-status-misspelt-run", argv=("status", "{run_id}x", "--run-dir", "{root}"),
         says=("no run",), fix=("did you mean",)),
    Case(id="cli-cancel-unknown-task", argv=("cancel", "{run_id}", "--task", "convrt",
         "--run-dir", "{root}"), says=("convrt",), fix=('did you mean "convert"',)),
    Case(id="cli-retry-unknown-task", argv=("retry", "{run_id}", "--task", "finalise",
         "--run-dir", "{root}"), says=("finalise",), fix=('did you mean "finalize"',)),
    Case(id="cli-retry-unknown-run", argv=("retry", "nosuch", "--run-dir", "{root}"),
         says=("no run 'nosuch'",),
         fix=("; list the runs: python param_types.py runs --run-dir {root}",)),
    Case(id="cli-retry-set-unknown-task", argv=("retry", "{run_id}", "--set", "convrt.mem=1G",
         "--run-dir", "{root}"), says=("convrt", "names no task"),
         fix=('did you mean "convert"',)),
    Case(id="cli-retry-set-bad-mem", argv=("retry", "{run_id}", "--set", "convert.mem=lots",
         "--run-dir", "{root}"), says=("convert.mem='lots'", "not a memory size"),
         fix=('e.g. "4G"',)),
    Case(id="cli-retry-set-unknown-option", argv=("retry", "{run_id}", "--set",
         "convert.memory=1G", "--run-dir", "{root}"), says=("memory", "not a resource option"),
         fix=('did you mean "mem"',)),
    Case(id="cli-retry-python-missing", argv=("retry", "{run_id}", "--run-dir", "{root}"),
         env={"REFLOW_PYTHON": "{base}/python3.99"}, says=("python3.99", "REFLOW_PYTHON",
         "does not exist"), fix=("point it at a python3",)),
    Case(id="cli-retry-set-not-an-assignment", argv=("retry", "{run_id}", "--set", "x",
         "--run-dir", "{root}"), says=("'x'", "not TASK.OPTION=VALUE"),
         fix=("--set convert.mem=8G",)),
    Case(id="cli-logs-unknown-task", argv=("logs", "{run_id}", "nosuch", "--run-dir", "{root}"),
         says=("no instances of task 'nosuch'",), fix=("convert",)),
    Case(id="cli-logs-negative-tail", argv=("logs", "{run_id}", "convert", "1", "--tail", "-3",
         "--run-dir", "{root}"), argparse=True,
         says=("argument --tail: '-3' is not a number of lines",),
         fix=("give 0 or more", "; see: python param_types.py logs --help")),
    Case(id="cli-logs-index-out-of-range", argv=("logs", "{run_id}", "convert", "99",
         "--run-dir", "{root}"), says=("no element 99",), fix=("elements are 0 to 1",)),
    # Run directories.
    Case(id="rd-missing", argv=("status", "--run-dir", "{missing}"),
         says=("not a reflow run directory",), fix=("--run-dir",)),
    Case(id="rd-not-a-run-directory", argv=("runs", "--run-dir", "{empty}"),
         says=("not a reflow run directory",), fix=("--run-dir",)),
    Case(id="rd-a-file", argv=("status", "--run-dir", "{file}"), says=("is a file",),
         fix=("choose a directory",)),
    Case(id="rd-newer-schema-status", argv=("status", "--run-dir", "{root}"),
         setup=schema("99"), says=("schema version 99",), fix=("upgrade reflow",)),
    Case(id="rd-newer-schema-submit", argv=submit(), setup=schema("99"),
         says=("schema version 99", "{root}"), fix=("upgrade reflow",)),
    Case(id="rd-newer-schema-local-submit", argv=submit(), setup=schema("99"),
         env={"REFLOW_MODE": "local"}, says=("schema version 99", "{root}"),
         fix=("upgrade reflow",)),
    Case(id="rd-damaged-store-submit", argv=submit(), setup=damage_store,
         says=("damaged", "{root}"), fix=("restore it",)),
    Case(id="rd-schema-not-a-number", argv=("runs", "--run-dir", "{root}"),
         setup=schema("two"), says=("not a reflow store",), fix=("--run-dir",)),
    Case(id="rd-damaged-store", argv=("status", "--run-dir", "{root}"), setup=damage_store,
         says=("damaged",), fix=("restore it",)),
    Case(id="rd-foreign-sqlite", argv=("runs", "--run-dir", "{base}/other"),
         setup=foreign_sqlite, says=("not a reflow store",), fix=("--run-dir",)),
    Case(id="rd-no-runs-yet", argv=("status", "--run-dir", "{base}/fresh"), setup=empty_store,
         says=("holds no runs yet",), fix=("submit one",)),
    Case(id="rd-manifest-missing", argv=("status", "{run_id}", "--run-dir", "{root}"),
         setup=break_manifest(None), says=("cannot read the run manifest",),
         fix=("--run-dir",)),
    Case(id="rd-manifest-not-json", argv=("cancel", "{run_id}", "--run-dir", "{root}"),
         setup=break_manifest("{not json"), says=("is not JSON",), fix=("submit",)),
    Case(id="rd-cache-from-missing", argv=submit("--cache-from", "{missing}"),
         says=("cache_from", "cannot take cached results from {missing}", "does not exist"),
         fix=("name a run directory",)),
    Case(id="rd-cache-from-a-file", argv=submit("--cache-from", "{file}"),
         says=("{file}", "is a file"), fix=("name a run directory",)),
    Case(id="rd-cache-from-not-a-run-directory", argv=submit("--cache-from", "{empty}"),
         says=("{empty}", "no reflow.sqlite"), fix=("name a run directory",)),
    Case(id="rd-cache-from-foreign-sqlite", argv=submit("--cache-from", "{base}/other"),
         setup=foreign_sqlite, says=("{base}/other", "not a reflow store"),
         fix=("name a run directory",)),
    Case(id="rd-cache-from-damaged", argv=submit("--cache-from", "{base}/damaged"),
         setup=damaged_other, says=("{base}/damaged", "damaged"), fix=("name a run directory",)),
    Case(id="rd-cache-from-newer-schema", argv=submit("--cache-from", "{base}/newer"),
         setup=newer_store, says=("{base}/newer", "schema version 99"), fix=("upgrade reflow",)),
    # The environment and the config file.
    Case(id="env-mem", argv=submit(), env={"REFLOW_MEM": "4GG"}, says=("REFLOW_MEM", "4GG")),
    Case(id="env-mode", argv=submit(), env={"REFLOW_MODE": "nope"},
         says=("REFLOW_MODE", "nope"), fix=("choose one of",)),
    Case(id="env-mode-misspelt", argv=submit(), env={"REFLOW_MODE": "locl"}, says=("locl",),
         fix=('did you mean "local"',)),
    Case(id="env-local-slots", argv=submit(), env={"REFLOW_LOCAL_SLOTS": "0"},
         says=("REFLOW_LOCAL_SLOTS", "positive int")),
    Case(id="env-time", argv=submit(), env={"REFLOW_TIME": "soon"}, says=("REFLOW_TIME", "soon")),
    Case(id="env-cpus", argv=submit(), env={"REFLOW_CPUS": "-2"}, says=("REFLOW_CPUS",)),
    Case(id="env-server-url", argv=submit(), env={"REFLOW_SERVER_URL": "ftp://x"},
         says=("REFLOW_SERVER_URL", "not an http(s) URL"), fix=("https://",)),
    Case(id="env-config-missing", argv=("runs", "--run-dir", "{root}"),
         env={"REFLOW_CONFIG": "{missing}/config.toml"}, says=("REFLOW_CONFIG", "does not exist"),
         fix=("create it",)),
    Case(id="env-run-dir-is-a-file", argv=("submit", *PARAMS), env={"REFLOW_RUN_DIR": "{file}"},
         says=("is a file",), fix=("choose a directory",)),
    Case(id="env-cache-from-missing", argv=submit(), env={"REFLOW_CACHE_FROM": "{missing}"},
         says=("{missing}", "does not exist", "(from REFLOW_CACHE_FROM)"),
         fix=("name a run directory",)),
    Case(id="cfg-cache-from-missing", argv=submit(),
         setup=config('[cache]\ncache_from = ["/no/such/run/dir"]'),
         says=("/no/such/run/dir", "does not exist", "[cache] cache_from)"),
         fix=("name a run directory",)),
    Case(id="cfg-cache-from-not-a-list", argv=submit(), setup=config("[cache]\ncache_from = 3"),
         says=("cache_from=3", "must be a list of run directories"), fix=("cache_from = [",)),
    Case(id="cfg-malformed", argv=submit(), setup=config("[executor\nmode = 'local'\n"),
         says=("not valid TOML", "line 1"), fix=("fix the syntax",)),
    Case(id="cfg-unknown-key", argv=submit(), setup=config('[executor]\nmodee = "local"'),
         says=("unknown key 'modee'",), fix=('did you mean "mode"',)),
    Case(id="cfg-unknown-section", argv=("runs", "--run-dir", "{root}"),
         setup=config('[executer]\nmode = "local"'), says=("unknown section 'executer'",),
         fix=('did you mean "executor"',)),
    Case(id="cfg-key-in-wrong-section", argv=submit(), setup=config('[defaults]\nmode = "x"'),
         says=("unknown key 'mode'",), fix=("belongs in [executor]",)),
    Case(id="cfg-wrong-type", argv=submit(), setup=config('[executor]\nlocal_slots = "two"'),
         says=("local_slots", "positive int")),
    Case(id="cfg-section-not-a-table", argv=submit(), setup=config("executor = 3"),
         says=("must be a table",), fix=("[executor]",)),
    Case(id="cfg-not-utf8", argv=submit(), setup=config(b"\xff\xfe[x]"), says=("not UTF-8",)),
    Case(id="cfg-bad-mem", argv=submit(), setup=config('[executor]\nmem = "lots"'),
         says=("mem", "lots")),
    Case(id="cfg-env-bad-name", argv=submit(), setup=config('[executor.env]\n"1X" = "v"'),
         says=("executor.env", "'1X'", "config.toml"), fix=("letters, digits",)),
    Case(id="cfg-setup-line-break", argv=submit(),
         setup=config('[executor]\nsetup = ["a\\nb"]'),
         says=("executor.setup", "line break"), fix=("one shell line each",)),
    # Python submit() calls.
    Case(id="py-unknown-param", call=py_submit(modle="era5"), says=("modle",),
         fix=('did you mean "model"',)),
    Case(id="py-missing-param", call=py_submit(name=DROP), says=("missing", "name"),
         fix=("--name",)),
    Case(id="py-wrong-type", call=py_submit(count="3"), says=("count='3'", "int")),
    Case(id="py-bad-choice", call=py_submit(model="gfs"), says=("model='gfs'",),
         fix=("choose one of 'era5', 'icon'",)),
    Case(id="py-list-of-wrong-items", call=py_submit(years=["2020"]), says=("years",)),
    Case(id="py-force-task-unknown", call=py_submit(force_tasks=["ingset"]), says=("ingset",),
         fix=('did you mean "ingest"',)),
    Case(id="py-cache-from-missing", call=py_submit(cache_from=["/no/such/run/dir"]),
         says=("cannot take cached results from /no/such/run/dir",),
         fix=("name a run directory",)),
    Case(id="py-cache-from-a-string", call=py_submit(cache_from="/scratch/run1"),
         says=("cache_from='/scratch/run1'", "must be a list"),
         fix=("cache_from=['/scratch/run1']",)),
    Case(id="py-run-dir-is-a-file", call=py_submit(run_dir="{file}"), says=("is a file",),
         fix=("choose a directory",)),
    Case(id="py-no-run-dir", call=py_submit(run_dir=None), says=("no run directory given",),
         fix=("run_dir=",)),
    Case(id="py-newer-schema", call=py_submit(), error=StoreError, setup=schema("99"),
         says=("schema version 99",), fix=("upgrade reflow",)),
    # Flow definitions.
    Case(id="def-unknown-step", call=define(unknown_step), error=DefinitionError,
         says=("prepar",), fix=('did you mean "prepare"',)),
    Case(id="def-bad-mem", call=define(bad_mem), error=DefinitionError, says=("4GG",)),
    Case(id="def-bad-time", call=define(bad_time), error=DefinitionError,
         says=("ten minutes",)),
    Case(id="def-zero-cpus", call=define(zero_cpus), error=DefinitionError, says=("cpus",)),
    Case(id="def-setup-line-break", call=define(setup_line_break), error=DefinitionError,
         says=("task(setup)", "line break"), fix=("one shell line each",)),
    Case(id="def-env-bad-name", call=define(env_bad_name), error=DefinitionError,
         says=("task(env)", "'A-B'"), fix=("letters, digits",)),
    Case(id="def-unsupported-type", call=define(unsupported_type), error=DefinitionError,
         says=("task(thing)", "unsupported type"), fix=("JSON-like types",)),
    Case(id="def-array-without-fan-out", call=define(array_without_fan_out),
         error=DefinitionError, says=("array task",), fix=("fan-out",)),
    Case(id="def-type-mismatch", call=define(type_mismatch), error=DefinitionError,
         says=("returns list[str]", "cannot feed int"), fix=("declare the parameter",)),
    Case(id="def-cycle", call=define(cycle), error=DefinitionError, says=("cycle",),
         fix=("remove one",)),
    Case(id="def-bad-default", call=define(bad_default), error=DefinitionError,
         says=("'three'",), fix=("make the default match",)),
    Case(id="def-bad-short-flag", call=define(bad_short_flag), error=DefinitionError,
         says=("short='count'",), fix=('short="-n"',),
         never=("cannot resolve the type annotations",)),
    Case(id="def-no-annotation", call=define(no_annotation), error=DefinitionError,
         says=("task(count)", "has no type annotation"), fix=("count: int = 3",)),
    Case(id="def-none-default-without-none", call=define(none_default_without_none),
         error=DefinitionError, says=("task(count)", "does not allow None"),
         fix=("count: int | None = None",)),
    Case(id="def-reserved-flag", call=define(reserved_flag), error=DefinitionError,
         says=("--run-dir",), fix=("rename",)),
    Case(id="def-after-unknown", call=define(after_unknown), error=DefinitionError,
         says=("setup",)),
    Case(id="def-partition-with-space", call=define(partition_with_space),
         error=DefinitionError, says=("partition",)),
    Case(id="def-duplicate-task", call=define(duplicate), error=DefinitionError,
         says=("task",)),
    Case(id="def-in-a-flow-script", script=True, argv=("dag",), says=("4GG",)),
    Case(id="def-include-unbound-step", script=True, flow=include_flow(""),
         argv=("submit", "--run-dir", "{root}"),
         says=("flow 'stats' uses the external step 'clean' (in summarize)",
               "neither bound nor a task here"),
         fix=('bind it: include(..., bind={{"clean": TASK}}) with TASK one of: raw_clean',)),
    Case(id="def-include-bind-to-unknown-task", script=True,
         flow=include_flow(', bind={"clean": "raw_clen"}'), argv=("submit", "--run-dir", "{root}"),
         says=("binds 'clean' to 'raw_clen', which is no task of 'analysis'",),
         fix=('did you mean "raw_clean"', "its tasks: raw_clean")),
    Case(id="def-include-binds-an-unused-name", script=True,
         flow=include_flow(', bind={"clen": "raw_clean"}'), argv=("dag",),
         says=("binds 'clen', which flow 'stats' does not use",),
         fix=('did you mean "clean"', "its external steps: clean")),
    Case(id="cli-flow-on-stdin", script=True, stdin=GOOD_FLOW_SCRIPT,
         argv=("submit", "--run-dir", "{root}"), env={"REFLOW_MODE": "local"},
         says=("read from standard input", "<stdin>"), fix=("save the script as a file",)),
    Case(id="cli-flow-on-stdin-dry-run", script=True, stdin=GOOD_FLOW_SCRIPT,
         argv=("submit", "--run-dir", "{base}/new"), says=("standard input",),
         fix=("python flow.py submit",)),
]  # fmt: skip


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
