"""Running: the store, the one source of truth for runs, instances and cached outputs.

Owns the sqlite schema and its migrations (``schema``, ``migrations``), the instance and run
states with their allowed transitions (``states``), the rows it reads and writes (``records``) and
``SqliteStore`` (reads in ``sqlite``, writes in ``writes`` and, for what jobs did,
``job_writes``; the ``attempts`` table in ``attempts``; the lookup of cached outputs by
identity in ``outputs``): every statement that changes ``runs``, ``instances``, ``tasks``
or ``outputs`` lives here, behind methods named by intent. May import ``rundir``.
"""
