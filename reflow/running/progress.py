"""Running: follow a run until it ends, optionally printing progress per task."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO

from reflow.running.dispatcher import TERMINAL_RUN_STATES

_POLL_S = 0.2


def wait_for_run(
    run_dir: Path, run_id: str, *, timeout_s: float | None = None, out: IO[str] | None = None
) -> str:
    """Poll the store until the run ends or ``timeout_s`` passes; return the last state."""
    from reflow.running.commands import load_status

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    started = time.monotonic()
    last = ""
    while True:
        data = load_status(run_dir, run_id)
        if out is not None:
            line = "  ".join(
                f"{t['task']} {sum(t['counts'].get(s, 0) for s in ('done', 'cached'))}"
                f"/{t['elements'] if t['elements'] is not None else '?'}"
                for t in data["tasks"]
            )
            if line != last:
                out.write(f"[{time.monotonic() - started:6.1f}s] {line}\n")
                out.flush()
                last = line
        if data["state"] in TERMINAL_RUN_STATES:
            return str(data["state"])
        if data["dispatcher"].get("alive") is False:
            return "stalled"
        if deadline is not None and time.monotonic() > deadline:
            return str(data["state"])
        time.sleep(_POLL_S)
