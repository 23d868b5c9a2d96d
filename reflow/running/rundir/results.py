"""Running: an element's result (``reflow/result/1``), written and checked. No store.

A worker writes one result file per element it ran (temp name, then rename) and the
dispatcher reads it back. A packed Slurm array task instead appends the same document as one
line of its *bundle* (see ``bundles``); the documents of a bundle's lines are checked here
too (``decode_lines``, ``first_records``).
Reading never raises for a bad file: a truncated, non-JSON, wrongly shaped or foreign file
comes back as a ``ResultProblem`` with a one-line reason, so one bad file cannot stop a
dispatcher turn; in a bundle, a torn or bad line is skipped (its element counts as having
no result). This module never touches the store.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

from reflow.planning.encoding import JSON, LocatedEncodingError, to_text
from reflow.planning.identity import value_hash
from reflow.running.rundir.layout import write_atomic

FORMAT = "reflow/result/1"

ProblemKind = Literal["missing", "unreadable", "malformed", "foreign"]


class ResultError(NamedTuple):
    """Why an element failed: the exception's type name, message and traceback.

    ``classes`` holds the qualified name of every class in the exception's MRO
    (``builtins.OSError``, ``builtins.Exception``, ...), which ``retry_on=`` is matched
    against.
    """

    type: str
    message: str
    traceback: str = ""
    classes: tuple[str, ...] = ()


class ResultRecord(NamedTuple):
    """One element's result as its worker reported it.

    ``output`` is the tagged JSON form (not decoded) and ``output_text`` its canonical text,
    which is what the store keeps; both are ``None`` for a failure.
    """

    ok: bool
    output: JSON
    output_text: str | None
    output_hash: str | None
    error_type: str | None
    error_message: str | None
    traceback: str | None
    error_classes: tuple[str, ...]
    started: float
    ended: float
    host: str
    pid: int
    peak_rss_mb: float
    cpu_s: float | None = None


class ResultProblem(NamedTuple):
    """A result file that cannot be used, and why (one line)."""

    path: Path
    kind: ProblemKind
    reason: str


def result_text(
    *,
    run_id: str,
    task: str,
    element: int,
    batch: str,
    output: JSON,
    output_hash: str | None,
    error: ResultError | None,
    started: float,
    ended: float,
    host: str,
    pid: int,
    peak_rss_mb: float,
    cpu_s: float | None = None,
) -> str:
    """Return the text of a result file; ``error`` is ``None`` exactly for a success.

    ``cpu_s`` is the CPU time (user + system) the element took; files written before it was
    recorded have none, and read back with ``cpu_s`` None.

    Raises:
        LocatedEncodingError: ``output`` is not JSON data (a bug in the caller).
    """
    document = {
        "format": FORMAT,
        "run_id": run_id,
        "task": task,
        "element": element,
        "batch": batch,
        "ok": error is None,
        "output": output if error is None else None,
        "output_hash": output_hash if error is None else None,
        "error": None
        if error is None
        else {
            "type": _utf8(error.type),
            "message": _utf8(error.message),
            "traceback": _utf8(error.traceback),
            "classes": [_utf8(name) for name in error.classes],
        },
        "started": started,
        "ended": ended,
        "host": _utf8(host),
        "pid": pid,
        "peak_rss_mb": peak_rss_mb,
    }
    if cpu_s is not None:
        document["cpu_s"] = cpu_s
    return to_text(document, where="result")


HOLD_RESULTS_ENV = "REFLOW_TEST_HOLD_RESULTS"
"""For tests only: a folder to write result files into instead, at their absolute path
below it, so that a test can make them visible later, as a slow shared file system would."""


def write_result(path: Path, text: str) -> None:
    """Write a result file atomically (see ``result_text``)."""
    held = os.environ.get(HOLD_RESULTS_ENV)
    if held:
        path = Path(held) / path.resolve().relative_to(path.resolve().anchor)
        path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def read_result(
    path: Path, *, run_id: str, task: str, element: int, batch: str
) -> ResultRecord | ResultProblem:
    """Read and check one result file; never raises for a bad file.

    Args:
        path: The file, normally ``RunLayout.result(task, element, batch)``.
        run_id: The run it must belong to.
        task: The task it must belong to.
        element: The element it must belong to.
        batch: The batch it must belong to.

    Returns:
        The record, or a ``ResultProblem`` whose ``kind`` is ``missing`` (no file yet),
        ``unreadable``, ``malformed`` (truncated, not JSON, wrong shape or types) or
        ``foreign`` (a valid file of another run, task, element or batch).
    """
    raw = read_bytes(path, "no result file")
    if isinstance(raw, ResultProblem):
        return raw
    try:
        data = DECODER.decode(raw.decode())
    except (UnicodeDecodeError, ValueError) as err:
        reason = f"not JSON (truncated or corrupt): {err}"
        return ResultProblem(path=path, kind="malformed", reason=reason)
    try:
        return _record(data, {"run_id": run_id, "task": task, "element": element, "batch": batch})
    except _BadResultError as err:
        return ResultProblem(path=path, kind=err.kind, reason=str(err))


def read_bytes(path: Path, missing: str) -> bytes | ResultProblem:
    """The bytes of a result file or bundle, or the problem: ``missing`` as reason, unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return ResultProblem(path=path, kind="missing", reason=missing)
    except OSError as err:
        return ResultProblem(path=path, kind="unreadable", reason=f"cannot read: {err}")


def decode_lines(lines: list[bytes]) -> list[Any]:
    """The documents of a bundle's complete lines; None for a line that is not JSON.

    One parse of all the lines as a JSON list when every line is whole, else line by line.
    """
    try:
        return list(DECODER.decode("[" + b",".join(lines).decode() + "]"))
    except (UnicodeDecodeError, ValueError):
        return [_line(line) for line in lines]


def _line(line: bytes) -> Any:
    """One bundle line parsed, or None when it is not JSON."""
    try:
        return DECODER.decode(line.decode())
    except (UnicodeDecodeError, ValueError):
        return None


def first_records(
    documents: list[Any], *, run_id: str, task: str, batch: str
) -> dict[int, ResultRecord]:
    """``element -> record`` of a bundle's valid documents; the first of an element wins."""
    records: dict[int, ResultRecord] = {}
    expected: dict[str, Any] = {"run_id": run_id, "task": task, "batch": batch}
    for data in documents:
        element = data.get("element") if isinstance(data, dict) else None
        if type(element) is int and element not in records:
            try:
                records[element] = _record(data, {**expected, "element": element})
            except _BadResultError:
                continue
    return records


def _classes(error: dict[str, Any]) -> tuple[str, ...]:
    """The failure's class names; a result written before they were recorded has none."""
    names = error.get("classes") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _BadResultError("holds error.classes that is not a list of names")
    return tuple(names)


class _BadResultError(Exception):
    def __init__(self, reason: str, kind: ProblemKind = "malformed") -> None:
        super().__init__(reason)
        self.kind: ProblemKind = kind


def _record(data: Any, expected: dict[str, Any]) -> ResultRecord:
    if not isinstance(data, dict):
        raise _BadResultError(f"holds a JSON {type(data).__name__}, not an object")
    if data.get("format") != FORMAT:
        raise _BadResultError(f"has format {data.get('format')!r}, not {FORMAT!r}", "foreign")
    for key, want in expected.items():
        found = _field(data, key, int if key == "element" else str)
        if found != want:
            raise _BadResultError(f"belongs to {key} {found!r}, not {want!r}", "foreign")
    ok = _field(data, "ok", bool)
    if ok:
        output, output_text, output_hash = _output(data)
        error: dict[str, Any] = {"type": None, "message": None, "traceback": None}
    else:
        output, output_text, output_hash = None, None, None
        error = _field(data, "error", dict)
        for key in ("type", "message", "traceback"):
            _field(error, key, str, where="error.")
    started, ended = _field(data, "started", float), _field(data, "ended", float)
    return ResultRecord(
        ok=ok,
        output=output,
        output_text=output_text,
        output_hash=output_hash,
        error_type=error["type"],
        error_message=error["message"],
        traceback=error["traceback"],
        error_classes=_classes(error),
        started=started,
        ended=ended,
        host=_field(data, "host", str),
        pid=_field(data, "pid", int),
        peak_rss_mb=_field(data, "peak_rss_mb", float),
        cpu_s=_field(data, "cpu_s", float) if "cpu_s" in data else None,
    )


def _output(data: dict[str, Any]) -> tuple[JSON, str, str]:
    if data.get("error") is not None:
        raise _BadResultError("reports ok but carries an error")
    if "output" not in data:
        raise _BadResultError("reports ok but has no output")
    output = data["output"]
    output_hash = _field(data, "output_hash", str)
    try:
        text = to_text(output, where="output")
    except LocatedEncodingError as err:
        raise _BadResultError(f"has an output that is not JSON: {err}") from err
    if value_hash(text) != output_hash:
        raise _BadResultError("has an output that does not match its output_hash")
    return output, text, output_hash


def _field(data: dict[str, Any], key: str, kind: type, *, where: str = "") -> Any:
    if key not in data:
        raise _BadResultError(f"has no field {where}{key}")
    value = data[key]
    if kind is float:
        valid = type(value) in (int, float) and math.isfinite(value)
    else:
        valid = type(value) is kind
    if not valid:
        shown = type(value).__name__
        raise _BadResultError(f"has {where}{key} of type {shown}, not {kind.__name__}")
    return float(value) if kind is float else value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""Reads result documents: NaN and Infinity, which JSON lacks, are rejected."""


def _utf8(text: str) -> str:
    """Keep text writable as UTF-8: a lone surrogate (odd bytes decoded) is escaped."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode()


def result_names(folder: Path) -> set[str]:
    """The names of the result files in a task's results folder: one directory read."""
    try:
        return {entry.name for entry in os.scandir(folder)}
    except FileNotFoundError:
        return set()
