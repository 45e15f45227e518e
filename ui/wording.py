"""The window's words for what the core says in the command line's (issue 33, item 7).

The core's messages are written for the command line ("pass --input NAME:SHAPE[:DTYPE]", "mark the axis
with --dynamic NAME:0:batch"); the window has fields and buttons instead. :func:`window_words` turns
the known hints into what to do in the window, and every other flag into the field that sets it, so no
command-line flag reaches the status bar, the log, a dialog or a job's message. The command line keeps
its wording; only "copy command" shows a command line in the window.
"""

from __future__ import annotations

import re

# whole hints first: what to do in the window
_HINTS: tuple[tuple[str, str], ...] = (
    (r"pass --arch file\.py:Factory \(the class or function that builds the network\)",
     "type the class or function that builds the network (file.py:Factory) in the Architecture field and press Load"),
    (r"(?:pass its arguments with|pass|with) --arch-kwargs", "type its arguments as JSON in the field beside Architecture"),
    (r"(?:save a state dict|save model\.state_dict\(\)) and pass --arch",
     r"save model.state_dict() and open that, with its code in the Architecture field"),
    (r"pass --arch(?: file\.py:Factory)?", "type file.py:Factory in the Architecture field and press Load"),
    (r" \(e\.g\. --input [^:()\s]+:([0-9x]+)(?::\w+)?\)", r" (e.g. \1)"),
    (r"pass --input NAME:SHAPE\[:DTYPE\] and --dynamic NAME:0:batch",
     "type the shapes in the Inputs table's Shape cells and press axis 0 in its Dynamic axes column"),
    (r"(?:pass|give a realistic|give one) --input(?: NAME:SHAPE\[:DTYPE\])?(?: shape)?",
     "type the shapes in the Inputs table's Shape cells"),
    (r"\(unknown: pass --input\)", "(unknown: type it in the Shape cell)"),
    (r"mark the axis with --dynamic NAME:0:batch",
     "make axis 0 dynamic (press it in the Inputs table's Dynamic axes column) and convert again"),
    (r"re-convert(?: it)? with --dynamic NAME:0:batch",
     "convert again with axis 0 pressed in the Inputs table's Dynamic axes column"),
    (r"; --ignore-memory-check runs it anyway", ""),
    (r"--to (\S+) --precision (\S+)", r"\1 \2"),
    (r"(?:pass|use) --eval-data PATH", "choose an Evaluation data folder"),
    (r"no --data folder was given", "no Data folder was chosen"),
    (r"pass --data DIR with", "choose a Data folder with"),
    (r"(?:pass|with) --tokenizer DIR", "choose a Tokenizer folder"),
    (r"use --out DIR \(and TMPDIR\)", "choose an Output folder"),
    (r"(?:python )?main\.py \w+", "the command line"),
)

# every other flag: the field or button that sets it
FIELDS = {
    "arch": "Architecture", "arch-kwargs": "Architecture's arguments", "input": "Shape", "dynamic": "Dynamic axes",
    "data": "Data…", "eval-data": "Evaluation data…", "tokenizer": "Tokenizer", "out": "Output folder",
    "overwrite": "Replace existing artifacts", "opset": "ONNX opset", "exporter": "ONNX exporter",
    "quantization": "INT8 mode", "calibration-method": "Calibration method",
    "weight-granularity": "INT8 weight scales", "accuracy-budget": "Accuracy budget", "batch": "Batch sizes",
    "ignore-memory-check": "Run anyway", "to": "Targets", "precision": "Targets",
    "sweep-seconds": "Sweep tab's “s per point”", "p99-budget-ms": "Sweep tab's p99 budget",
    "target-isa": "INT8 for CPU",
}
_VERB = r"(?:(?:pass|use|give|add|set|with|lower|raise)\s+)?"
# a flag starts a word (after a space, "(" or the start): "a.<!--x", a pickled global's name, is not one
_FLAG = re.compile(_VERB + r"(?<![^\s(“\"'])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?: (?:PATH|DIR|FILE|NAME|N|X)\b)?")


def _field(match: re.Match) -> str:
    flag = match.group(1)
    verb = match.group(0).split("--")[0].strip()
    name = FIELDS.get(flag)
    what = f"the {name} field" if name else f"the “{flag.replace('-', ' ')}” setting of the command line"
    return f"set {what}" if verb and verb != "with" else (f"with {what}" if verb else what)


def window_words(text: str) -> str:
    """``text`` from the core, in the window's terms: hints as what to do here, flags as their fields."""
    if not text or "--" not in text and "main.py" not in text:
        return text
    for pattern, replacement in _HINTS:
        text = re.sub(pattern, replacement, text)
    return _FLAG.sub(_field, text)
