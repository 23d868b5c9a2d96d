"""Running: the exit codes of the command lines, and a quiet exit when stdout's reader left.

``0`` success, ``1`` a followed run did not succeed, ``2`` a usage, configuration or
definition error, ``130`` Ctrl-C (128 + SIGINT), ``141`` stdout was a pipe that closed early
(128 + SIGPIPE, what the shell shows for a program killed by it, as in ``... | head -1``).
"""

from __future__ import annotations

import os
from typing import IO

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141


def pipe_closed(stream: IO[str]) -> int:
    """Point ``stream`` at /dev/null after its reader went away; return ``EXIT_PIPE_CLOSED``.

    Python flushes stdout once more at exit; without this that flush raises
    ``BrokenPipeError`` again and prints a traceback.
    """
    try:
        descriptor = stream.fileno()
    except (AttributeError, ValueError, OSError):
        return EXIT_PIPE_CLOSED
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)
    return EXIT_PIPE_CLOSED
