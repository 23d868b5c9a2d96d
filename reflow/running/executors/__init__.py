"""Running: executors that start work (local processes, Slurm, dry-run)."""
