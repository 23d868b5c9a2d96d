"""Running: the run directory: every path in it, and the formats of the files it holds.

Owns ``RunLayout`` (paths, the dispatcher lock), the run manifest, a task's inputs file and an
element's result file. Imports nothing else from ``reflow.running``.
"""
