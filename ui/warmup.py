"""What the window does once it has painted: the slow imports, in the background (Qt-free).

The window's own process never imports torch: models are inspected and converted in supervised
child processes (:mod:`app.jobs`), whose fork server imports torch, onnx and onnxruntime once.
Importing torch in the window's process would hold the interpreter lock for hundreds of
milliseconds (its C extension initialises under the GIL) and freeze the event loop; a fork server
warms the same imports with no such cost. So warming up means: start that server, import the light
engine modules here, and probe which targets this machine can build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field



@dataclass(frozen=True)
class TargetChoice:
    """One deployment target as the window offers it."""

    name: str
    label: str
    precisions: tuple[str, ...]
    available: bool
    reason: str = ""
    converter: type | None = field(default=None, compare=False, repr=False)
    advice: dict = field(default_factory=dict, compare=False)   # precision → "verdict: why" on this machine

    def reason_for(self, precision: str, source_format: str | None) -> str:
        """Why ``precision`` cannot be built from ``source_format`` here; "" when it can."""
        if not self.available:
            return self.reason
        if precision not in self.precisions:
            return f"{self.label} has no {precision.upper()} path"
        if source_format is None or self.converter is None:
            return ""
        from app.errors import UnsupportedCombination

        try:
            self.converter.check(source_format, precision)
        except UnsupportedCombination as e:
            return str(e)
        return ""


def probe_targets(hardware=None) -> list[TargetChoice]:
    """Every target the engine registers (TensorRT included), with its availability and, per
    precision, whether it is expected to be faster on this machine's hardware."""
    from app.advice import advise
    from app.hardware import detect
    from converters.base import all_converters

    hw = hardware or detect(import_torch=False)  # never import torch into the window's process
    choices = []
    for c in all_converters():
        try:
            ok, why = c.available()
        except Exception as e:  # noqa: BLE001 - a broken optional backend is "unavailable", not a crash
            ok, why = False, f"{type(e).__name__}: {e}"
        advice = {p: advise(c.name, p, hw).text() for p in c.precisions}
        choices.append(TargetChoice(c.name, c.label, tuple(c.precisions), bool(ok), why, c, advice))
    return choices


def hardware_summary() -> str:
    """The status bar's line about this machine (CPU instruction sets; the GPU once probed)."""
    from app.hardware import detect

    return detect(import_torch=False).summary()


def warm_engine() -> list[TargetChoice]:
    """Import the engine's light modules in this process and probe the targets."""
    import app.pipeline  # noqa: F401 - unpickling a ConversionResult needs it
    import app.verify  # noqa: F401

    return probe_targets()


def child_ready(payload=None, progress=None, should_cancel=None) -> dict:
    """A no-op job: running it starts the fork server, which imports torch & co. once."""
    import torch

    from app.hardware import detect_gpu

    return {"pid": os.getpid(), "torch": torch.__version__, "gpu": detect_gpu()[0]}
