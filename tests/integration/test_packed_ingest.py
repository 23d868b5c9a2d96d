"""Ingesting packed array tasks' bundles, from what their workers wrote.

The array tasks run as Slurm runs them (the worker with its array index, through
``test_status_arrivals``'s recording executor); ``tests/flows/packed_mixed.py`` appends each
call to ``calls``, so a test counts what ran. A bundle whose every line is a success is
staged into the store straight from its lines; any other bundle is read element by element.
Both must end the same: the store's states, its cache of outputs and its attempts.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from benchmarks.rundirs import NullExecutor, finish_prepare, new_run
from reflow.planning.encoding import to_text
from reflow.planning.identity import value_hash
from reflow.running.dispatch.dispatcher import make_dispatcher
from reflow.running.dispatch.intake import reconcile_jobs
from reflow.running.dispatch.read_ahead import ReadAhead
from reflow.running.executors.base import BatchRequest, FailureReason, JobState, JobStatus
from reflow.running.rundir.batches import read_batch
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.results import ResultError, result_text
from reflow.running.store import job_writes
from reflow.running.store.sqlite import SqliteStore
from tests.flows import packed_mixed
from tests.integration.test_status_arrivals import RecordingExecutor, start_array_task
from tests.unit.test_bundles import append_result, read_successes


def submitted_packed(root: Path, count: int) -> tuple[RunLayout, BatchRequest]:
    """A run of ``packed_mixed`` whose ``convert[count]`` went out packed, nothing started."""
    layout = new_run(root, count, flow=packed_mixed)
    finish_prepare(layout, count, flow=packed_mixed)
    executor = RecordingExecutor()
    with SqliteStore.open(root) as store:
        make_dispatcher(layout, store, executor).turn()
    (request,) = executor.requests
    assert (request.task, request.pack, request.elements) == ("convert", 3, tuple(range(count)))
    return layout, request


def states(store: SqliteStore, run_id: str) -> dict[int, str]:
    return {row.element: row.state.value for row in store.instances(run_id, "convert")}


def outputs(store: SqliteStore, run_id: str) -> dict[int, str]:
    return {element: value for element, value, _ in store.element_outputs(run_id, "convert")}


def attempt_states(store: SqliteStore, run_id: str, count: int) -> dict[int, list[str]]:
    found = store.attempts_of(run_id, [("convert", element) for element in range(count)])
    return {element: [a.state for a in found[("convert", element)]] for element in range(count)}


def called(root: Path) -> list[str]:
    """The items ``convert`` was called on, in the run directory ``root``."""
    calls = root / "calls"
    return calls.read_text().split() if calls.exists() else []


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_successes_failures_a_retry_and_a_killed_array_task_end_as_their_lines_say(
    tmp_path: Path,
) -> None:
    layout, request = submitted_packed(tmp_path, 9)
    # Array task 0 runs items 0 (done), 1 (ValueError) and 2 (waits): it is killed while 2
    # waits, so its bundle is cut short. Array task 1 runs 3 (done), 4 (an OSError, retried)
    # and 5 (done). Array task 2's bundle holds only successes: 6, 7 and 8.
    bundle = layout.bundle("convert", request.batch_id, 0)
    killed = start_array_task(request, 0)
    try:
        deadline = time.monotonic() + 60
        while lines(bundle) < 2 or "2" not in called(tmp_path):  # item 2 waits
            assert time.monotonic() < deadline, "array task 0 did not reach item 2"
            assert killed.poll() is None, "array task 0 ended"
            time.sleep(0.05)
    finally:
        killed.kill()
        killed.wait()
    assert [start_array_task(request, t).wait(timeout=60) for t in (1, 2)] == [1, 0]
    assert lines(bundle) == 2
    own = {t: frozenset(range(3 * t, 3 * t + 3)) for t in range(3)}
    batch = request.batch_id
    who = {"run_id": layout.run_id, "task": "convert", "batch": batch}
    assert read_successes(layout.bundle("convert", batch, 2), **who, elements=own[2])
    assert read_successes(layout.bundle("convert", batch, 1), **who, elements=own[1]) is None

    with SqliteStore.open(tmp_path) as store:
        dispatcher = make_dispatcher(layout, store, NullExecutor())
        waiting = dispatcher.ingest()
        assert [(row.task, row.element) for row in waiting] == [("convert", 2)]
        ended = states(store, layout.run_id)
        assert ended == {
            0: "done", 1: "failed", 2: "submitted", 3: "done", 4: "ready", 5: "done",
            6: "done", 7: "done", 8: "done",
        }  # fmt: skip
        rows = {row.element: row for row in store.instances(layout.run_id, "convert")}
        assert rows[1].error == "ValueError: item 1 is bad"
        assert rows[4].reason == "exception"
        assert rows[4].error == "FileNotFoundError: item 4 is not there yet"
        assert rows[6].host == socket.gethostname()
        assert 0 < (rows[6].started or 0) <= (rows[6].ended or 0)
        assert (rows[6].peak_rss_mb or 0) > 0
        made = outputs(store, layout.run_id)
        assert made == {e: str(e * 10) for e in (0, 3, 5, 6, 7, 8)}
        # Each output is in the cache under its instance's identity, with its hash.
        done = [rows[e].identity for e in made]
        cached = store.cached_outputs("convert", done)
        assert sorted(cached) == sorted(done)
        assert all(digest == value_hash(text) for text, digest in cached.values())
        attempts = attempt_states(store, layout.run_id, 9)
        assert attempts == {
            0: ["done"], 1: ["failed"], 2: ["submitted"], 3: ["done"], 4: ["failed"],
            5: ["done"], 6: ["done"], 7: ["done"], 8: ["done"],
        }  # fmt: skip

        # Ingested again (a turn after a crash): nothing moves twice.
        assert [row.element for row in dispatcher.ingest()] == [2]
        assert states(store, layout.run_id) == ended
        assert outputs(store, layout.run_id) == made
        assert attempt_states(store, layout.run_id, 9) == attempts

        # The batch file names the elements that had a log when the batch went out: none.
        assert read_batch(layout, batch).again == frozenset()

        # Until its kill is recorded, 2's output is only in its array task's shared output;
        # then it is in 2's own log, and the shared output goes.
        shared = layout.pack_log("convert", batch, 0)
        assert b"item 2 waits for go\n" in shared.read_bytes()
        assert not layout.log("convert", 2).exists()
        reconcile_jobs(store, layout, layout.run_id, Killed(), waiting, unknown_is_lost=True)
        assert states(store, layout.run_id)[2] == "failed"
    log = layout.log("convert", 2).read_text()
    assert log.startswith(f"==> reflow: convert[2] batch {batch} on ")
    assert log.endswith("item 2 waits for go\n")  # no footer: it was killed
    assert "item 1" not in log
    assert not shared.exists()
    assert Counter(called(tmp_path)) == {str(e): 1 for e in range(9)}


class Killed(NullExecutor):
    """Every job it is asked about was killed."""

    result_grace = 0.0

    def states(self, job_ids: Sequence[str], /) -> dict[str, JobStatus]:
        killed = JobStatus(state=JobState.FAILED, reason=FailureReason.CANCELLED, detail="killed")
        return dict.fromkeys(job_ids, killed)


def write_line(layout: RunLayout, batch: str, array_task: int, element: int, value: int) -> None:
    """Append a success of ``element`` with output ``value`` to an array task's bundle."""
    text = result_text(
        run_id=layout.run_id, task="convert", element=element, batch=batch, output=value,
        output_hash=value_hash(to_text(value)), error=None, started=1.0, ended=2.0,
        host="node", pid=1, peak_rss_mb=1.0,
    )  # fmt: skip
    append_result(layout.bundle("convert", batch, array_task), text)


def test_the_first_line_of_an_element_wins_and_lines_of_ended_elements_change_nothing(
    tmp_path: Path,
) -> None:
    layout, request = submitted_packed(tmp_path, 9)
    batch = request.batch_id
    # Array task 0 ran twice (the scheduler requeued it): every line twice, the first wins.
    for value in (0, 1):
        for element in range(3):
            write_line(layout, batch, 0, element, element * 10 + value)
    for element in (3, 4, 6, 7):  # 5 and 8 still run
        write_line(layout, batch, element // 3, element, element * 10)
    with SqliteStore.open(tmp_path) as store:
        dispatcher = make_dispatcher(layout, store, NullExecutor())
        assert [row.element for row in dispatcher.ingest()] == [5, 8]
        first = {e: str(e * 10) for e in (0, 1, 2, 3, 4, 6, 7)}
        assert outputs(store, layout.run_id) == first
        # Later lines of elements that ended: in a bundle that holds only successes (read as
        # columns), and in one holding an element of another array task (read one by one).
        write_line(layout, batch, 1, 3, 999)
        write_line(layout, batch, 1, 5, 50)
        write_line(layout, batch, 2, 6, 999)
        write_line(layout, batch, 2, 0, 999)
        write_line(layout, batch, 2, 8, 80)
        who = {"run_id": layout.run_id, "task": "convert", "batch": batch}
        columns = read_successes(
            layout.bundle("convert", batch, 1), **who, elements=frozenset({3, 4, 5})
        )
        assert columns is not None
        assert [row[1] for row in columns] == [3, 4, 3, 5]
        one_by_one = layout.bundle("convert", batch, 2)
        assert read_successes(one_by_one, **who, elements=frozenset({6, 7, 8})) is None
        assert dispatcher.ingest() == []
        assert outputs(store, layout.run_id) == {e: str(e * 10) for e in range(9)}
        assert attempt_states(store, layout.run_id, 9) == {e: ["done"] for e in range(9)}


def test_the_results_of_cancelled_elements_are_not_ingested(tmp_path: Path) -> None:
    layout, request = submitted_packed(tmp_path, 6)
    with SqliteStore.open(tmp_path) as store:
        store.cancel(layout.run_id, "convert")
        for element in range(6):
            write_line(layout, request.batch_id, element // 3, element, element * 10)
        assert make_dispatcher(layout, store, NullExecutor()).ingest() == []
        assert set(states(store, layout.run_id).values()) == {"cancelled"}
        assert outputs(store, layout.run_id) == {}
        identities = [row.identity for row in store.instances(layout.run_id, "convert")]
        assert store.cached_outputs("convert", identities) == {}


def test_successes_written_a_few_at_a_time_end_as_if_written_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store writes the successes of 12 elements (4 bundles) 2 at a time, while a thread
    # reads the next bundles; one bundle holds a failure and is read one by one.
    monkeypatch.setattr(job_writes, "SUCCESS_CHUNK", 2)
    written: list[int] = []  # the successes of each chunk, one transaction each
    write_ended = job_writes._write_ended

    def counted(*args: Any) -> int:
        if len(args) > 3 and args[3]:  # the successes, a list
            written.append(len(args[3]))
        return write_ended(*args)

    monkeypatch.setattr(job_writes, "_write_ended", counted)
    paused: list[int] = []  # the reader is paused while each chunk is staged
    pause = ReadAhead.paused

    def counted_pause(reader: ReadAhead[Any]) -> AbstractContextManager[None]:
        paused.append(len(written))
        return pause(reader)

    monkeypatch.setattr(ReadAhead, "paused", counted_pause)
    layout, request = submitted_packed(tmp_path, 12)
    batch = request.batch_id
    for element in range(12):
        if element != 7:
            write_line(layout, batch, element // 3, element, element * 10)
    failure = result_text(
        run_id=layout.run_id, task="convert", element=7, batch=batch, output=None,
        output_hash=None, error=ResultError("ValueError", "item 7 is bad"),
        started=1.0, ended=2.0, host="node", pid=1, peak_rss_mb=1.0,
    )  # fmt: skip
    append_result(layout.bundle("convert", batch, 2), failure)
    with SqliteStore.open(tmp_path) as store:
        assert make_dispatcher(layout, store, NullExecutor()).ingest() == []
        assert written == [3, 3, 3]  # array tasks 0, 1 and 3; 2's failure is read one by one
        assert paused == [1, 2, 3]  # once within each of the three writes, as it stages
        made = {e: str(e * 10) for e in range(12) if e != 7}
        assert outputs(store, layout.run_id) == made
        assert states(store, layout.run_id) == {
            e: "failed" if e == 7 else "done" for e in range(12)
        }
        attempts = attempt_states(store, layout.run_id, 12)
        assert attempts == {e: ["failed" if e == 7 else "done"] for e in range(12)}
        rows = {row.element: row for row in store.instances(layout.run_id, "convert")}
        assert rows[7].error == "ValueError: item 7 is bad"
        cached = store.cached_outputs("convert", [rows[e].identity for e in made])
        assert {text for text, _ in cached.values()} == set(made.values())
