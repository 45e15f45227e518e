"""What leaves the window: Triton folders, the HTML/PDF report, chart PNG/CSV, paths and command lines.

A part of :class:`ui.main_window.MainWindow` (which keeps the widgets, the signals and the wiring).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.session import JobKey
from ui.workers import DONE, FAILED, BackgroundJob


class Exports:
    """What leaves the window: Triton folders, the HTML/PDF report, chart PNG/CSV, paths and command lines."""

    def _on_export_for_serving_requested(self, row: int) -> None:
        info = self.results.rows[row]
        if info.artifact is None:
            return
        start = self.settings.value("dirs/serving", "") or str(info.artifact.parent)
        folder = QFileDialog.getExistingDirectory(self, "Triton model repository", start)
        if folder:
            self.export_for_serving(info.artifact, Path(folder))

    def export_for_serving(self, artifact: Path, repo: Path, overwrite: bool = False) -> BackgroundJob:
        """Write a Triton model folder for ``artifact`` into ``repo`` in the background."""
        from ui.workers import serving_job

        self.settings.set_value("dirs/serving", str(repo))
        sweep = self.last_sweep if self.sweep_panel is not None and self.sweep_panel.proposal_for(artifact) else None
        from_sweep = sweep.get("saved") if sweep else None
        if from_sweep:
            self.log.add(f"Triton settings for {artifact.name} from the sweep ({from_sweep})")
        return self._start_background(JobKey("serving", artifact.name), f"Triton bundle · {artifact.name}",
                                      serving_job(artifact, repo, overwrite, self, from_sweep=from_sweep),
                                      self._on_bundle_written, self._on_bundle_failed)

    def _start_background(self, key: JobKey, label: str, job: BackgroundJob, on_done, on_failed) -> BackgroundJob:
        """Show ``job`` in the jobs list under ``key`` and start it; ``on_done(key, result)`` or
        ``on_failed(key, state, message)`` follows."""
        self.session.add_job(key, label)
        job.succeeded.connect(lambda result: on_done(key, result))
        job.logged.connect(lambda line: self.log.add(f"{label}: {line}"))
        job.failed.connect(lambda state, message: on_failed(key, state, message))
        self.background_jobs[key] = job
        job.start()
        return job

    def _on_bundle_written(self, key, path) -> None:
        self.background_jobs.pop(key, None)
        self.log.add(f"wrote the Triton model folder {path}")
        self.session.job_ended(key, DONE, str(path))
        self.statusBar().showMessage(f"Triton model folder written: {path}", 10000)

    def _on_bundle_failed(self, key, state: str, message: str) -> None:
        from app.errors import OutputExists

        job = self.background_jobs.pop(key, None)
        self.log.add(f"Triton bundle for {key.name}: {state}: {message}")
        self.session.job_ended(key, state, message)
        if job is not None and isinstance(job.error, OutputExists):
            artifact, repo = job.payload
            self._ask("Replace the model folder?",
                      f"{repo} already holds a model folder for {artifact.name}.\n\nReplace it?",
                      lambda: self.export_for_serving(artifact, repo, overwrite=True))
        elif state == FAILED:
            self._show_message(QMessageBox.Icon.Warning, "Cannot export for serving", message)

    def _on_export_png_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export charts as PNG", self._last_dir("latency.png"),
                                              "PNG images (*.png)")
        if path:
            path = Path(path).with_suffix(".png")
            self.latency_chart.export_png(path)
            self.batch_chart.export_png(path.with_name(path.stem + "-batch.png"))
            self.statusBar().showMessage(f"Saved {path} and {path.stem}-batch.png", 5000)

    def _on_export_csv_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export benchmark as CSV", self._last_dir("benchmark.csv"),
                                              "CSV files (*.csv)")
        if path:
            self.latency_chart.export_csv(Path(path).with_suffix(".csv"))
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def _on_export_report_triggered(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Export report", self._last_dir("report.html"),
                                                   "HTML files (*.html);;PDF files (*.pdf)")  # it asks before replacing
        if path:
            pdf = path.lower().endswith(".pdf") or chosen.startswith("PDF")
            self.export_report(Path(path).with_suffix(".pdf" if pdf else ".html"))

    def export_report(self, out: Path) -> BackgroundJob:
        """Write the report of this session's artifacts, last benchmark and sweep in the background:
        HTML, or for ``*.pdf`` the same page printed by QtWebEngine."""
        import tempfile

        from app.artifacts.manifest import manifest_path_of
        from ui.workers import report_job

        manifests = [manifest_path_of(a) for a in self.results.artifacts() if manifest_path_of(a).is_file()]
        benches = [b for b in (self.last_benchmark, self.last_sweep) if b]
        html = out
        if out.suffix.lower() == ".pdf":
            html = Path(tempfile.mkdtemp(prefix="studio-report-")) / (out.stem + ".html")
        job = report_job(manifests, html, benches, self)
        job.pdf = out if html != out else None
        return self._start_background(JobKey("report", out.name), f"Report · {out.name}", job,
                                      self._on_report_written, self._on_report_failed)

    def _on_report_written(self, key, written: dict) -> None:
        job = self.background_jobs.pop(key, None)
        pdf = getattr(job, "pdf", None)
        if pdf is not None:
            return self._print_pdf(key, Path(written["report"]), pdf)
        self.log.add(f"wrote the report {written['report']} ({len(written['artifacts'])} artifact(s), "
                     f"{len(written['benchmarks'])} benchmark result(s))")
        self.session.job_ended(key, DONE, written["report"])
        self.statusBar().showMessage(f"Report written: {written['report']}", 10000)
        self.report_finished.emit(written["report"])

    def _print_pdf(self, key, html: Path, pdf: Path) -> None:
        from ui.web_engine import web_engine_available

        ok, why = web_engine_available()
        if not ok:
            return self._on_report_failed(key, FAILED, f"a PDF is printed by QtWebEngine, which is missing here ({why}); "
                                                       "export HTML and print it from a browser")
        from ui.report_pdf import PdfPrinter

        self.session.job_progressed(key, "printing to PDF", -1.0)
        printer = PdfPrinter(self)

        def printed(path: str, done: bool) -> None:
            import shutil

            shutil.rmtree(html.parent, ignore_errors=True)
            printer.deleteLater()
            if not done:
                return self._on_report_failed(key, FAILED, f"QtWebEngine could not print {pdf}")
            self.log.add(f"wrote the report {path} (PDF)")
            self.session.job_ended(key, DONE, path)
            self.statusBar().showMessage(f"Report written: {path}", 10000)
            self.report_finished.emit(path)

        printer.finished.connect(printed)
        printer.print(html, pdf)

    def _on_report_failed(self, key, state: str, message: str) -> None:
        job = self.background_jobs.pop(key, None)
        if getattr(job, "pdf", None) is not None:  # the HTML staged for a PDF goes too
            import shutil

            shutil.rmtree(Path(job.payload).parent, ignore_errors=True)
        self.log.add(f"report: {state}: {message}")
        self.session.job_ended(key, state, message)
        if state == FAILED:
            self._show_message(QMessageBox.Icon.Warning, "Cannot write the report", message)

    def _on_copy_path_triggered(self) -> None:
        row = self._selected_row()
        if row is not None:
            self.results.copy_path(row)
            self.statusBar().showMessage("Artifact path copied", 3000)

    def _on_copy_command_triggered(self) -> None:
        row = self._selected_row()
        if row is not None:
            self.results.copy_command(row)
            self.statusBar().showMessage("Command line copied", 3000)
