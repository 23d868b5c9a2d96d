"""Where an element's text is: the segments of a packed array task's shared output."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from reflow.running.rundir.batches import BatchFile, write_batch
from reflow.running.rundir.element_logs import (
    after_cut,
    cut_line,
    footer,
    header,
    keep_cut_segments,
    logged_elements,
    running_text,
)
from reflow.running.rundir.layout import RunLayout
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
    output = SharedOutput(shared, layout.logs_dir("t"), "t", frozenset())
    with output.element(0, header("t", 0, "b1", "node1")) as attempt:
        os.write(1, b"before the cancel\n")  # the element's stdout is the shared output
        keep_cut_segments(layout, [("t", "b1", 0)], ended=False)  # the cancel's copy
        os.write(1, b"after it\n")  # it ended in that moment, or ignored the signal
        attempt.ran(failed=False)
        os.write(1, footer("t", 0, None, 0.1).encode() + b"\n")
    log = layout.log("t", 0).read_text()
    first, rest = log.split("\n", 1)
    assert first.startswith("==> reflow: t[0] batch b1 on node1 at ")
    assert rest == "before the cancel\nafter it\n" + footer("t", 0, None, 0.1) + "\n"
    assert cut_line("t", 0) in shared.read_text()  # where the cancel's copy ended
    keep_cut_segments(layout, [("t", "b1", 0)], ended=True)  # intake after: nothing again
    assert layout.log("t", 0).read_text() == log
    output.close()


def test_a_finished_elements_copy_waits_while_a_cancel_holds_the_shared_output(
    layout: RunLayout,
) -> None:
    shared = layout.pack_log("t", "b1", 1)
    output = SharedOutput(shared, layout.logs_dir("t"), "t", frozenset())
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


@pytest.mark.parametrize("before", [0, 1024 * 1024 - 30, 3 * 1024 * 1024])
def test_the_cut_line_is_found_wherever_it_falls_in_a_long_segment(
    layout: RunLayout, before: int
) -> None:
    shared = layout.pack_log("t", "b1", 1)
    start_text = header("t", 0, "b1", "node1") + "x" * before + "\n"
    text = start_text + cut_line("t", 0) + "rest\n" + "y" * 2_000_000
    shared.write_text(text)
    fd = os.open(shared, os.O_RDONLY)
    try:
        at = after_cut(fd, 0, len(text), "t", 0)
        assert text[at:].startswith("rest\n")
        assert after_cut(fd, 0, len(start_text), "t", 0) == 0  # no cut line before it
        assert after_cut(fd, 0, len(text), "t", 1) == 0  # another element's line is not its
    finally:
        os.close(fd)
