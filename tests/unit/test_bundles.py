"""The fast read of a bundle that holds only successes agrees with the line-by-line read.

``read_successes`` must give, for every bundle it accepts, exactly what ``read_bundle`` reads
(the first line of an element wins), and refuse (None) every bundle with anything else in
it, so that ingest reads that one line by line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflow.planning.encoding import to_json, to_text
from reflow.planning.identity import value_hash
from reflow.running.rundir.bundles import (
    Bundle,
    Success,
    bundle_documents,
    read_bundle,
    successes_of,
)
from reflow.running.rundir.results import ResultError, ResultProblem, ResultRecord, result_text


def append_result(path: Path, text: str) -> None:
    """One line appended to the bundle at ``path`` by a worker that then ends."""
    bundle = Bundle(path)
    bundle.append(text)
    bundle.close()


WHO = {"run_id": "demo-1", "task": "convert", "batch": "b7"}
OWN = frozenset(range(10))


def line(element: int, value: Any = "x", /, **changes: Any) -> str:
    """A success of ``element`` as a worker writes it, with ``changes`` to its document."""
    output = to_json(value)
    text = result_text(
        **WHO, element=element, output=output, output_hash=value_hash(to_text(output)),
        error=None, started=100.0, ended=101.5, host="node1", pid=42, peak_rss_mb=12.5,
        cpu_s=0.25,
    )  # fmt: skip
    if not changes:
        return text
    document = json.loads(text)
    document.update(changes)
    return json.dumps(document)


def failure(element: int) -> str:
    error = ResultError(type="ValueError", message="no")
    return result_text(
        run_id="demo-1", task="convert", batch="b7", element=element, output=None,
        output_hash=None, error=error, started=1.0, ended=2.0, host="node1", pid=42,
        peak_rss_mb=1.0,
    )  # fmt: skip


def bundle(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "b7.0.jsonl"
    path.write_bytes(b"")
    for text in lines:
        append_result(path, text)
    return path


def read_successes(path: Path, *, elements: frozenset[int], **who: str) -> list[Success] | None:
    """``successes_of`` the bundle at ``path``, as a turn reads it; None when unreadable."""
    documents = bundle_documents(path)
    if isinstance(documents, ResultProblem):
        return None
    return successes_of(documents, run_id=who["run_id"], task=who["task"], batch=who["batch"],
                        elements=elements)  # fmt: skip


def agree(path: Path) -> list[Any] | None:
    """``read_successes`` of ``path``, checked against ``read_bundle`` when it accepts it."""
    rows = read_successes(path, **WHO, elements=OWN)
    if rows is None:
        return None
    records = read_bundle(path, **WHO)
    assert isinstance(records, dict)
    first: dict[int, tuple[Any, ...]] = {}
    for row in rows:
        first.setdefault(row[1], row)
    assert sorted(first) == sorted(records)
    for element, record in records.items():
        assert isinstance(record, ResultRecord)
        assert record.ok
        expected = (
            "convert", element, "b7", record.started, record.ended, record.host,
            record.peak_rss_mb, record.output_text, record.output_hash,
        )  # fmt: skip
        assert first[element] == expected
    return rows


def test_a_bundle_of_successes_is_read_as_rows_in_line_order(tmp_path: Path) -> None:
    rows = agree(bundle(tmp_path, [line(2, "a"), line(0, {"b": [1.5, None]}), line(1, 7)]))
    assert rows is not None
    assert [(row[1], row[7]) for row in rows] == [(2, '"a"'), (0, '{"b":[1.5,null]}'), (1, "7")]


def test_an_element_given_twice_keeps_both_lines_in_order_for_the_first_to_win(
    tmp_path: Path,
) -> None:
    rows = agree(bundle(tmp_path, [line(3, "first"), line(4), line(3, "again")]))
    assert rows is not None
    assert [(row[1], row[7]) for row in rows] == [(3, '"first"'), (4, '"x"'), (3, '"again"')]


def test_an_empty_bundle_and_a_torn_last_line_leave_the_complete_lines(tmp_path: Path) -> None:
    assert agree(bundle(tmp_path, [])) == []
    path = bundle(tmp_path, [line(1)])
    with path.open("ab") as handle:  # killed while writing the second line
        handle.write(line(2).encode()[:40])
    rows = agree(path)
    assert rows is not None
    assert [row[1] for row in rows] == [1]


@pytest.mark.parametrize(
    "odd",
    [
        failure(5),
        "not json",
        line(5)[:60],  # a torn line in the middle: the array task ran again after a kill
        "[1, 2]",
        line(5, run_id="demo-2"),
        line(5, task="other"),
        line(5, batch="b8"),
        line(5, format="reflow/result/0"),
        line(11),  # an element of another array task
        line(5, ok=1),
        line(5, element=5.0),
        line(5, element=True),
        line(5, pid="42"),
        line(5, host=None),
        line(5, started="100"),
        line(5, ended=True),
        line(5, peak_rss_mb=None),
        line(5, cpu_s="0.25"),
        line(5, cpu_s=None),
        line(5, error={"type": "E", "message": "m", "traceback": ""}),
        line(5, output_hash="0" * 64),
        line(5, output_hash=None),
        line(5, output="\ud800"),  # a lone surrogate: no UTF-8 text, no hash
        '{"element": 5, "format": "reflow/result/1"}',
    ],
)
def test_a_bundle_holding_anything_but_successes_is_left_to_the_line_by_line_read(
    tmp_path: Path, odd: str
) -> None:
    path = bundle(tmp_path, [line(1), odd, line(2)])
    assert read_successes(path, **WHO, elements=OWN) is None
    records = read_bundle(path, **WHO)
    assert isinstance(records, dict)
    assert {1, 2} <= set(records)


def test_numbers_written_as_ints_and_extra_fields_are_read_as_the_line_by_line_read_does(
    tmp_path: Path,
) -> None:
    rows = agree(bundle(tmp_path, [line(1, started=100, ended=101, peak_rss_mb=12, note="x")]))
    assert rows is not None
    assert rows[0][3:7] == (100, 101, "node1", 12)


def test_a_missing_bundle_is_left_to_the_line_by_line_read(tmp_path: Path) -> None:
    assert read_successes(tmp_path / "none.jsonl", **WHO, elements=OWN) is None


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_VALUES, min_size=1, max_size=4))
def test_any_json_outputs_are_read_as_the_line_by_line_read_reads_them(
    tmp_path: Path, values: list[Any]
) -> None:
    rows = agree(bundle(tmp_path, [line(element, value) for element, value in enumerate(values)]))
    assert rows is not None


def test_a_bundle_syncs_a_pending_line_on_its_own_while_the_next_element_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted_fsync)
    bundle = Bundle(tmp_path / "b.0.jsonl", sync_every_s=0.05)
    bundle.append('{"line": 1}')
    bundle.append('{"line": 2}')
    assert synced == []  # an fsync per line would cost more than a short element
    deadline = time.monotonic() + 10
    while not synced:  # no further append: the timer syncs the two lines
        assert time.monotonic() < deadline, "the pending lines were never synced"
        time.sleep(0.01)
    assert len(synced) == 1
    bundle.close()  # nothing pending: no second sync
    assert len(synced) == 1
    assert (tmp_path / "b.0.jsonl").read_text() == '{"line": 1}\n{"line": 2}\n'
    bundle = Bundle(tmp_path / "b.1.jsonl", sync_every_s=60)
    bundle.append('{"line": 1}')
    bundle.close()  # the line written last is synced as the bundle closes
    assert len(synced) == 2
