"""Running: executors, which start work and report on it: local processes, Slurm, dry-run.

Owns the ``Executor`` interface and the records it trades in (``base``: a ``BatchRequest`` in,
a ``Submission`` out, ``JobStatus`` per job id); the local executor (``local``, with its
chunks of many elements per process in ``local_chunks`` and its pid files in ``local_pids``);
the Slurm executor (``slurm``: every scheduler command goes through it and is counted; the
batch script in ``slurm_script``, array splitting and packing in ``slurm_arrays``, ``sacct`` and
``squeue`` parsing in ``slurm_query``, accounting for ``report`` in ``slurm_usage``, the job's
own output file in ``slurm_output``); the lines a job runs before the worker (``launch``);
and the dry-run executor (``dry_run``). May import ``rundir`` (for the names of files in a
run directory) and ``worker.command`` (the worker's command line); never the store, the
dispatcher or the commands.
"""
