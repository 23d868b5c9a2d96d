"""Running: ``python -m reflow.running.worker``, the worker's entry point."""

from reflow.running.worker.worker import main

raise SystemExit(main())
