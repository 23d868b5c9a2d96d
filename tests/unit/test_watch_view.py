"""The live view's layout: lines from a status dict at any window size, without curses."""

from __future__ import annotations

from typing import Any

import pytest

from reflow.running.commands.watch_view import (
    HELP,
    Failure,
    ViewState,
    format_duration,
    layout,
    task_retries,
)

FAILED = (
    Failure(task="work", element=1, reason="exception", error="RuntimeError: boom", ended=None),
)


def task(name: str, elements: int | None, **counts: int) -> dict[str, Any]:
    return {
        "task": name,
        "planned": elements is not None,
        "elements": elements,
        "counts": counts,
        "error": "",
    }


def status(tasks: int = 3) -> dict[str, Any]:
    rows = [
        task("prepare", 1, done=1),
        task("work", 4, done=1, submitted=2, failed=1),
        task("total", None),
    ]
    rows += [task(f"extra{n}", 2, ready=2) for n in range(tasks - 3)]
    return {
        "run_id": "watched-1",
        "workflow": "watched",
        "state": "running",
        "tasks": rows[:tasks],
        "failures": [
            {
                "task": "work",
                "state": "failed",
                "reason": "exception",
                "count": 1,
                "examples": [{"element": 1, "error": "RuntimeError: boom", "attempts": 1}],
            }
        ],
    }


def texts(lines: list[Any]) -> list[str]:
    return [line.text for line in lines]


def test_a_roomy_window_shows_title_a_row_per_task_failures_and_keys() -> None:
    view = ViewState(elapsed_s=75, dispatcher="alive", failures=FAILED)
    lines = texts(layout(status(), view, 100, 30))
    assert len(lines) == 30
    assert lines[0].startswith("run watched-1 (watched): RUNNING  elapsed 1m15s")
    assert lines[0].endswith("dispatcher: alive")
    assert lines[1].startswith("> prepare")
    assert "1/1" in lines[1]
    assert lines[2].startswith("  work")
    assert "1/4" in lines[2]
    assert "1 failed" in lines[2]
    assert "2 running" in lines[2]
    assert "waiting" in lines[3]
    assert lines[4] == "newest failures, latest first:"
    assert lines[5] == "  --:--:--  work[1]  exception: RuntimeError: boom"
    assert lines[-1] == HELP


def test_the_selected_task_is_marked_and_styled() -> None:
    lines = layout(status(), ViewState(selected=1), 100, 30)
    assert [line.style for line in lines[1:4]] == ["normal", "selected", "normal"]
    assert lines[2].text.startswith("> work")


def test_retried_elements_are_shown_on_their_task_row() -> None:
    view = ViewState(retried={"work": "2 retried, up to 3 attempts"})
    lines = texts(layout(status(), view, 120, 30))
    assert lines[2].endswith("(2 retried, up to 3 attempts)")
    assert "retried" not in lines[1]


def attempt(**resources: int) -> dict[str, Any]:
    return {"resources": resources}


def test_retries_name_the_resources_they_raised_from_lowest_to_highest() -> None:
    retried = [
        {"task": "work", "attempts": 2, "history": [attempt(mem_mb=256), attempt(mem_mb=512)]},
        {"task": "work", "attempts": 3,
         "history": [attempt(mem_mb=256, time_s=60), attempt(mem_mb=512, time_s=60),
                     attempt(mem_mb=512, time_s=120)]},
        {"task": "total", "attempts": 2, "history": [attempt(mem_mb=256), attempt(mem_mb=256)]},
    ]  # fmt: skip
    assert task_retries(retried) == {
        "work": "2 retried, up to 3 attempts; mem 256M -> 512M, time 00:01:00 -> 00:02:00",
        "total": "1 retried, up to 2 attempts",
    }


def test_the_log_pane_shows_its_title_and_the_last_lines_that_fit() -> None:
    log = [f"line {n}" for n in range(50)]
    view = ViewState(show_log=True, log_title="log of work[1]", log_lines=log, failures=FAILED)
    lines = texts(layout(status(), view, 80, 12))
    assert len(lines) == 12
    assert "log of work[1]" in lines
    start = lines.index("log of work[1]")
    assert lines[start + 1 : -1] == [f"    line {n}" for n in range(50 - (10 - start), 50)]
    assert any("RuntimeError: boom" in line for line in lines), "failures keep a line"


def test_the_log_pane_is_hidden_until_toggled() -> None:
    view = ViewState(show_log=False, log_title="log of work[1]", log_lines=["secret"])
    assert not any("secret" in line for line in texts(layout(status(), view, 80, 30)))


def test_the_message_sits_above_the_keys() -> None:
    lines = texts(layout(status(), ViewState(message="cancel task 'work'? (y/n)"), 80, 20))
    assert lines[-2:] == ["cancel task 'work'? (y/n)", HELP]


def test_a_question_of_several_lines_keeps_its_last_line_in_a_tiny_window() -> None:
    question = "retry run r: 1 would run again\n  work: mem 256M -> 1G (flow file)\nretry? (y/n)"
    lines = texts(layout(status(), ViewState(message=question), 80, 20))
    assert lines[-4:-1] == question.splitlines()
    assert texts(layout(status(), ViewState(message=question), 80, 2))[0] == "retry? (y/n)"


@pytest.mark.parametrize(("width", "height"), [(1, 1), (2, 1), (5, 2), (10, 3), (20, 4), (30, 5)])
def test_a_tiny_window_gets_lines_that_fit(width: int, height: int) -> None:
    view = ViewState(show_log=True, log_title="log", log_lines=["x" * 200], message="m" * 300)
    lines = texts(layout(status(), view, width, height))
    assert len(lines) <= height
    assert all(len(line) <= max(0, width - 1) for line in lines)


def test_a_one_line_window_shows_the_question_before_anything_else() -> None:
    lines = texts(layout(status(), ViewState(message="cancel? (y/n)"), 40, 1))
    assert lines == ["cancel? (y/n)"]


def test_rows_scroll_to_keep_the_selected_task_visible() -> None:
    data = status(tasks=40)
    lines = texts(layout(data, ViewState(selected=30), 80, 10))
    assert len(lines) == 10
    assert any(line.startswith("> extra27") for line in lines)
    assert not any("prepare" in line for line in lines)


def test_control_characters_in_logs_are_not_drawn() -> None:
    view = ViewState(show_log=True, log_title="log", log_lines=["a\x1b[31mred\tb"])
    lines = texts(layout(status(), view, 80, 30))
    assert "    a[31mred    b" in lines


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.9, "59s"), (61, "1m01s"), (3725, "1h02m05s")]
)
def test_durations_read_as_hours_minutes_seconds(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
