"""``retry`` takes what the user fixed since submit: the flow file's resources, the config, --set.

Runs go through the flow file's CLI and the ``reflow`` console script as subprocesses on the
local executor; what the next submission asks for is read from the run's manifest, which
every dispatcher turn submits from (the Slurm tests read it from the batch scripts).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reflow.definition.errors import UsageError
from reflow.run import Run
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState

DEADLINE_S = 120

FLOW = """
import sys
import time
from typing import Annotated

from reflow import Param, Result, RunDir, Workflow

wf = Workflow("refix")


@wf.job()
def items(count: Annotated[int, Param(help="items")] = 2) -> list[int]:
    return list(range(count))


@wf.array_job(mem="256M", time="00:01:00", version="1")
def convert(item: Annotated[int, Result(step="items")], run_dir: RunDir = RunDir()) -> int:
    with (run_dir / "convert.calls").open("a") as log:
        log.write(f"{item} {sys.executable}\\n")
    if item == 1 and not (run_dir / "fixed").exists():
        raise RuntimeError("not fixed yet")
    while item == 0 and (run_dir / "hold").exists():
        time.sleep(0.05)
    return item * 10


if __name__ == "__main__":
    raise SystemExit(wf.cli())
"""


@dataclass(frozen=True)
class FailedRun:
    folder: Path
    flow: Path
    run_dir: Path
    run_id: str

    @property
    def manifest(self) -> Path:
        return RunLayout(self.run_dir, self.run_id).manifest

    def resources(self, task: str = "convert") -> dict[str, Any]:
        description = json.loads(self.manifest.read_text())["description"]
        (found,) = (t["resources"] for t in description["tasks"] if t["name"] == task)
        return dict(found)

    def calls(self) -> Counter[int]:
        text = (self.run_dir / "convert.calls").read_text()
        return Counter(int(line.split()[0]) for line in text.splitlines())


def environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFLOW_")}
    env.update(REFLOW_MODE="local", XDG_CONFIG_HOME=str(folder / "config"))
    return env


def flow_cli(run: FailedRun, *args: str) -> subprocess.CompletedProcess[str]:
    """``python flow.py ARGS --run-dir D`` in the run's folder, as a user would type it."""
    return subprocess.run(
        [sys.executable, str(run.flow), *args, "--run-dir", str(run.run_dir)],
        cwd=run.folder,
        env=environment(run.folder),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )


def console(run: FailedRun, *args: str) -> subprocess.CompletedProcess[str]:
    """``reflow ARGS --run-dir D`` from another folder."""
    beside = Path(sys.executable).parent / "reflow"
    script = str(beside) if beside.exists() else shutil.which("reflow")
    assert script, "the reflow console script is not installed"
    return subprocess.run(
        [script, *args, "--run-dir", str(run.run_dir)],
        cwd=run.folder.parent,
        env=environment(run.folder),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )


def write_config(folder: Path, text: str) -> Path:
    path = folder / "config" / "reflow" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def failed_run(folder: Path, *, wait: bool = True) -> FailedRun:
    """Submit the flow in ``folder``; its element 1 of ``convert`` fails until ``fixed``.

    Without ``wait`` the run is left running, and element 0 waits while ``hold`` exists.
    """
    folder.mkdir(parents=True, exist_ok=True)
    flow = folder / "refix_flow.py"
    flow.write_text(FLOW)
    run = FailedRun(folder, flow, folder / "runs", "")
    if not wait:
        run.run_dir.mkdir()
        (run.run_dir / "hold").touch()
    done = flow_cli(run, "submit", *(["--wait"] if wait else []))
    assert done.returncode == (1 if wait else 0), done.stdout + done.stderr
    run_id = done.stdout.split("submitted run ", 1)[1].split()[0]
    return FailedRun(folder, flow, folder / "runs", run_id)


def asked(run: FailedRun, task: str = "convert") -> dict[str, str]:
    """What ``status --json`` says the task's next submissions ask for."""
    done = flow_cli(run, "status", run.run_id, "--json")
    assert done.returncode == 0, done.stderr
    (entry,) = (t for t in json.loads(done.stdout)["tasks"] if t["task"] == task)
    return dict(entry["resources"])


def failed_in_store(run: FailedRun) -> list[int]:
    with SqliteStore.open(run.run_dir) as store:
        return [row.element for row in store.instances_in(run.run_id, [InstanceState.FAILED])]


def edit_flow(run: FailedRun, old: str, new: str) -> None:
    text = run.flow.read_text()
    assert old in text
    run.flow.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> FailedRun:
    """A failed run for the tests that only look (``--dry-run``) or are refused."""
    return failed_run(tmp_path_factory.mktemp("shared"))


def test_mem_raised_in_the_flow_file_is_what_the_retry_asks_for_and_the_run_succeeds(
    tmp_path: Path,
) -> None:
    run = failed_run(tmp_path)
    assert asked(run) == {"mem": "256M", "time": "00:01:00"}
    edit_flow(run, 'mem="256M"', 'mem="1G"')
    (run.run_dir / "fixed").touch()

    done = flow_cli(run, "retry", run.run_id, "--wait")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "convert: mem 256M -> 1G (flow file)"
    assert "time" not in done.stdout.splitlines()[1]
    assert done.stderr == ""
    assert asked(run) == {"mem": "1G", "time": "00:01:00"}
    assert run.calls() == Counter({0: 1, 1: 2})
    log = RunLayout(run.run_dir, run.run_id).dispatcher_log.read_text()
    assert "retry: convert: mem 256M -> 1G (flow file)" in log


def test_set_and_a_fixed_config_python_are_taken_by_retry_and_set_holds_later(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, '[executor]\npython = "/nowhere/bin/python3"\n')
    run = failed_run(tmp_path)
    before = run.manifest.read_bytes()
    write_config(tmp_path, f'[executor]\npython = "{sys.executable}"\n')
    (run.run_dir / "fixed").touch()

    looked = console(run, "retry", run.run_id, "--set", "convert.time=02:00:00", "--dry-run")
    assert looked.returncode == 0, looked.stderr
    assert run.manifest.read_bytes() == before
    done = console(run, "retry", run.run_id, "--set", "convert.time=02:00:00", "--wait")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == looked.stdout.splitlines()[:2]
    assert lines[:2] == [
        "convert: time 00:01:00 -> 02:00:00 (--set)",
        f"python /nowhere/bin/python3 -> {sys.executable} ([executor] python in {config})",
    ]
    assert run.resources()["time_s"] == 7200
    assert json.loads(run.manifest.read_text())["python"] == sys.executable
    assert run.calls() == Counter({0: 1, 1: 1})  # the bad interpreter ran nothing at first
    # the override holds over the flow file's time="00:01:00" in later retries
    again = console(run, "retry", run.run_id, "--dry-run")
    assert again.stdout.splitlines() == [
        f"run {run.run_id}: dry run, nothing changed; 0 failed or cancelled instance(s)"
        " would run again"
    ]


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("nosuchtask.mem=1G", "--set: nosuchtask names no task of this run"),
        ("convert.mem=lots", "--set: convert.mem='lots' is not a memory size"),
        ("convert.color=red", "--set: convert.color: color is not a resource option"),
        ("x", "--set: 'x' is not TASK.OPTION=VALUE"),
        ("convert.time=5:00", "--set: convert.time='5:00' is not an unambiguous Slurm time"),
    ],
)
def test_a_bad_set_is_one_line_exit_2_and_changes_nothing(
    shared_run: FailedRun, item: str, says: str
) -> None:
    before = shared_run.manifest.read_bytes()
    done = console(shared_run, "retry", shared_run.run_id, "--set", item)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"error: {says}"), done.stderr
    assert done.stderr.count("\n") == 1
    assert shared_run.manifest.read_bytes() == before
    status = Run(shared_run.run_dir, shared_run.run_id).status(as_dict=True)
    assert status is not None
    assert status["state"] == "failed"


def test_a_flow_file_changed_in_identity_gives_only_its_resources_with_a_note(
    shared_run: FailedRun,
) -> None:
    original = shared_run.flow.read_text()
    try:
        edit_flow(shared_run, 'mem="256M", time="00:01:00", version="1"', 'mem="2G", version="2"')
        done = flow_cli(shared_run, "retry", shared_run.run_id, "--dry-run")
    finally:
        shared_run.flow.write_text(original)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "convert: mem 256M -> 2G (flow file)",
        "convert: time 00:01:00 -> unset (flow file)",
    ]
    (note,) = done.stderr.splitlines()
    assert note.startswith(f"note: {shared_run.flow} changed convert (version) since submit;")
    assert "takes only resources from the flow file" in note


@pytest.mark.parametrize(
    ("damage", "cause"), [("broken", "SyntaxError"), ("gone", "FileNotFoundError")]
)
def test_a_flow_file_that_no_longer_loads_keeps_the_recorded_options_and_takes_set(
    shared_run: FailedRun, damage: str, cause: str
) -> None:
    original = shared_run.flow.read_text()
    try:
        if damage == "gone":
            shared_run.flow.unlink()
        else:
            shared_run.flow.write_text(original + "\ndef broken(:\n")
        done = console(
            shared_run, "retry", shared_run.run_id, "--set", "convert.cpus=2", "--dry-run"
        )
    finally:
        shared_run.flow.write_text(original)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "convert: cpus unset -> 2 (--set)"
    (note,) = done.stderr.splitlines()
    assert note.startswith(f"note: {shared_run.flow} does not load (cannot import")
    assert f"{cause}:" in note
    assert note.endswith("retry keeps the task options the run recorded")


def test_run_retry_takes_resources_and_returns_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = failed_run(tmp_path)
    for key, value in environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    handle = Run(run.run_dir, run.run_id)
    before = run.manifest.read_bytes()
    with pytest.raises(UsageError) as refused:
        handle.retry(resources={"convert": {"mem": "8G", "gpus": 0}})
    assert (refused.value.param, refused.value.value) == ("resources", 0)
    assert run.manifest.read_bytes() == before

    (run.run_dir / "fixed").touch()
    retried = handle.retry(resources={"convert": {"mem": "8G"}})

    assert retried == 1
    assert retried.resumed
    assert [(c.task, c.option, c.old, c.new, c.source) for c in retried.changes] == [
        ("convert", "mem", "256M", "8G", "resources=")
    ]
    assert retried.notes == ()
    assert handle.wait(timeout=DEADLINE_S) == "succeeded"
    assert run.resources()["mem_mb"] == 8192
    assert run.calls() == Counter({0: 1, 1: 2})


def test_a_run_still_going_takes_the_retrys_interpreter_for_what_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = failed_run(tmp_path, wait=False)
    for key, value in environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    handle = Run(run.run_dir, run.run_id)
    deadline = time.monotonic() + DEADLINE_S
    while not failed_in_store(run):  # recorded, not only arrived: retry reads the store
        assert time.monotonic() < deadline, "element 1 did not fail"
        time.sleep(0.1)
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    write_config(tmp_path, f'[executor]\npython = "{python}"\n')
    (run.run_dir / "fixed").touch()

    retried = handle.retry()  # the run's dispatcher is still alive, waiting for element 0
    (run.run_dir / "hold").unlink()

    assert [(c.option, c.new) for c in retried.changes] == [("python", str(python))]
    assert handle.wait(timeout=DEADLINE_S) == "succeeded"
    lines = sorted((run.run_dir / "convert.calls").read_text().splitlines())
    assert lines == [f"0 {sys.executable}", f"1 {sys.executable}", f"1 {python}"]


def test_a_notebook_that_imported_the_flow_gets_the_edited_file_on_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "nbpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    flow_file = package / "nbflow.py"
    flow_file.write_text(FLOW)
    for key, value in environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = importlib.import_module("nbpkg.nbflow")
    try:
        run = imported.wf.submit(run_dir=tmp_path / "runs")
        assert run.wait(timeout=DEADLINE_S) == "failed"
        flow_file.write_text(FLOW.replace('mem="256M"', 'mem="3G"'))
        (tmp_path / "runs" / "fixed").touch()

        retried = run.retry()

        assert [str(change) for change in retried.changes] == [
            "convert: mem 256M -> 3G (flow file)"
        ]
        assert sys.modules["nbpkg.nbflow"] is imported
        assert sys.modules["nbpkg"].nbflow is imported
        assert run.wait(timeout=DEADLINE_S) == "succeeded"
    finally:
        for name in ("nbpkg.nbflow", "nbpkg"):
            sys.modules.pop(name, None)
