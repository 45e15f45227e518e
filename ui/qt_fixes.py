"""Work-arounds for bugs of the Qt bindings that would take the window down.

PySide6 6.12.0's ``SignalInstance.emit`` and ``SignalInstance.disconnect`` return ``True`` without
taking a reference to it: every signal emitted from Python (a job's progress and each line its
process prints, superqt's worker signals, pyqtgraph's) lowers ``True``'s reference count by one, and
once that reaches zero CPython aborts with "bool_dealloc: deallocating True or False" (issue 31: the
window closed and opened again died after ~20 rounds; a job that prints a few thousand lines would do
the same). :func:`install` measures each method on a probe signal and, only where it drops the
reference, wraps it to give back the reference the binding forgot; it runs when :mod:`ui` is imported.
"""

from __future__ import annotations

import sys

_wrapped: set[str] = set()


def _drops_a_reference(method: str) -> bool:
    """Whether ``SignalInstance.<method>`` lowers ``True``'s reference count (8 calls on a probe)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        fired = Signal()

    def slot() -> None:
        pass

    probe = _Probe()
    calls = {"emit": lambda: probe.fired.emit(), "disconnect": lambda: probe.fired.disconnect(slot)}
    before = None
    for n in range(9):
        if method == "disconnect":
            probe.fired.connect(slot)
        if n == 1:  # the first call may create and cache what later calls reuse
            before = sys.getrefcount(True)
        calls[method]()
    return sys.getrefcount(True) < before


def _balance(method: str) -> None:
    import ctypes

    from PySide6.QtCore import SignalInstance

    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes, incref.restype = [ctypes.py_object], None
    original = getattr(SignalInstance, method)

    def balanced(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        incref(result)  # the reference the binding returned without owning it
        return result

    balanced.__name__, balanced.__doc__ = method, original.__doc__
    setattr(SignalInstance, method, balanced)


def install() -> set[str]:
    """Balance the result's reference of each ``SignalInstance`` method this PySide6 gets wrong (once per
    process); returns the methods wrapped."""
    for method in ("emit", "disconnect"):
        if method not in _wrapped and _drops_a_reference(method):
            _balance(method)
            _wrapped.add(method)
    return set(_wrapped)
