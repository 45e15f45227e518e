"""A reader of stdout that stops early (``main.py targets | head -1``, ``main.py ... --json | head -3``):
nothing went wrong here, so the command ends quietly instead of with a ``BrokenPipeError`` traceback.

The Python documentation's recipe (``signal`` module, "Note on SIGPIPE"): catch the error, point
stdout at ``os.devnull`` so that the interpreter's final flush of what is still buffered cannot fail a
second time at exit, and exit. Imports nothing heavy: ``main.py --version`` uses it too.
"""

from __future__ import annotations

import os
import sys


def stdout_gone() -> None:
    """Point stdout (fd 1 and ``sys.stdout``) at ``os.devnull``: what is buffered or printed later goes nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no fd behind sys.stdout (tests capturing it)
        pass


def print_out(text: str) -> bool:
    """Print ``text`` on stdout now (flushed); False when its reader has gone (stdout then points at devnull)."""
    try:
        print(text)
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        stdout_gone()
        return False


def quiet_when_stdout_closes(run, *args) -> int:
    """``run(*args)``'s exit code, with what it printed flushed; 0 when stdout's reader went away."""
    try:
        code = run(*args)
        sys.stdout.flush()  # what is still buffered fails here, inside the guard, not at exit
        return code
    except BrokenPipeError:
        stdout_gone()
        return 0
