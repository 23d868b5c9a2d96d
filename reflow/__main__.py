"""``python -m reflow``: the ``reflow`` console script, also where it is not on ``PATH``."""

from reflow.running.commands.console import main

raise SystemExit(main())
