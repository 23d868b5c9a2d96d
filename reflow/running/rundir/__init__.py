"""Running: the run directory: every path in it, and the formats of the files it holds.

Owns ``RunLayout`` (paths, the dispatcher lock), the run manifest, a task's inputs file, an
element's result file and a packed array task's result bundle. Imports nothing else from
``reflow.running``.
"""
