"""reflow's benchmark suite: ``python -m benchmarks`` (see ``docs/performance.md``).

Each benchmark measures one thing a user waits for, in a fresh process where start-up
matters (the command line, ``status``, whole runs) and in-process where it does not (one
dispatcher turn, timed inside a child process that does nothing else).
"""
