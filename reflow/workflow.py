"""Facade: ``Workflow``, a ``Flow`` that can also be submitted and driven from a command line.

It only delegates: definition work to ``reflow.definition``, everything that runs to
``reflow.running`` (imported when needed, so ``--help`` and ``dag`` stay fast).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from reflow.definition.flow import Flow

if TYPE_CHECKING:
    from reflow.run import Run


class Workflow(Flow):
    """The runtime entry point: validates the graph, submits runs, and builds the CLI.

    Args:
        name: The workflow's name; run ids start with it.

    Example:
        >>> wf = Workflow("demo")
        >>> @wf.job()
        ... def hello() -> str:
        ...     return "hello"
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        caller = sys._getframe(1).f_globals
        self.defined_in: str = str(caller.get("__name__", ""))
        self.defined_file: str | None = caller.get("__file__")
        self.defined_as: str | None = getattr(caller.get("__spec__"), "name", None)
        if self.defined_in == "__main__" and self.defined_file:
            # A flow script reports every definition error at once, when its graph is built.
            self._collects_problems = True
            self._where = Path(self.defined_file).name
            # lazy: keeps --help, dag and describe fast
            from reflow.cli import install_error_hook

            install_error_hook()

    def submit(
        self,
        run_dir: str | Path | None = None,
        *,
        force: bool = False,
        force_tasks: Sequence[str] = (),
        verify: bool = False,
        cache_from: Sequence[str | Path] = (),
        **params: Any,
    ) -> Run:
        """Start a run and return its handle at once; the work goes on in the background.

        Args:
            run_dir: The run directory (default: the config's ``[defaults] run_dir``).
            force: Rerun every task, ignoring the cache.
            force_tasks: Rerun these tasks, ignoring their cache.
            verify: Check cached outputs (``Path`` existence, ``verify=``) before reuse.
            cache_from: Other run directories whose cached results this run may reuse,
                read only (default: the config's ``[cache] cache_from``).
            **params: The workflow's parameters by name (local ones as ``task_param``).

        Returns:
            A ``Run`` for ``status()``, ``wait()``, ``cancel()`` and ``retry()``.

        Raises:
            DefinitionError: When the workflow is not valid.
            UsageError: When parameters are missing, unknown or of the wrong type, or a
                ``cache_from`` folder holds no reflow store this reflow can read.
        """
        # lazy: keeps --help, dag and describe fast
        from reflow.run import Run
        from reflow.running.commands.submission import submit_workflow

        submitted = submit_workflow(
            self,
            run_dir=run_dir,
            params=params,
            force=force,
            force_tasks=force_tasks,
            verify=verify,
            cache_from=cache_from,
        )
        return Run(submitted.run_dir, submitted.run_id, executor=submitted.executor)

    def cli(self, argv: Sequence[str] | None = None, *, out: IO[str] | None = None) -> int:
        """Run the command line (``submit``, ``status``, ``dag``, ...) and return an exit code.

        Example:
            ``if __name__ == "__main__": raise SystemExit(wf.cli())``
        """
        # lazy: keeps --help, dag and describe fast
        from reflow.cli import run_cli

        return run_cli(self, argv, out=out)
