"""``watch`` on failures as a user sees it: escalations, the newest failures, choosing the
element whose log shows, and what a retry would change; a real run, the view in a tmux pane.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from reflow.running.rundir.layout import RunLayout
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import InstanceState
from tests.integration.flowfiles import cli, seed
from tests.integration.tmux_pane import (
    FAILING,
    HELP_START,
    RETRIES,
    WATCH_MARKS,
    Pane,
    wait_until,
)

pytestmark = WATCH_MARKS


def calls(run_dir: Path) -> Counter[str]:
    return Counter((run_dir / "calls").read_text().splitlines())


def submit_and_wait(flow: Path, tmp_path: Path, *args: str) -> tuple[Path, str]:
    run_dir = tmp_path / "runs"
    done = cli(flow, "submit", "--run-dir", str(run_dir), "--wait", *args, cwd=tmp_path)
    assert "submitted run " in done.stdout, done.stdout + done.stderr
    return run_dir, done.stdout.split("submitted run ", 1)[1].split()[0]


def test_watch_shows_the_resources_automatic_retries_raised(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    """The local executor never ends in OUT_OF_MEMORY, so the test writes into the store what
    a Slurm run's dispatcher records for one (attempts at 256M, 512M, then 1G) over the
    attempts of a real element that went out three times."""
    run_dir, run_id = submit_and_wait(RETRIES, tmp_path, "--fault", "oserror")
    assert calls(run_dir)["work 1"] == 3
    with SqliteStore.open(run_dir) as store:
        seed(store, [(
            "UPDATE attempts SET resources = ?, reason = ? WHERE run_id = ? AND task = 'work'"
            " AND element = 1 AND attempt = ?",
            [('{"mem_mb": 256}', "out_of_memory", run_id, 1),
             ('{"mem_mb": 512}', "out_of_memory", run_id, 2),
             ('{"mem_mb": 1024}', None, run_id, 3)],
        )])  # fmt: skip
    table = cli(RETRIES, "status", run_id, "--run-dir", str(run_dir), cwd=tmp_path).stdout
    assert "attempt 2/3: OUT_OF_MEMORY at 256M -> 512M" in table, table
    assert "attempt 3/3: OUT_OF_MEMORY at 512M -> 1G" in table, table

    pane = pane_factory([sys.executable, str(RETRIES), "watch", run_id, "--run-dir", str(run_dir)])
    screen = pane.wait_for(lambda s: any(line[2:].startswith("work ") for line in s), "the rows")
    [work] = [line for line in screen if line[2:].startswith("work ")]
    assert work.endswith("3/3  3 done  (1 retried, up to 3 attempts; mem 256M -> 1G)"), work
    [items] = [line for line in screen if line[2:].startswith("items ")]
    assert "retried" not in items
    pane.keys("q")
    assert pane.exit_code() == 0


def test_watch_lists_the_newest_failures_first_and_what_fits(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    run_dir, run_id = submit_and_wait(FAILING, tmp_path)
    assert calls(run_dir) == Counter({"fail 0": 1, "fail 1": 1, "fail 2": 1, "fail 3": 1})
    with SqliteStore.open(run_dir) as store:
        rows = store.instances_in(run_id, [InstanceState.FAILED])
    by_end = [row.element for row in sorted(rows, key=lambda row: row.ended or 0.0)]
    assert by_end == [0, 1, 2, 3], "the flow's elements end in index order"

    pane = pane_factory([sys.executable, str(FAILING), "watch", run_id, "--run-dir", str(run_dir)])
    screen = pane.wait_for(lambda s: "newest failures, latest first:" in s, "the failures")
    start = screen.index("newest failures, latest first:") + 1
    assert [re.sub(r"^  \d\d:\d\d:\d\d  ", "", line) for line in screen[start : start + 5]] == [
        "fail[3]  exception: KeyError: 'item 3'",
        "fail[2]  exception: ValueError: item 2 is even",
        "fail[1]  exception: KeyError: 'item 1'",
        "fail[0]  exception: ValueError: item 0 is even",
        "",
    ]

    pane.tmux("resize-window", "-t", "watch", "-x", "100", "-y", "8")
    small = pane.wait_for(lambda s: len(s) == 8 and s[-1].startswith(HELP_START), "a redraw")
    assert small[3] == "newest failures, latest first:"
    assert [line.split()[1] for line in small[4:7]] == ["fail[3]", "fail[2]", "fail[1]"]
    pane.keys("q")
    assert pane.exit_code() == 0


def log_pane(screen: list[str]) -> tuple[str, str]:
    """The log pane's title and its text."""
    start = next(n for n, line in enumerate(screen) if line.startswith("log of "))
    return screen[start], "\n".join(screen[start + 1 :])


def test_watch_moves_the_log_between_failed_elements_and_to_a_typed_index(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    run_dir, run_id = submit_and_wait(FAILING, tmp_path)
    pane = pane_factory([sys.executable, str(FAILING), "watch", run_id, "--run-dir", str(run_dir)])
    pane.wait_for(lambda s: "newest failures, latest first:" in s, "the view")
    pane.keys("Down", "l")

    def shows(element: int, which: str) -> Callable[[list[str]], bool]:
        def check(screen: list[str]) -> bool:
            if not any(line.startswith("log of ") for line in screen):
                return False
            title, text = log_pane(screen)
            return title.startswith(f"log of fail[{element}], {which}") and (
                f"fail element {element} starts" in text
            )

        return check

    screen = pane.wait_for(shows(0, "failed element 1 of 4"), "the first failed element's log")
    assert screen[-1].startswith(HELP_START)
    assert "n/p next/prev failed" in screen[-1]
    assert "ValueError: item 0 is even" in log_pane(screen)[1]
    pane.keys("n")
    screen = pane.wait_for(shows(1, "failed element 2 of 4"), "the next failed element's log")
    assert "KeyError: 'item 1'" in log_pane(screen)[1]
    assert "fail element 0 starts" not in log_pane(screen)[1]
    pane.keys("p", "p")
    pane.wait_for(shows(3, "failed element 4 of 4"), "back around to the last failed element")
    pane.keys("2")
    pane.wait_for(lambda s: "show element: 2_  (Enter show, Esc stop)" in s, "the typed index")
    pane.keys("Enter")
    pane.wait_for(shows(2, "failed element 3 of 4"), "the typed element's log")
    pane.keys("9", "Enter")
    pane.wait_for(lambda s: "no element 9: the task has elements 0-3" in s, "a refused index")
    pane.wait_for(shows(2, "failed element 3 of 4"), "the log kept")
    pane.keys("1", "3", "BSpace")
    pane.wait_for(lambda s: "show element: 1_  (Enter show, Esc stop)" in s, "a digit erased")
    pane.keys("Escape")
    pane.wait_for(lambda s: not any("show element:" in line for line in s), "typing stopped")
    pane.keys("n")
    pane.wait_for(shows(3, "failed element 4 of 4"), "the next failed element after the typed")
    pane.keys("Up")
    pane.wait_for(lambda s: any(line.startswith("log of items[0], first element") for line in s),
                  "another task's log")  # fmt: skip
    pane.keys("q")
    assert pane.exit_code() == 0


def test_watch_shows_what_a_retry_would_change_before_it_retries(
    tmp_path: Path, pane_factory: Callable[[list[str]], Pane]
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(FAILING.read_text())
    run_dir, run_id = submit_and_wait(flow, tmp_path)
    flow.write_text(FAILING.read_text().replace('mem="256M"', 'mem="1G"'))
    dry = cli(flow, "retry", run_id, "--run-dir", str(run_dir), "--dry-run", cwd=tmp_path)
    assert dry.stdout.splitlines()[0] == "fail: mem 256M -> 1G (flow file)"

    pane = pane_factory([sys.executable, str(flow), "watch", run_id, "--run-dir", str(run_dir)])
    pane.wait_for(lambda s: "newest failures, latest first:" in s, "the view")
    pane.keys("r")
    screen = pane.wait_for(lambda s: s[-2] == "retry now? (y/n)", "the retry's question")
    assert screen[-4].startswith(f"retry {run_id}: 4 failed or cancelled instance(s) would")
    assert screen[-3] == "  fail: mem 256M -> 1G (flow file)"
    pane.keys("n")
    pane.wait_for(lambda s: s[-2] == "retry not started", "the declined retry")
    assert calls(run_dir)["fail 0"] == 1, "nothing ran again"

    pane.keys("r")
    pane.wait_for(lambda s: s[-2] == "retry now? (y/n)", "the question again")
    pane.keys("y")
    pane.wait_for(lambda s: "retry: 4 instance(s) will run again" in s, "the retry's outcome")
    wait_until(lambda: sum(calls(run_dir).values()) == 8, "the four elements to run again")
    assert calls(run_dir) == Counter({"fail 0": 2, "fail 1": 2, "fail 2": 2, "fail 3": 2})
    manifest = json.loads(RunLayout(run_dir, run_id).manifest.read_text())
    [fail] = [t for t in manifest["description"]["tasks"] if t["name"] == "fail"]
    assert fail["resources"]["mem_mb"] == 1024
    pane.keys("q")
    assert pane.exit_code() == 0
