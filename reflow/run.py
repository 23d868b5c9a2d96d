"""Facade: ``Run``, the handle of one submitted run, for notebooks and scripts.

It only delegates to ``reflow.running``: status, wait, cancel, retry, results. It remembers the run
directory and the run id so that no call needs more arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from reflow.definition.errors import UsageError

if TYPE_CHECKING:
    from reflow.running.dispatch.control import Retried


class WaitInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``Run.wait()``; the run goes on, and the line saying so is printed.

    A flow script run as ``python flow.py`` ends on it quietly with exit code 130 (its
    ``sys.excepthook``, see ``reflow.cli``); a notebook cell or a REPL line stops as on any
    ``KeyboardInterrupt``.
    """


class Run:
    """A submitted run.

    Args:
        run_dir: The run directory the run lives in.
        run_id: The run's id, or ``"latest"`` for the run directory's newest run (of any
            workflow), as on the command line.
        executor: The executor the run was submitted with.

    Raises:
        UsageError: ``"latest"`` was asked of a run directory that holds no runs yet.

    Example:
        >>> run = wf.submit(run_dir="/scratch/demo", start="2025-01-01")  # doctest: +SKIP
        >>> run.wait()  # doctest: +SKIP
        'succeeded'
    """

    def __init__(self, run_dir: str | Path, run_id: str, *, executor: str = "") -> None:
        self.run_dir = Path(run_dir)
        self.run_id = _chosen_run(self.run_dir, run_id)
        self.executor = executor

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r}, {self.run_id!r})"

    def status(
        self, *, as_dict: bool = False, file: IO[str] | None = None
    ) -> dict[str, Any] | None:
        """Print the status table, or return it as a dict with ``as_dict=True``."""
        # lazy: importing reflow stays fast; the running layer loads on first use
        from reflow.running.commands.status import load_status, render_status

        data = load_status(self.run_dir, self.run_id)
        if as_dict:
            return data
        (file or sys.stdout).write(render_status(data))
        return None

    def wait(
        self, timeout: float | None = None, *, progress: bool = False, file: IO[str] | None = None
    ) -> str:
        """Block until the run ends (or ``timeout`` seconds pass); return its state.

        Interrupting the wait (Ctrl-C, a notebook's stop button) does not stop the run: one
        line on stderr says how to follow or cancel it, and ``KeyboardInterrupt`` is raised
        again (a ``WaitInterrupted``) without reflow's frames in its traceback, so that a cell
        stops; a flow script run as ``python flow.py`` ends on it with the line alone and
        exit code 130.
        """
        # lazy: importing reflow stays fast; the running layer loads on first use
        from reflow.running.commands.hints import interrupted_line
        from reflow.running.commands.progress import wait_for_run

        out = (file or sys.stdout) if progress else None
        try:
            return wait_for_run(self.run_dir, self.run_id, timeout_s=timeout, out=out)
        except KeyboardInterrupt:
            after_echo = "\n" if sys.stderr.isatty() else ""  # the terminal echoed ^C
            sys.stderr.write(after_echo + interrupted_line(self.run_id, self.run_dir) + "\n")
        raise WaitInterrupted(f"stopped following run {self.run_id}; it goes on")

    def cancel(self, task: str | None = None) -> int:
        """Cancel all active work, or one task's; return how many instances were cancelled."""
        # lazy: importing reflow stays fast; the running layer loads on first use
        from reflow.running.dispatch.control import cancel_run

        return cancel_run(self.run_dir, self.run_id, task)

    def retry(
        self,
        task: str | None = None,
        *,
        verify: bool = True,
        resources: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Retried:
        """Rerun failed and cancelled instances (of ``task`` when given) and resume the run.

        With ``verify`` (the default) cached upstream outputs are checked first; stale ones
        are recomputed along with everything downstream of them. The rerun asks for the
        resources the flow file declares now and the config's defaults and interpreter;
        ``resources`` (``{"convert": {"mem": "8G", "time": "02:00:00"}}``) goes over both.

        Returns:
            How many instances run again, an ``int`` that also carries ``changes`` (each
            option the retry changed: ``task``, ``option``, ``old``, ``new``, ``source``),
            ``notes`` and ``resumed``.

        Raises:
            UsageError: ``task`` or a ``resources`` entry is wrong; nothing was changed.
        """
        # lazy: importing reflow stays fast; the running layer loads on first use
        from reflow.running.dispatch.control import retry

        return retry(self.run_dir, self.run_id, task, verify=verify, resources=resources)

    def result(self, task: str, index: int | None = None) -> Any:
        """The output of one finished element, decoded (``Path`` values come back as ``Path``).

        ``index`` picks the element of an array task; leave it out for a single task. Cached
        elements count as finished.

        Raises:
            UsageError: The task or element does not exist, or the element has not succeeded
                (the message names its state).
        """
        # lazy: importing reflow stays fast; the running layer loads on first use
        from reflow.running.commands.results import element_result

        return element_result(self.run_dir, self.run_id, task, index)

    def results(self, task: str) -> list[Any]:
        """The outputs of every element of ``task``, decoded, in element order.

        Raises:
            UsageError: The task does not exist, or one of its elements has not succeeded.
        """
        # lazy: importing reflow stays fast; the running layer loads on first use
        from reflow.running.commands.results import task_results

        return task_results(self.run_dir, self.run_id, task)

    def _repr_html_(self) -> str:
        # lazy: importing reflow stays fast (every worker imports it with the flow file)
        import html

        from reflow.running.commands.status import load_status

        data = load_status(self.run_dir, self.run_id)
        rows = "".join(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                html.escape(t["task"]),
                "-" if t["elements"] is None else t["elements"],
                html.escape(", ".join(f"{k}: {v}" for k, v in t["counts"].items()) or "waiting"),
            )
            for t in data["tasks"]
        )
        return (
            f"<div><b>run {html.escape(self.run_id)}</b>: {html.escape(data['state'])}"
            "<table><tr><th>task</th><th>elements</th><th>states</th></tr>"
            f"{rows}</table></div>"
        )


def _chosen_run(run_dir: Path, run_id: str) -> str:
    """``run_id``, or the newest run's id in ``run_dir`` for ``"latest"``.

    Raises:
        UsageError: ``"latest"`` of a folder that holds no runs (nothing is created there).
    """
    # lazy: importing reflow stays fast; the command line and the running layer load on use
    from reflow.definition.cli_builder import LATEST

    if run_id != LATEST:
        return run_id
    # lazy: the running layer loads on first use
    from reflow.running.store.sqlite import SqliteStore

    latest = SqliteStore.latest_in(run_dir)
    if latest is None:
        raise UsageError(f"{run_dir} holds no runs yet", hint="submit one first")
    return latest
