"""Running: a finished element's output, read back from the store and decoded.

``run.result(task, index)``, ``run.results(task)`` and the ``result`` command read what the
store recorded for a run's elements, whether they ran in this run or came from the cache.
An element that has not succeeded is a one-line error that names its state and what to do.
The ``result`` command adds a note when a file its output names is gone.
"""

from __future__ import annotations

import json
import operator
import os
from pathlib import Path, PurePath
from typing import IO, Any

from reflow.definition.errors import UsageError, suggest
from reflow.planning.encoding import PATH_TAG, loads
from reflow.planning.paths import tagged_paths
from reflow.running.commands.hints import console_words, not_planned
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest, submitted_from
from reflow.running.store.records import InstanceRow
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import FINISHED, RUN_FINAL, InstanceState


def element_result(root: Path, run_id: str, task: str, index: int | None = None) -> Any:
    """The decoded output of one element of ``task`` (of a non-array task when ``index`` is None).

    Raises:
        UsageError: The run, task or element does not exist, or the element has not succeeded.
    """
    if index is not None:
        index = _element_number(task, index)
    rows, outputs, is_array, _folder = _read(root, run_id, task)
    return _value(root, run_id, _pick(rows, task, run_id, index, is_array=is_array), outputs)


def _element_number(task: str, index: Any) -> int:
    """``index`` as an int: an int, or what works as one (numpy's), never a bool.

    Raises:
        UsageError: It is anything else.
    """
    number = None if isinstance(index, bool) else getattr(type(index), "__index__", None)
    if number is None:
        raise UsageError(
            f"the element of {task} must be an int, not {index!r}",
            param="index",
            value=index,
            hint=f"pass e.g. result({task!r}, 0)",
        )
    return operator.index(index)


def task_results(root: Path, run_id: str, task: str) -> list[Any]:
    """The decoded outputs of every element of ``task``, in element order.

    Raises:
        UsageError: The run or task does not exist, or an element has not succeeded.
    """
    rows, outputs, _is_array, _folder = _read(root, run_id, task)
    return [_value(root, run_id, row, outputs) for row in rows]


def write_result(
    root: Path, run_id: str, task: str, index: int | None, *, as_json: bool, out: IO[str]
) -> str | None:
    """Print one element's output (or every element's, for an array task without an index).

    Returns:
        A note when a file or folder that the output names no longer exists, else None.
    """
    rows, outputs, is_array, folder = _read(root, run_id, task)
    value: Any
    if is_array and index is None:
        shown = rows
        value = [_value(root, run_id, row, outputs) for row in rows]
    else:
        shown = [_pick(rows, task, run_id, index, is_array=is_array)]
        value = _value(root, run_id, shown[0], outputs)
    if isinstance(value, str) and not as_json:
        out.write(value + "\n")
    else:
        out.write(json.dumps(value, indent=None if as_json else 2, default=_plain) + "\n")
    gone = _gone_paths(folder, [outputs[row.element] for row in shown])
    if not gone:
        return None
    if len(gone) == 1:
        what = f"1 path in this result no longer exists ({gone[0]})"
    else:
        what = f"{len(gone)} paths in this result no longer exist ({gone[0]}, ...)"
    return f"note: {what}; submit --verify reruns what made it"


_CHECKED_PATHS = 1_000
"""The paths of a result that ``result`` looks for, at most (one ``stat`` each)."""


def _gone_paths(cwd: str, texts: list[str]) -> list[str]:
    """The paths in the outputs ``texts`` that no longer exist, among the first checked.

    A relative path is below the folder the run was submitted from (``cwd``), as
    verification reads it; a path that cannot be looked at (no permission) is not gone.
    """
    gone: list[str] = []
    checked = 0
    for text in texts:
        if f'"{PATH_TAG}"' not in text:
            continue
        for path, _fingerprint in tagged_paths(json.loads(text)):
            if checked == _CHECKED_PATHS:
                return gone
            checked += 1
            full = os.path.join(cwd, path)  # noqa: PTH118 - the stored path, joined as verification does
            try:
                os.stat(full)  # noqa: PTH116 - the stored path, a str
            except (FileNotFoundError, NotADirectoryError):
                gone.append(full)
            except OSError:
                continue
    return gone


def _pick(
    rows: list[InstanceRow], task: str, run_id: str, index: int | None, *, is_array: bool
) -> InstanceRow:
    if index is None:
        if is_array:
            raise UsageError(
                f"{task} is an array task of {len(rows)} element(s); say which one",
                param="index",
                hint=f"pass an index from 0 to {len(rows) - 1},"
                f" or read them all: run.results({task!r})",
            )
        index = 0
    if not 0 <= index < len(rows):
        raise UsageError(
            f"{task} has no element {index} in run {run_id} (it has {len(rows)})",
            param="index",
            value=index,
            hint=f"pass an index from 0 to {len(rows) - 1}",
        )
    return rows[index]


def _plain(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(type(value).__name__)


def _read(
    root: Path, run_id: str, task: str
) -> tuple[list[InstanceRow], dict[int, str], bool, str]:
    """The task's rows, its elements' output texts, whether it is an array, where submit ran.

    Relative paths in the outputs are below the folder submit ran in.
    """
    store = SqliteStore.open(Path(root))
    try:
        run_state = store.run(run_id).state
        layout = RunLayout(Path(root), run_id)
        manifest = read_manifest(layout)
        tasks = {t["name"]: t for t in manifest["description"]["tasks"]}
        if task not in tasks:
            raise UsageError(
                f"run {run_id} has no task {task!r}",
                param="task",
                value=task,
                suggestion=suggest(task, tasks),
                hint=f"its tasks: {', '.join(tasks)}",
            )
        rows = store.instances(run_id, task)
        outputs = {e: text for e, text, _hash in store.element_outputs(run_id, task)}
    finally:
        store.close()
    if not rows:
        raise not_planned(task, run_id, root, ended=run_state if run_state in RUN_FINAL else None)
    return rows, outputs, bool(tasks[task]["array"]), submitted_from(manifest)


def _value(root: Path, run_id: str, row: InstanceRow, outputs: dict[int, str]) -> Any:
    where = f"{row.task}[{row.element}]"
    if row.state not in FINISHED:
        why = f" ({row.reason}: {row.error})" if row.error else ""
        hint, command = {
            InstanceState.FAILED: (
                "read its log",
                console_words("logs", run_id, root, row.task, str(row.element)),
            ),
            InstanceState.CANCELLED: ("run it again", console_words("retry", run_id, root)),
        }.get(row.state, ("follow the run", console_words("watch", run_id, root)))
        raise UsageError(
            f"{where} of run {run_id} is {row.state}{why}, so it has no result",
            value=row.state,
            hint=hint,
            command=command,
        )
    text = outputs.get(row.element)
    if text is None:
        raise UsageError(
            f"{where} of run {run_id} succeeded, but its output is no longer in the cache",
            hint="it was found stale by a later verification; submit the run again",
        )
    return loads(text, where=where)
