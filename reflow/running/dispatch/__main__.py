"""Running: ``python -m reflow.running.dispatch``, the dispatcher's entry point."""

from reflow.running.dispatch.drive import main

raise SystemExit(main())
