"""Running: the dispatcher: one turn, how turns are driven, cancel, retry and dry-run.

Owns the turn (``dispatcher``: ingest -> reconcile -> plan -> persist -> submit -> settle,
with ``intake`` for the first two steps, ``snapshot`` for what planning reads and
``submitter`` for submitting), automatic retries (``retry_rule``, the one rule, applied in a
turn by ``retrier``), how turns run (``drive``: a detached local process; ``slurm_chain``: a
Slurm job that submits its successor; ``liveness``: whether a dispatcher still runs; ``locks``:
the dispatcher's and the run directory's locks), the dispatcher's command line (``command``),
``control`` (cancel, retry, with ``option_changes`` and ``interpreter`` for what a retry
re-reads), ``packing``, ``verification`` and ``dry_run``. The dispatcher's record is the
store's (``store.records.DispatcherRecord``). May import
``store``, ``rundir``, ``executors``, ``worker``, ``config`` and ``process``; never
``commands``. Started as ``python -m reflow.running.dispatch``.
"""
