"""The HTML report as a PDF, printed by Qt's own browser engine (QtWebEngine): what a reader sees in
a browser, on paper. Loaded only when a PDF is asked for."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal


class PdfPrinter(QObject):
    """Load one local HTML file in an off-the-record page and print it to a PDF file.

    Signals
    -------
    finished(pdf_path, ok)
    """

    finished = Signal(str, bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.page = None
        self.profile = None

    def print(self, html: Path, pdf: Path) -> None:
        from PySide6.QtWebEngineCore import QWebEnginePage, QWebEngineProfile

        self.profile = QWebEngineProfile(self)  # no storage name: off the record, nothing on disk
        self.page = QWebEnginePage(self.profile, self)
        self.page.pdfPrintingFinished.connect(self._on_printed)
        self.page.loadFinished.connect(lambda ok: self.page.printToPdf(str(pdf)) if ok
                                       else self._on_printed(str(pdf), False))
        self.page.load(QUrl.fromLocalFile(str(html)))

    def _on_printed(self, path: str, ok: bool) -> None:
        page, self.page = self.page, None
        if page is not None:
            page.deleteLater()  # the page before its profile: QtWebEngine warns otherwise
        self.finished.emit(path, bool(ok))
