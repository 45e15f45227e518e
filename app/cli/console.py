"""What a command shows on the terminal while it runs: stage names on stderr, and the ``--json``
object of a command that failed before it had a result."""

from __future__ import annotations

import sys

# the stage the running command last reported: what a failure's ``--json`` object names
STAGE = {"name": "start"}


def failure_json(message: str, code: int, error: str = "", details: dict | None = None) -> dict:
    """The one ``--json`` object printed when a command fails before it has a result of its own;
    ``details``: the error's machine-readable extras (e.g. ``globals``, every name a pickle still needs)."""
    data = {"status": "failed", "stage": STAGE["name"], "error": error, "message": message, "exit_code": code}
    if isinstance(details, dict) and details:
        data["details"] = details
    return data


class StderrProgress:
    """Stage names on stderr: rewritten in place on a terminal, one line each otherwise."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
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
        if self.tty:
            sys.stderr.write(f"\r\033[K… {stage}{bar}")
        else:
            sys.stderr.write(f"… {stage}{bar}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty and self.last:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
