"""Running: the worker, which runs elements of one task on a compute node. No store of its own.

Owns the worker's command line (``command``), importing the user's flow again (``loader``),
which elements a process runs (``selection``), running elements into result files
(``worker``) and where their output goes (``output``), and on Slurm a batch's end count,
whose last array task runs the next dispatcher turn in its own process (``last_out``). May
import ``rundir``, and ``dispatch.slurm_chain`` for that turn, loaded only when it runs.
Started as ``python -m reflow.running.worker``.
"""
