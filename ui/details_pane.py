"""The selected result in full: what a table cell cuts off (warnings, the verification's checks, the
artifact's path, the command that remakes it), selectable and copyable."""

from __future__ import annotations

from PySide6.QtWidgets import QTextBrowser, QWidget

from app.accuracy.verdict import ACCURACY_LOSS, FAILED, PASSED
from ui.wording import window_words
from ui.plain_text import rich

VERDICT_COLORS = {PASSED: "#1b7a2f", ACCURACY_LOSS: "#8a5a00", FAILED: "#b3261e"}
EMPTY = "Select a result to see it in full: path, verification, every warning, the command line."


def details_html(info) -> str:
    """``info`` (an :class:`app.session.Outcome`) as HTML."""
    from app.reports.command_echo import convert_command

    e = rich  # escaped, control and bidi characters shown: warnings and paths come from files
    r = info.result
    verdict = info.verdict
    parts = [f"<b>{e(info.target)} {e(info.precision)}</b>",
             f"<p><b style='color:{VERDICT_COLORS.get(verdict.kind, 'inherit')}'>verdict: {e(verdict.label)}</b>"
             f" — {e(verdict.reason)}</p>"]
    if r is not None:
        if info.artifact:
            parts.append(f"<p>{e(str(info.artifact))}</p>")
        if r.evaluation is not None:
            parts.append(f"<p>on data: {e(r.evaluation.summary())}</p>")
        v = r.verification
        if v is not None:
            failure = v.failure if v.enforced else None   # int8's miss on random inputs: the verdict weighs it
            parts.append(f"<p>verification on random inputs: {e(v.summary())}<br>checks: {e('; '.join(v.checks))}"
                         + (f"<br><span style='color:#b00'>{e(failure)}</span>" if failure else "") + "</p>")
        notes = [window_words(n) for n in list(r.warnings) + ([r.message] if r.message else [])]
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
