"""What a command shows on the terminal while it runs: stage names on stderr, the ``--json``
object of a command that failed before it had a result, and the one place every line the command
line writes passes (:func:`cleaned_output`)."""

from __future__ import annotations

import contextlib
import sys

from app.safety.text import one_line, visible_text

# the stage the running command last reported: what a failure's ``--json`` object names
STAGE = {"name": "start"}


def failure_json(message: str, code: int, error: str = "", details: dict | None = None) -> dict:
    """The one ``--json`` object printed when a command fails before it has a result of its own;
    ``details``: the error's machine-readable extras (e.g. ``globals``, every name a pickle still needs)."""
    data = {"status": "failed", "stage": STAGE["name"], "error": error, "message": message, "exit_code": code}
    if error == "BudgetUnmet" and isinstance(details, dict):   # the budget loop's report, where a result has it
        data.update(status="unmet", accuracy_budget=details.get("accuracy_budget"))
        details = {k: v for k, v in details.items() if k != "accuracy_budget"}
    if isinstance(details, dict) and details:
        data["details"] = details
    return data


class CleanStream:
    """A text stream that writes what it is given with every control character (tab and newline
    kept), bidirectional control and lone surrogate shown escaped (:func:`app.safety.text.visible_text`):
    names, messages and warnings read from a file cannot drive the terminal (clear it, set its title,
    rewrite a line) or reorder what the user reads. ``--json`` objects pass unchanged (``json.dumps``
    escapes all of them itself, and every non-ASCII character). ``unfiltered``: the stream beneath,
    for the command's own cursor movements (:class:`StderrProgress`)."""

    def __init__(self, stream):
        self.unfiltered = stream

    def write(self, text: str) -> int:
        self.unfiltered.write(visible_text(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):  # flush, isatty, fileno, encoding ... of the stream beneath
        return getattr(self.unfiltered, name)


@contextlib.contextmanager
def cleaned_output():
    """While the block runs, ``sys.stdout`` and ``sys.stderr`` are :class:`CleanStream` s: every
    ``print`` of every command (argparse's usage, warnings and ``--debug`` tracebacks included) goes
    through one filter, whatever the text's origin."""
    if isinstance(sys.stdout, CleanStream) and isinstance(sys.stderr, CleanStream):
        yield
        return
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = CleanStream(sys.stdout), CleanStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def unfiltered_stderr():
    """The terminal's stderr beneath :class:`CleanStream` (for escape sequences the command writes itself)."""
    return getattr(sys.stderr, "unfiltered", sys.stderr)


class StderrProgress:
    """Stage names on stderr: rewritten in place on a terminal, one line each otherwise."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.tty = unfiltered_stderr().isatty()
        self.last = ""

    def __call__(self, stage: str, fraction: float | None = None) -> None:
        STAGE["name"] = stage
        if not self.enabled or stage == self.last and fraction is None:
            return
        self.last = stage
        bar = ""
        if fraction is not None:
            n = int(max(0.0, min(1.0, fraction)) * 20)
            bar = f" [{'#' * n}{'.' * (20 - n)}] {fraction:4.0%}"
        err = unfiltered_stderr()
        if self.tty:  # the stage's text cleaned, the line's rewrite our own
            err.write("\r\033[K" + one_line(f"… {stage}{bar}"))
        else:
            err.write(one_line(f"… {stage}{bar}") + "\n")
        err.flush()

    def done(self) -> None:
        if self.enabled and self.tty and self.last:
            err = unfiltered_stderr()
            err.write("\r\033[K")
            err.flush()
