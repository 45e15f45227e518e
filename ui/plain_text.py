"""Text from files in the window: shown as the characters it holds, never as HTML.

Qt guesses: a QLabel, a QMessageBox's text and every tool tip are rendered as rich text when the
string "might be" HTML (``Qt::mightBeRichText``: a tag near its start). A model file decides its
names, a producer string, a manifest's fields, an error message its job sends: a file named with
``<b>`` turned the whole trust dialog into HTML, and ``<!--``/``-->`` inside two global names hid
``builtins.exec`` from the list the user approves (issue 31). So the window's labels and message
boxes are plain text (:class:`PlainLabel`, :func:`plain_box`), tool tips and the few widgets that
must be rich (pyqtgraph's legends and titles) get escaped HTML (:func:`tooltip`, :func:`rich`), and
every such text is first passed through :func:`app.safety.text.visible_text` (control characters and
bidirectional overrides shown escaped: a reader sees the characters in the order they are stored).
"""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QWidget

from app.safety.text import one_line, visible_text

__all__ = ["ElidedLabel", "PlainLabel", "one_line", "plain_box", "plain_labels", "rich", "tooltip", "visible_text"]


class PlainLabel(QLabel):
    """A QLabel whose text is never read as HTML, cleaned by :func:`visible_text` when set."""

    def __init__(self, text: str = "", parent: QWidget | None = None, **kwargs) -> None:
        super().__init__(visible_text(str(text)), parent, **kwargs)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(visible_text(str(text)))


class ElidedLabel(PlainLabel):
    """A one-line :class:`PlainLabel` no wider than ``max_width``: a longer text is drawn cut with "…" and
    shown in full on hover (its tool tip, unless one is set); ``text()`` is the full text."""

    def __init__(self, text: str = "", max_width: int = 300, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._own_tip = ""
        self.setMaximumWidth(max_width)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def setToolTip(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._own_tip = text
        self._show_tip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self._show_tip()

    def _show_tip(self) -> None:
        tip = tooltip([self.text(), self._own_tip]) if self.is_elided() else self._own_tip
        super().setToolTip(tip)

    def is_elided(self) -> bool:
        return self.fontMetrics().horizontalAdvance(self.text()) > self.maximumWidth() - 4

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("…") * 8), hint.height())

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), shown)


def plain_labels(root: QWidget) -> None:
    """Every QLabel beneath ``root`` plain text (those built by Qt or a library included)."""
    for label in root.findChildren(QLabel):
        label.setTextFormat(Qt.TextFormat.PlainText)


def plain_box(icon: QMessageBox.Icon, title: str, text: str, buttons: QMessageBox.StandardButton,
              parent: QWidget | None = None) -> QMessageBox:
    """A QMessageBox whose title and text are shown as plain text."""
    box = QMessageBox(icon, visible_text(one_line(title)), visible_text(str(text)), buttons, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    plain_labels(box)
    return box


def rich(text: str) -> str:
    """``text`` as HTML that shows it literally (for widgets that always render HTML)."""
    return html.escape(visible_text(str(text)), quote=False).replace("\n", "<br>")


def tooltip(text: str | list[str]) -> str:
    """A tool tip that shows ``text`` literally. Qt reads a tool tip as HTML when its first line holds a
    tag (or ``&lt;``): text with no ``<`` or ``&`` is returned as it is (plain), any other as escaped
    rich text, one paragraph a line (a list: one paragraph each), which Qt also wraps instead of cutting."""
    lines = [visible_text(str(line)) for line in (text if isinstance(text, list) else [text]) if line]
    if not lines:
        return ""
    if not isinstance(text, list) and "<" not in lines[0] and "&" not in lines[0]:
        return lines[0]
    return "".join(f"<p style='white-space:pre-wrap'>{html.escape(line, quote=False)}</p>"
                   for text_line in lines for line in text_line.split("\n") if line)
