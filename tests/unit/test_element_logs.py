"""Where an element's text is: the segments of a packed array task's shared output."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from reflow.running.rundir.batches import BatchFile, write_batch
from reflow.running.rundir.element_logs import (
    footer,
    header,
    keep_cut_segments,
    logged_elements,
    running_text,
)
from reflow.running.rundir.layout import RunLayout, cut_record
from reflow.running.worker.output import SharedOutput


@pytest.fixture
def layout(tmp_path: Path) -> RunLayout:
    layout = RunLayout(tmp_path, "r-1")
    write_batch(layout, "b1", BatchFile(task="t", elements=(4, 2, 0, 1), pack=2))
    layout.logs_dir("t").mkdir(parents=True)
    return layout


def segment(element: int, text: str, *, ended: bool) -> str:
    end = footer("t", element, None, 0.1) + "\n" if ended else ""
    return header("t", element, "b1", "node1") + text + end


def test_the_running_element_is_the_last_segment_without_a_footer(layout: RunLayout) -> None:
    shared = layout.pack_log("t", "b1", 1)  # elements 0 and 1
    first = segment(0, "zero\n", ended=True)
    shared.write_text(first)
    assert running_text(layout, "t", 0, "b1") == b""  # ended: its text is in its log
    shared.write_text(first + segment(1, "one\npartial", ended=False))
    assert running_text(layout, "t", 1, "b1") == segment(1, "one\npartial", ended=False).encode()
    assert running_text(layout, "t", 0, "b1") == b""
    assert running_text(layout, "t", 4, "b1") == b""  # in array task 0, which has no output


def test_a_segment_longer_than_a_read_block_is_found_whole(layout: RunLayout) -> None:
    long = "x" * 200_000 + "\n" + "y" * 100_000
    shared = layout.pack_log("t", "b1", 0)  # elements 4 and 2
    shared.write_text(segment(4, long, ended=False))  # the header is the file's first line
    assert running_text(layout, "t", 4, "b1") == segment(4, long, ended=False).encode()
    shared.write_text(segment(4, "a\n", ended=True) + segment(2, long, ended=False))
    assert running_text(layout, "t", 2, "b1") == segment(2, long, ended=False).encode()


def test_a_printed_line_like_a_header_inside_a_line_does_not_split_a_segment(
    layout: RunLayout,
) -> None:
    text = "said: ==> reflow: t[1] batch b1\n"
    layout.pack_log("t", "b1", 1).write_text(segment(0, text, ended=False))
    assert running_text(layout, "t", 0, "b1") == segment(0, text, ended=False).encode()


def test_a_stopped_array_tasks_cut_segment_goes_to_its_elements_log(
    layout: RunLayout,
) -> None:
    shared = layout.pack_log("t", "b1", 1)
    shared.write_text(segment(0, "zero\n", ended=True) + segment(1, "one\ncut", ended=False))
    keep_cut_segments(layout, [("t", "b1", 0)], ended=False)  # 1 did not stop: no copy
    assert not layout.log("t", 1).exists()
    layout.log("t", 1).write_text("earlier attempt\n")
    stopped = [("t", "b1", 0), ("t", "b1", 1), ("t", "b1", 4)]
    keep_cut_segments(layout, stopped, ended=False)  # a cancel: its worker may still write
    kept = segment(1, "one\ncut", ended=False) + "\n"
    assert layout.log("t", 1).read_text() == "earlier attempt\n" + kept
    assert not layout.log("t", 0).exists()  # it ended normally; its log is the worker's
    assert shared.exists()  # the worker's to remove


def test_an_array_task_killed_between_elements_leaves_no_shared_output(
    layout: RunLayout,
) -> None:
    shared = layout.pack_log("t", "b1", 1)
    shared.write_text(segment(0, "zero\n", ended=True))  # 0 ended; 1 never started
    keep_cut_segments(layout, [("t", "b1", 1)], ended=True)
    assert not layout.log("t", 1).exists()
    assert not shared.exists()


def test_the_elements_with_a_log_are_found_in_one_listing(layout: RunLayout) -> None:
    for name in ("3.log", "5.log", "pack-b1.0.log", "t.12_0.out", "30.log"):
        (layout.logs_dir("t") / name).write_text("x\n")
    assert logged_elements(layout, "t", [1, 3, 5, 7]) == {3, 5}
    assert logged_elements(layout, "other", [3]) == frozenset()  # no folder yet


def test_an_unpacked_batch_or_a_missing_batch_file_has_no_running_text(
    layout: RunLayout,
) -> None:
    write_batch(layout, "b2", BatchFile(task="t", elements=(0, 1), pack=1))
    assert running_text(layout, "t", 0, "b2") == b""
    assert running_text(layout, "t", 0, "nope") == b""
    stopped = [("t", "b1", 4), ("t", "b2", 0), ("t", "nope", 0)]
    keep_cut_segments(layout, stopped, ended=True)  # no shared output
    assert not layout.log("t", 4).exists()


def test_an_element_going_on_after_a_cancel_copied_its_cut_copies_only_the_rest(
    layout: RunLayout,
) -> None:
    shared = layout.pack_log("t", "b1", 1)
    output = SharedOutput(shared, layout.logs_dir("t"), frozenset())
    with output.element(0, header("t", 0, "b1", "node1")) as attempt:
        os.write(1, b"before the ca")  # the element's stdout is the shared output
        keep_cut_segments(layout, [("t", "b1", 0)], ended=False)  # the cancel's copy
        os.write(1, b"ncel\nafter it\n")  # it ended in that moment, or ignored the signal
        attempt.ran(failed=False)
        os.write(1, footer("t", 0, None, 0.1).encode() + b"\n")
    log = layout.log("t", 0).read_text()
    first, rest = log.split("\n", 1)
    assert first.startswith("==> reflow: t[0] batch b1 on node1 at ")
    # Every byte once: the cancel's part (ended with a newline of its own), then the rest.
    assert rest == "before the ca\nncel\nafter it\n" + footer("t", 0, None, 0.1) + "\n"
    ended = footer("t", 0, None, 0.1) + "\n"
    assert shared.read_text() == f"{first}\nbefore the cancel\nafter it\n{ended}"  # untouched
    assert cut_record(shared).read_text() == f"0 {len(first) + 1 + len('before the ca')}\n"
    output.close()
    assert not shared.exists()
    assert not cut_record(shared).exists()


def test_a_second_copy_of_a_long_cut_segment_takes_only_what_came_after_the_first(
    layout: RunLayout,
) -> None:
    shared = layout.pack_log("t", "b1", 1)
    head = segment(0, "zero\n", ended=True)
    running = header("t", 1, "b1", "node1") + "x" * 200_000  # longer than a read block
    shared.write_text(head + running)
    keep_cut_segments(layout, [("t", "b1", 1)], ended=False)  # a cancel
    with shared.open("a") as handle:
        handle.write("y" * 100_000 + "\n")  # the element printed on before it stopped
    keep_cut_segments(layout, [("t", "b1", 1)], ended=True)  # the kill, recorded later
    assert layout.log("t", 1).read_text() == running + "\n" + "y" * 100_000 + "\n"
    assert not shared.exists()
    assert not cut_record(shared).exists()


def test_a_finished_elements_copy_waits_while_a_cancel_holds_the_shared_output(
    layout: RunLayout,
) -> None:
    shared = layout.pack_log("t", "b1", 1)
    output = SharedOutput(shared, layout.logs_dir("t"), frozenset())
    holder = os.open(shared, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as ``keep_cut_segments`` holds it while it copies

    def element() -> None:
        with output.element(0, header("t", 0, "b1", "node1")) as attempt:
            os.write(1, b"printed\n")
            attempt.ran(failed=False)

    runner = threading.Thread(target=element)
    runner.start()
    runner.join(timeout=0.5)
    assert runner.is_alive()  # its copy waits for the lock
    assert not layout.log("t", 0).exists()
    fcntl.flock(holder, fcntl.LOCK_UN)
    os.close(holder)
    runner.join(timeout=10)
    assert not runner.is_alive()
    output.close()
    assert "printed\n" in layout.log("t", 0).read_text()
