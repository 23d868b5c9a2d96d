"""Running: the store, the one source of truth for runs, instances and cached outputs.

Owns the sqlite schema and its migrations (``schema``, ``migrations``), the instance and run
states with their allowed transitions (``states``), the rows it returns (``records``) and
``SqliteStore`` (``sqlite``): every statement that changes ``runs``, ``instances``,
``tasks`` or ``outputs`` lives here, behind methods named by intent. May import ``rundir``.
"""
