"""The deployment targets this machine offers: every registered converter with its availability,
what it refuses, its options, and per precision whether it is expected to be faster on this hardware.

One probe for the window's target grid and for ``python main.py targets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from app.errors import UnsupportedCombination
from app.machine.hardware import detect
from app.targets.advice import advise

from converters.options import ACCURACY_BUDGET


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
    options: tuple = ()                       # the converters.options.Option declarations of its converter

    def wants_data(self, request) -> bool:
        """Whether ``request`` is int8 that this target would calibrate (its int8 mode left to it, or pinned
        static) with no ``--data``: then it calibrates on random data unless the user gives samples."""
        takes_mode = any(o.name == "quantization" for o in self.options)
        return (request.precision == "int8" and request.data is None and takes_mode
                and "quantization" not in request.options)

    def options_in(self, values: dict, precision: str) -> dict:
        """The entries of ``values`` (the window's form: option name → value) that shape this target at
        ``precision`` (``Converter.options_in``; the accuracy budget where the target runs its loop)."""
        if self.converter is None:
            return {}
        budget = {k: v for k, v in values.items() if k == ACCURACY_BUDGET.name
                  and precision in self.converter.accuracy_budget}
        return self.converter.options_in(values, precision) | budget

    def reason_for(self, precision: str, source_format: str | None) -> str:
        """Why ``precision`` cannot be built from ``source_format`` here; "" when it can."""
        if not self.available:
            return self.reason
        if precision not in self.precisions:
            return f"{self.label} has no {precision.upper()} path"
        if source_format is None or self.converter is None:
            return ""

        try:
            self.converter.check(source_format, precision)
        except UnsupportedCombination as e:
            return str(e)
        return ""


def needs_gpu(target: str) -> bool:
    """Whether ``target``'s artifacts run only on a GPU (its kind says: :attr:`app.model.kinds.ArtifactKind.gpu`):
    the window converts to such targets one at a time, in a pool of their own."""
    from app.loaders.kinds import get_kind
    from converters.base import get_converter

    return get_kind(get_converter(target).kind).gpu


def probe_targets(hardware=None) -> list[TargetChoice]:
    """Every target the engine registers (TensorRT included), with its availability and, per
    precision, whether it is expected to be faster on this machine's hardware."""
    from converters.base import all_converters

    hw = hardware or detect(import_torch=False)  # never import torch into the window's process
    choices = []
    for c in all_converters():
        try:
            ok, why = c.available()
        except Exception as e:  # noqa: BLE001 - a broken optional backend is "unavailable", not a crash
            ok, why = False, f"{type(e).__name__}: {e}"
        advice = {p: advise(c.name, p, hw).text() for p in c.precisions}
        choices.append(TargetChoice(c.name, c.label, tuple(c.precisions), bool(ok), why, c, advice,
                                    tuple(c.options) + ((ACCURACY_BUDGET,) if c.accuracy_budget else ())))
    return choices
