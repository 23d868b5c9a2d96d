"""Running: the worker, which runs elements of one task on a compute node. Never the store.

Owns the worker's command line (``command``), importing the user's flow again (``loader``),
which elements a process runs (``selection``), running elements into result files
(``worker``), and on Slurm a batch's end count, whose last array task starts the next
dispatcher turn (``last_out``). May import ``rundir``, and ``dispatch.command`` for that
turn's command line. Started as ``python -m reflow.running.worker``.
"""
