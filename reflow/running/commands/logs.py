"""Running: the ``logs`` command: an element's log, its last lines, or its lines as they come.

It prints the element's own log (for a cached element, the log of the run that made its
output) and, while an element of a packed array task runs, what it printed so far into the
array task's shared output (``rundir/element_logs.py``); a line from the store when the
element's process was killed or cancelled before the worker could end the log, then the
scheduler's output file of its array task when that has text.
``--follow`` polls the log and the store, never the scheduler.
"""

from __future__ import annotations

import codecs
import os
import re
import time
from pathlib import Path
from typing import IO

from reflow.definition.errors import UsageError, suggest
from reflow.running.commands.exits import EXIT_INTERRUPTED
from reflow.running.commands.hints import not_planned
from reflow.running.executors.slurm_script import output_path
from reflow.running.rundir.element_logs import FOOTER, running_text
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest
from reflow.running.store.records import InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import ACTIVE, FAILED, RUN_FINAL, InstanceState, RunState

FOLLOW_POLL_S = 0.5
"""How often ``--follow`` reads the log and the store."""
_BLOCK = 64 * 1024
_ARRAY_JOB = re.compile(r"\d+_\d+")


def show_logs(
    root: Path,
    run_id: str,
    task: str,
    index: int | None,
    *,
    out: IO[str],
    tail: int | None = None,
    follow: bool = False,
) -> int:
    """Print the log of element ``index`` of ``task`` (default: its first failed element).

    Args:
        root: The run directory.
        run_id: The run.
        task: The task's name.
        index: The element; None picks the first failed element, else the first.
        out: Where to print.
        tail: Print only the last ``tail`` lines of each log.
        follow: Keep printing the element's new lines until it ends.

    Returns:
        0, or 130 when Ctrl-C stopped ``--follow``.

    Raises:
        UsageError: No such run, task or element, or a negative ``tail``.
    """
    if tail is not None and tail < 0:
        raise UsageError(f"--tail {tail}: give a number of lines, 0 or more", value=tail)
    with SqliteStore.open(root) as store:
        state = store.run(run_id).state
        ended = state if state in RUN_FINAL else None
        chosen = _choose(RunLayout(root, run_id), task, index, store.instances(run_id, task), ended)
        cached = chosen.state is InstanceState.CACHED
        origin = store.output_origin(chosen.identity) if cached else None
    layout = RunLayout(root, run_id)
    path, note = _log_of(layout, chosen, origin)
    out.write(f"==> {path} ({note})\n")
    if follow and chosen.state in ACTIVE:
        try:
            chosen = _follow(root, run_id, chosen, path, tail, out)
        except KeyboardInterrupt:
            out.flush()
            return EXIT_INTERRUPTED
    else:
        text = _packed_text(layout, chosen, path) if origin is None else None
        if text is not None:
            out.write(_last_lines(text, tail))
        else:
            _write_log(path, chosen, tail, out)
    _write_killed(path, chosen, out)
    _write_scheduler_output(layout, chosen, tail, out)
    return 0


def _choose(
    layout: RunLayout,
    task: str,
    index: int | None,
    rows: list[InstanceRow],
    ended: RunState | None,
) -> InstanceRow:
    if not rows:
        names = [t["name"] for t in read_manifest(layout)["description"]["tasks"]]
        if task in names:
            raise not_planned(task, layout.run_id, layout.root, ended=ended)
        raise UsageError(
            f"run {layout.run_id} has no instances of task {task!r}",
            param="task",
            value=task,
            suggestion=suggest(task, names),
            hint=f"tasks: {', '.join(names)}",
        )
    if index is None:
        failed = [r for r in rows if r.state is InstanceState.FAILED]
        return (failed or rows)[0]
    matching = [r for r in rows if r.element == index]
    if not matching:
        raise UsageError(
            f"task {task!r} has no element {index}",
            param="index",
            value=index,
            hint=f"elements are 0 to {len(rows) - 1}",
        )
    return matching[0]


def _log_of(
    layout: RunLayout, row: InstanceRow, origin: tuple[str, int | None, str] | None
) -> tuple[Path, str]:
    """The log to show and what the header says of it: a cached element's is its maker's.

    An output taken from another run directory (``--cache-from``) has its log there.
    """
    if origin is None:
        return layout.log(row.task, row.element), str(row.state)
    maker, element, where = origin
    root = Path(where) if where else layout.root
    path = RunLayout(root, maker).log(row.task, row.element if element is None else element)
    elsewhere = f" in {where}" if where else ""
    return path, f"cached: the log of run {maker}{elsewhere}, which made this result"


def _write_log(path: Path, row: InstanceRow, tail: int | None, out: IO[str]) -> None:
    if path.exists():
        out.write(_read(path, tail))
    elif row.state in ACTIVE:
        out.write("(no log yet: the element has not started)\n")
    else:
        out.write("(no output)\n")


def _follow(
    root: Path, run_id: str, row: InstanceRow, path: Path, tail: int | None, out: IO[str]
) -> InstanceRow:
    """Print the log, then its new lines every ``FOLLOW_POLL_S`` until the element ends.

    The store is read before the file, so the lines written before the element ended are
    all printed by the last round. Returns the element's row as it ended.
    """
    layout = RunLayout(root, run_id)
    text = _packed_text(layout, row, path)
    position = 0
    if text is not None:
        position = len(text)
        out.write(_last_lines(text, tail))
    elif path.exists():
        position = path.stat().st_size
        out.write(_read(path, tail, end=position))
    else:
        out.write("(no log yet: the element has not started; waiting for it)\n")
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    packed = text is not None
    while True:
        row, is_active = _current(root, run_id, row)
        packed = packed or _packed_text(layout, row, path) is not None
        if packed:
            logged = _whole(path)  # before the shared output (see _write_grown)
            position = _write_grown(logged + running_output(layout, row), position, decoder, out)
        else:
            position = _write_new(path, position, decoder, out)
        if not is_active:
            return row
        out.flush()
        time.sleep(FOLLOW_POLL_S)


def running_output(layout: RunLayout, row: InstanceRow) -> bytes:
    """What a running element of a packed array task printed so far, not yet in its log.

    b"" for any other element: its text, if any, is all in its log.
    """
    if row.state not in ACTIVE or not row.batch or not _ARRAY_JOB.fullmatch(row.job_id or ""):
        return b""
    return running_text(layout, row.task, row.element, str(row.batch))


def _packed_text(layout: RunLayout, row: InstanceRow, path: Path) -> bytes | None:
    """The log and then the running segment of a running packed element; None for others."""
    if not running_output(layout, row):
        return None
    logged = _whole(path)  # before the shared output (see _write_grown)
    return logged + running_output(layout, row)


def _write_grown(
    text: bytes, position: int, decoder: codecs.IncrementalDecoder, out: IO[str]
) -> int:
    """Print what ``text`` (log and running segment) holds after byte ``position``.

    It never starts over: while a finished element's segment is being copied into its log,
    the text is briefly shorter than what was printed. The log is read before the shared
    output, so a segment copied between the two reads is missed once, never read twice.
    """
    if len(text) <= position:
        return position
    out.write(decoder.decode(text[position:]))
    return len(text)


def _whole(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _last_lines(data: bytes, tail: int | None) -> str:
    if tail is not None:
        data = b"".join(data.splitlines(keepends=True)[-tail:]) if tail else b""
    return data.decode(errors="replace")


def _current(root: Path, run_id: str, row: InstanceRow) -> tuple[InstanceRow, bool]:
    """The element's row now, and whether it may still write its log (its run goes on)."""
    with SqliteStore.open(root) as store:
        rows = store.instances(run_id, row.task, element=row.element)
        ended = store.run(run_id).state in RUN_FINAL
    now = rows[0] if rows else row
    return now, now.state in ACTIVE and not ended


def _write_new(path: Path, position: int, decoder: codecs.IncrementalDecoder, out: IO[str]) -> int:
    """Print what was appended to ``path`` after byte ``position``; return the new end."""
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size < position:
                position = 0  # a new file in its place
            handle.seek(position)
            data = handle.read()
    except FileNotFoundError:
        return position
    out.write(decoder.decode(data))
    return position + len(data)


def _read(path: Path, tail: int | None, *, end: int | None = None) -> str:
    """The text of ``path`` up to byte ``end``, or its last ``tail`` lines."""
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END) if end is None else end
        start = end if tail is not None else 0
        data = b""
        while start > 0 and data.count(b"\n") <= (tail or 0):
            start = max(0, start - _BLOCK)
            handle.seek(start)
            data = handle.read(end - start)
        if tail is None:
            handle.seek(0)
            data = handle.read(end)
    return _last_lines(data, tail)


def _write_killed(path: Path, row: InstanceRow, out: IO[str]) -> None:
    """Say how a failed or cancelled element ended when its process could not end the log."""
    if row.state not in FAILED or not path.exists():
        return
    if _read(path, 1).startswith(FOOTER):
        return
    error = row.error or ""
    if row.state is InstanceState.CANCELLED:
        how = f"was stopped before it ended: {error or row.state}"
    elif "killed by " in error:
        how = "was " + error[error.index("killed by ") :]
    else:
        how = f"ended before the worker could say how: {row.reason or 'no reason'}: {error}"
    out.write(f"<== reflow: the element's process {how}\n")


def _write_scheduler_output(
    layout: RunLayout, row: InstanceRow, tail: int | None, out: IO[str]
) -> None:
    """Slurm's own output of the element's array task, kept only when it is not empty."""
    job_id = row.job_id or ""
    if row.state is InstanceState.CACHED or not _ARRAY_JOB.fullmatch(job_id):
        return
    scheduler = output_path(layout.logs_dir(row.task), row.task, job_id)
    text = _read(scheduler, tail) if scheduler.is_file() else ""
    if text:
        out.write(f"==> {scheduler} (the scheduler's output of job {job_id})\n{text}")
