"""User-facing failures, one type each, with the exit code the CLI maps them to.

Every message is meant to be shown as-is: it says what went wrong, with which file,
and what the user can do about it.
"""

from __future__ import annotations


def first_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, cut at ``limit`` (its type's name if it has none)."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def describe(e: BaseException) -> str:
    """``Type: first line`` — for exceptions that are not :class:`StudioError` (bugs, library failures)."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


class StudioError(Exception):
    """Base of every failure a user can act on."""

    exit_code = 1
    details: dict | None = None  # machine-readable extras (e.g. the globals a pickle needs), kept across processes


class BadInput(StudioError):
    """Usage errors, unreadable files, wrong shapes: the user must change what they asked for."""

    exit_code = 2


class ModelLoadError(BadInput):
    """The model file cannot be read as any supported format."""


class UnsafeModelError(BadInput):
    """Loading the file would run code from it and the user has not allowed that."""


class UnsupportedCombination(BadInput):
    """A target/precision/source-format combination that cannot be built."""


class OutputExists(BadInput):
    """The artifact exists already and --overwrite was not given."""


class ConversionFailed(StudioError):
    """The converter itself failed (exit code 1)."""


class VerificationFailed(StudioError):
    """The artifact was written but does not compute what the source computes."""


class BudgetUnmet(StudioError):
    """``--accuracy-budget``: no round reached the speed floor, so no artifact was written (exit 1);
    ``details["accuracy_budget"]``: the loop's report, every round's figures."""


class Cancelled(StudioError):
    """The user cancelled the job."""


class SideFileError(BadInput):
    """A JSON side file (manifest, saved benchmark result) that cannot be used: not a regular file, too
    large, not JSON, nested too deep, a field of the wrong type (:mod:`app.artifacts.json_file`)."""


class SideFileMissing(SideFileError):
    """The side file does not exist."""
