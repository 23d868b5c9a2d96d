"""Running: what the user calls: command handlers, submit, status, progress, console script.

Owns the handlers behind ``cli()`` and the ``reflow`` script (``handlers``, ``console``),
turning a ``submit`` into a run (``submission``), a run's status (``status``, with the
elements that went out more than once in ``attempts_view``), following a run (``progress``)
and its live full-screen view (``watch``, laid out by ``watch_view``), and the right-sizing
``report`` (figures in ``sizing``, the workers' own in ``usage``).
May import everything in ``reflow.running``; nothing there imports it.
"""
