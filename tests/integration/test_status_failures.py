"""Status of a run with 100,000 failed elements: every one listed, grouped by exception type,
read with one query over the failed elements, in about a second.
"""

from __future__ import annotations

from pathlib import Path

from reflow.running.commands.status import build_status, render_failed, render_status
from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore
from tests.integration.flowfiles import seed

ELEMENTS = 100_000


def failed_run(root: Path) -> SqliteStore:
    store = SqliteStore.open(root, create=True)
    store.create_run(run_id="big", workflow="big", executor="local", options={})
    rows = [
        ("big", "convert", i, f"id{i}", "failed", 1, "exception",
         "ValueError: bad" if i % 2 else f"KeyError: 'k{i}'")
        for i in range(ELEMENTS)
    ]  # fmt: skip
    seed(store,
        [
            ("INSERT INTO tasks (run_id, task, plan, size) VALUES (?, ?, ?, ?)",
             [("big", "convert", "{}", ELEMENTS)]),
            ("INSERT INTO instances (run_id, task, element, identity, state, attempts, reason,"
             " error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows),
        ]
    )  # fmt: skip
    return store


def test_every_failed_element_of_a_large_run_is_read_with_one_query(tmp_path: Path) -> None:
    store = failed_run(tmp_path)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    data = build_status(store, RunLayout(tmp_path, "big"), ["convert"])
    store.close()
    reading_instances = [s for s in statements if "FROM instances" in s]
    # The counts, the failed elements, and the elements submitted more than once.
    assert len(reading_instances) == 3, reading_instances
    assert data["retried"] == []
    assert len(data["failed"]) == ELEMENTS
    assert [(g["type"], g["count"]) for g in data["failures"]] == [
        ("KeyError", ELEMENTS // 2), ("ValueError", ELEMENTS // 2),
    ]  # fmt: skip
    assert [e["element"] for e in data["failures"][0]["examples"]] == [0, 2, 4]
    table = render_status(data)
    assert len(table.splitlines()) < 20
    assert "convert: 50000 failed (exception: KeyError)" in table
    assert len(render_failed(data).splitlines()) == ELEMENTS + 2
