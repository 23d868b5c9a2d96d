"""Running: the last line the worker writes in an element's log, saying how it ended. No I/O.

``logs`` reads it back: a failed element whose log does not end with it was killed before
the worker could write it.
"""

from __future__ import annotations

from reflow.running.rundir.results import ResultError

FOOTER = "<== reflow: element "
"""How the last line of an element's log starts when the worker saw the element end."""


def footer(task: str, element: int, error: ResultError | None, duration_s: float) -> str:
    """The last line of an element's log: how it ended and after how long.

    ``<== reflow: element 3 of convert ended: done in 1.2 s``, or ``... ended: failed after
    0.3 s: ValueError: ...`` with the first line of the error's message.
    """
    if error is None:
        how = f"done in {duration_s:.1f} s"
    else:
        lines = error.message.strip().splitlines()
        how = f"failed after {duration_s:.1f} s: {error.type}"
        how += f": {lines[0][:200]}" if lines else ""
    return f"{FOOTER}{element} of {task} ended: {how}"
