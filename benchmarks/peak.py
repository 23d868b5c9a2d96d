"""Child wrapper: run a Python command line, then write this process's peak RSS to a file.

``python benchmarks/peak.py REPORT -c CODE | -m MODULE ARGS | SCRIPT ARGS`` runs the command
as ``python`` would (as ``__main__``, with the same ``sys.argv`` and ``sys.path[0]``) and, at
exit, writes the peak resident set of this process in kB (``VmHWM``) to ``REPORT``. It
imports nothing beyond ``sys`` and ``atexit`` before the command runs.

Why not ``ru_maxrss``: on Linux, ``exec`` folds the peak RSS of the process that forked the
child into the child's ``ru_maxrss``, so every child of a 100 MB benchmark harness would
report at least 100 MB. ``VmHWM`` belongs to the memory map that ``exec`` created, so it
counts only what the command itself used.
"""

import atexit
import sys


def peak_kb() -> int:
    """``VmHWM`` of this process in kB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:  # noqa: PTH123 - no pathlib import here
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _report(path: str) -> None:
    with open(path, "w") as report:  # noqa: PTH123
        report.write(f"{peak_kb()}\n")


def main() -> None:
    report, *command = sys.argv[1:]
    atexit.register(_report, report)
    if command[0] == "-c":
        sys.argv = ["-c", *command[2:]]
        sys.path[0] = ""
        code = compile(command[1], "<string>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        return
    import os
    import runpy

    if command[0] == "-m":
        sys.argv = [command[1], *command[2:]]
        sys.path[0] = os.getcwd()  # noqa: PTH109
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = command
        sys.path[0] = os.path.dirname(os.path.abspath(command[0]))  # noqa: PTH100, PTH120
        runpy.run_path(command[0], run_name="__main__")


if __name__ == "__main__":
    main()
