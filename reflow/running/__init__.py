"""Running layer: every I/O of reflow, in rooms by concept.

- ``rundir``: the run directory's paths and file formats (layout, manifest, inputs,
  results). Imports nothing else from ``running``.
- ``store``: the sqlite store: schema, migrations, the instance state machine, and every
  statement that changes runs, instances or cached outputs. May import ``rundir``.
- ``executors``: start work and report on it (local processes, Slurm, dry-run). May import
  ``rundir``, ``process`` and ``worker.command``.
- ``worker``: runs elements on a compute node and writes result files; its elements never
  open the store, only the turn a batch's last array task runs after them. May import
  ``rundir``, and ``dispatch.slurm_chain`` for that turn.
- ``dispatch``: the dispatcher turn (ingest, reconcile, plan, persist, submit, settle), how
  turns are driven (a local process, a Slurm chain), cancel, retry and dry-run. May import
  everything above, ``config`` and ``process``.
- ``commands``: the command handlers, status, progress and the ``reflow`` console script.
  May import everything in ``running``.
- ``config`` (the config file and ``REFLOW_*``), ``process`` (the one way to run a
  subprocess), ``ranges`` (index lists as range specs), ``fingerprints`` (of files and
  directories) and ``codehash`` (of a task's code) import nothing else from ``running``,
  except ``config_file`` (reading the config file's TOML), which only ``config`` imports;
  every room may import them.
"""
