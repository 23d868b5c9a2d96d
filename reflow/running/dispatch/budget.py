"""Running: the submit budget of a Slurm run, the most of its jobs it keeps queued at once.

The budget is ``[executor] submit_budget`` when set; otherwise the cluster's limit (the
smallest ``MaxSubmitJobs`` of the user's associations and their QOS, less one job for the
dispatcher's successor), else ``DEFAULT_SUBMIT_BUDGET``. The cluster is asked once per run,
in its first turn, and the answer is kept in the run's dispatcher record.

Asking takes two ``sacctmgr`` calls, which go through the accounting daemon and its database
and can take longer than the whole turn. So the first turn asks in a background thread and
does not wait for the answer while the jobs it queues stay within ``FIRST_TURN_BUDGET``, which
with the dispatcher's successors stays below the limit of every cluster that has one worth the
name; only a first turn that queues more waits. Either way the turn keeps the answer for its
successors.
"""

from __future__ import annotations

import getpass
import os
import threading

from reflow.running.config import Config
from reflow.running.executors.slurm import SlurmExecutor
from reflow.running.store.records import DispatcherRecord

DEFAULT_SUBMIT_BUDGET = 5000
"""Most jobs a run keeps queued at once when neither config nor sacctmgr says."""
FIRST_TURN_BUDGET = 20
"""Jobs a first turn queues before it waits for the cluster's answer."""


class AskedBudget:
    """The cluster's submit limit, asked in a background thread as soon as this is made."""

    def __init__(self, executor: SlurmExecutor) -> None:
        self._answer: list[int | None] = []
        self._thread = threading.Thread(
            target=lambda: self._answer.append(executor.submit_limit(_user())),
            name="reflow-submit-limit",
            daemon=True,
        )
        self._thread.start()

    def __call__(self, wanted: int) -> int:
        """The budget for a turn that would have ``wanted`` jobs queued: waits only if needed."""
        if wanted <= FIRST_TURN_BUDGET and self._thread.is_alive():
            return FIRST_TURN_BUDGET
        return self.answer()

    def answer(self) -> int:
        """The run's budget from the cluster's limit, once sacctmgr has answered."""
        self._thread.join()
        limit = self._answer[0] if self._answer else None  # a failed thread: no limit known
        return DEFAULT_SUBMIT_BUDGET if limit is None else max(1, limit - 1)


def submit_budget(
    config: Config, info: DispatcherRecord, executor: SlurmExecutor
) -> int | AskedBudget:
    """The run's budget: config, else the one its dispatcher record keeps, else asked now."""
    if config.submit_budget is not None:
        return config.submit_budget
    known = info.submit_budget
    if known is not None and known > 0:
        return known
    return AskedBudget(executor)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
