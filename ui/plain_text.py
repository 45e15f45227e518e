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

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

from app.safety.text import one_line, visible_text

__all__ = ["PlainLabel", "one_line", "plain_box", "plain_labels", "rich", "tooltip", "visible_text"]


class PlainLabel(QLabel):
    """A QLabel whose text is never read as HTML, cleaned by :func:`visible_text` when set."""

    def __init__(self, text: str = "", parent: QWidget | None = None, **kwargs) -> None:
        super().__init__(visible_text(str(text)), parent, **kwargs)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(visible_text(str(text)))


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
