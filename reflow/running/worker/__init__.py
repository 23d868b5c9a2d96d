"""Running: the worker, which runs elements of one task on a compute node. Never the store.

Owns the worker's command line (``command``), importing the user's flow again (``loader``)
and running elements into result files (``worker``). May import ``rundir``. Started as
``python -m reflow.running.worker``.
"""
