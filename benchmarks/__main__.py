"""``python -m benchmarks``: run the suite and print the table (``--help`` for options)."""

from benchmarks.suite import main

raise SystemExit(main())
