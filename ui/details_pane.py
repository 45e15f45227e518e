"""The selected result in full: what a table cell cuts off (warnings, the verification's checks, the
artifact's path, the command that remakes it), selectable and copyable."""

from __future__ import annotations

from PySide6.QtWidgets import QTextBrowser, QWidget

from ui.plain_text import rich

EMPTY = "Select a result to see it in full: path, verification, every warning, the command line."


def details_html(info) -> str:
    """``info`` (an :class:`app.session.Outcome`) as HTML."""
    from app.reports.command_echo import convert_command

    e = rich  # escaped, control and bidi characters shown: warnings and paths come from files
    r = info.result
    parts = [f"<b>{e(info.target)} {e(info.precision)}</b>"]
    if r is None:
        parts.append(f"<p style='color:#b00'>failed: {e(info.message)}</p>")
    else:
        if info.artifact:
            parts.append(f"<p>{e(str(info.artifact))}</p>")
        v = r.verification
        if v is not None:
            parts.append(f"<p>verification: {e(v.summary())}<br>checks: {e('; '.join(v.checks))}"
                         + (f"<br><span style='color:#b00'>{e(v.failure)}</span>" if v.failure else "") + "</p>")
        notes = list(r.warnings) + ([r.message] if r.message else [])
        if notes:
            parts.append("<p>warnings:</p><ul>" + "".join(f"<li>{e(w)}</li>" for w in notes) + "</ul>")
    parts.append(f"<p>command:<br><code>{e(convert_command(info.request))}</code></p>")
    return "".join(parts)


class ResultDetails(QTextBrowser):
    """Read-only, selectable details of one result row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Result details")
        self.setOpenLinks(False)
        self.setPlaceholderText(EMPTY)

    def show_row(self, info) -> None:
        if info is None:
            self.clear()
        else:
            self.setHtml(details_html(info))
