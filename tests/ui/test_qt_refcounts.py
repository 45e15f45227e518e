"""The installed PySide6 keeps Python's reference counts (issue 33, item 9).

PySide6 6.12.0 on Python 3.11 drops a reference to ``None`` at every call of a Qt method that returns
nothing: after ~5,000 such calls (a benchmark and a sweep repaint that many times) the interpreter
aborts with ``Fatal Python error: none_dealloc`` — the window's crashes at quit after long runs. On
Python 3.12+ ``None``, ``True`` and ``False`` are immortal and the count does not move either way.
"""

from __future__ import annotations

import sys


def test_qt_calls_returning_nothing_or_a_bool_keep_the_reference_counts(qapp):
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtWidgets import QLabel, QWidget

    widget, label = QWidget(), QLabel()
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    none, true, false = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    for i in range(500):
        widget.setEnabled(True)
        label.setText(str(i))
        widget.update()
        widget.isEnabled()
        widget.isHidden()
        painter = QPainter(image)
        painter.setPen(QColor("black"))
        painter.drawLine(0, 0, 7, 7)
        painter.end()
    # a few references may come or go with Python's own caches; a leak per call loses hundreds
    assert abs(sys.getrefcount(None) - none) < 50, (none, sys.getrefcount(None))
    assert abs(sys.getrefcount(True) - true) < 50 and abs(sys.getrefcount(False) - false) < 50
