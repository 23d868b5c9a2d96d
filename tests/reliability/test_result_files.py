"""Bad result files: a worker killed before its rename, and truncated or foreign files.

Every element of ``hold_steps.work`` blocks on a marker file; the test kills the dispatcher
and the workers, plants files in the results folder, and runs a real dispatcher turn. A
planted temp file is never ingested (its element runs again); every malformed or foreign
file fails its element with a one-line reason; the turn itself does not fail. A ``retry``
then finishes the run with the real outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reflow.planning.identity import value_hash
from reflow.running.dispatch.control import retry
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.executors.local import LocalExecutor
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import result_text
from reflow.running.store.sqlite import SqliteStore
from tests.flows.hold_steps import wf
from tests.reliability.processes import dispatcher_pid, kill_detached, kill_workers, wait_until

COUNT = 10


@pytest.fixture(autouse=True)
def local_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REFLOW_MODE", "local")
    monkeypatch.setenv("REFLOW_LOCAL_SLOTS", str(COUNT))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def valid_result(layout: RunLayout, *, element: int, batch: str, value: int, **other: str) -> str:
    """The text of a well-formed result file, with ``run_id``/``task`` overridable."""
    fields = {"run_id": layout.run_id, "task": "work", **other}
    return result_text(
        run_id=fields["run_id"],
        task=fields["task"],
        element=element,
        batch=batch,
        output=value,
        output_hash=value_hash(json.dumps(value)),
        error=None,
        started=1.0,
        ended=2.0,
        host="planted",
        pid=1,
        peak_rss_mb=1.0,
    )


def plant(layout: RunLayout, batches: dict[int, str]) -> dict[int, str]:
    """Write one kind of bad file per element; return what each element's reason must say."""
    folder = layout.results_dir("work")

    def path(element: int) -> Path:
        return layout.result("work", element, batches[element])

    good = valid_result(layout, element=1, batch=batches[1], value=10)
    # 0: the worker wrote its temp file and was killed before the rename.
    temp = valid_result(layout, element=0, batch=batches[0], value=-1)
    (folder / f".{path(0).name}.k3j2h1.tmp").write_text(temp)
    path(1).write_text(good[: len(good) // 2])  # truncated
    path(2).write_bytes(b"\x00\xffnot json at all")
    path(3).write_text(json.dumps([1, 2, 3]))  # JSON, but not an object
    wrong_schema = json.loads(valid_result(layout, element=4, batch=batches[4], value=40))
    del wrong_schema["output_hash"]
    path(4).write_text(json.dumps(wrong_schema))
    path(5).write_text(valid_result(layout, element=5, batch=batches[5], value=50, run_id="x-1"))
    path(6).write_text(valid_result(layout, element=6, batch=batches[6], value=60, task="prepare"))
    path(7).write_text(valid_result(layout, element=8, batch=batches[7], value=70))  # element 8's
    path(8).mkdir()  # a folder where the file should be
    path(9).write_text(valid_result(layout, element=9, batch=batches[9], value=90))  # a good one
    return {
        1: "not JSON",
        2: "not JSON",
        3: "not an object",
        4: "has no field output_hash",
        5: "belongs to run_id 'x-1'",
        6: "belongs to task 'prepare'",
        7: "belongs to element 8",
        8: "cannot read",
    }


def test_planted_result_files_fail_their_elements_and_never_crash_a_turn(tmp_path: Path) -> None:
    root = tmp_path / "run dir"
    root.mkdir()
    (root / "hold").touch()
    run = wf.submit(run_dir=root, count=COUNT)
    layout = RunLayout(root, run.run_id)
    logs = [layout.log("work", e) for e in range(COUNT)]
    wait_until(lambda: all(log.exists() for log in logs), "every element to start")
    kill_detached(dispatcher_pid(root, run.run_id, since=0.0))
    kill_workers(root)

    store = SqliteStore.open(root)
    try:
        batches = {row.element: str(row.batch) for row in store.instances(run.run_id, "work")}
        reasons = plant(layout, batches)
        executor = LocalExecutor(slots=COUNT, run_root=layout.run)
        dispatcher = make_dispatcher(layout, store, executor, unknown_is_lost=True)
        assert dispatcher.turn() == "running"
        rows = {row.element: row for row in store.instances(run.run_id, "work")}
        executor.cancel(executor.active_job_ids())
    finally:
        store.close()

    for element, reason in reasons.items():
        row = rows[element]
        assert (row.state, row.reason) == ("failed", "result"), element
        assert reason in str(row.error), (element, row.error)
        assert "\n" not in str(row.error)
    assert rows[9].state == "done"
    # The killed worker's temp file was not ingested: its element was requeued and resubmitted.
    assert rows[0].state == "submitted"
    assert rows[0].batch != batches[0]
    assert rows[0].attempts == 2

    (root / "hold").unlink()
    assert retry(root, run.run_id) == len(reasons)
    assert run.wait(timeout=120) == "succeeded"
    store = SqliteStore.open(root)
    try:
        values = [json.loads(v) for _e, v, _h in store.element_outputs(run.run_id, "work")]
        assert store.integrity_problems() == []
    finally:
        store.close()
    assert values == [10 * e for e in range(COUNT)]
