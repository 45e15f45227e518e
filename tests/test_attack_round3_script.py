"""benchmarks/attack_round3.py (issue 31's attack round) imports and lists its families without
running an attack (the round itself: ``python benchmarks/attack_round3.py``)."""

from __future__ import annotations

import importlib


def test_the_attack_round_lists_its_families_and_classes():
    script = importlib.import_module("benchmarks.attack_round3")
    families = script.families()
    assert len(families) >= 10 and "keystrokes" in families and "pack" in families
    assert len(script.ATTEMPTS) >= 40
    assert set(script.PRIORITY) == set(script.CLASSES)
    assert script.totals_line([]) == "0 side effects, 0 leaks, 0 hangs, 0 crashes, 0 unclear errors"
