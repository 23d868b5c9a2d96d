"""Running: what the user calls: command handlers, submit, status, progress, console script.

Owns the handlers behind ``cli()`` and the ``reflow`` script (``handlers``, ``console``, the
printed hints in ``hints`` and exit codes in ``exits``), turning a ``submit`` into a run
(``submission``, with its input files in ``input_paths`` and the code-change warning in
``code_changes``), a run's status (``status``, with the elements that went out more than once
in ``attempts_view``), following a run (``progress``) and its live full-screen view
(``watch``, laid out by ``watch_view``, its keys in ``watch_keys``), ``logs``, ``why`` (what
changed upstream in ``why_changes``), ``result`` (``results``) and the right-sizing ``report``
(figures in ``sizing``, the workers' own in ``usage``).
May import everything in ``reflow.running``; nothing there imports it.
"""
