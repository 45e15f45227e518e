"""What leaves the window: Triton folders, the HTML/PDF report, chart PNG/CSV, paths and command lines."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.session import JobKey
from ui.workers import DONE, FAILED, BackgroundJob


class Exporting:
    """What leaves the window: Triton folders, the HTML/PDF report, chart PNG/CSV, paths and command lines."""

    def __init__(self, window) -> None:
        self.window = window
        window.results.export_requested.connect(self._on_export_for_serving_requested)
        window.export_png_action.triggered.connect(self._on_export_png_triggered)
        window.export_csv_action.triggered.connect(self._on_export_csv_triggered)
        window.export_report_action.triggered.connect(self._on_export_report_triggered)
        window.copy_path_action.triggered.connect(self._on_copy_path_triggered)
        window.copy_command_action.triggered.connect(self._on_copy_command_triggered)

    def _last_dir(self, name: str) -> str:
        base = self.window.model_path.parent if self.window.model_path else Path.home()
        return str(base / name)

    def _on_export_for_serving_requested(self, row: int) -> None:
        w = self.window
        info = w.results.rows[row]
        if info.artifact is None:
            return
        start = w.settings.value("dirs/serving", "") or str(info.artifact.parent)
        folder = QFileDialog.getExistingDirectory(w, "Triton model repository", start)
        if folder:
            self.export_for_serving(info.artifact, Path(folder))

    def export_for_serving(self, artifact: Path, repo: Path, overwrite: bool = False) -> BackgroundJob:
        """Write a Triton model folder for ``artifact`` into ``repo`` in the background."""
        from ui.workers import serving_job

        w = self.window
        w.settings.set_value("dirs/serving", str(repo))
        sweep = w.last_sweep if w.sweep_panel is not None and w.sweep_panel.proposal_for(artifact) else None
        from_sweep = sweep.get("saved") if sweep else None
        if from_sweep:
            w.log.add(f"Triton settings for {artifact.name} from the sweep ({from_sweep})")
        return w.start_job(JobKey("serving", artifact.name), f"Triton bundle · {artifact.name}",
                           serving_job(artifact, repo, overwrite, w, from_sweep=from_sweep),
                           self._on_bundle_written, self._on_bundle_failed)

    def _on_bundle_written(self, job: BackgroundJob, path) -> None:
        w = self.window
        w.log.add(f"wrote the Triton model folder {path}")
        w.session.job_ended(job.key, DONE, str(path))
        w.statusBar().showMessage(f"Triton model folder written: {path}", 10000)

    def _on_bundle_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        from app.errors import OutputExists

        w = self.window
        w.log.add(f"Triton bundle for {job.key.name}: {state}: {message}")
        w.session.job_ended(job.key, state, message)
        if isinstance(job.error, OutputExists):
            artifact, repo = job.payload
            w.ask("Replace the model folder?",
                  f"{repo} already holds a model folder for {artifact.name}.\n\nReplace it?",
                  lambda: self.export_for_serving(artifact, repo, overwrite=True))
        elif state == FAILED:
            w.show_message(QMessageBox.Icon.Warning, "Cannot export for serving", message)

    def _on_export_png_triggered(self) -> None:
        w = self.window
        path, _ = QFileDialog.getSaveFileName(w, "Export charts as PNG", self._last_dir("latency.png"),
                                              "PNG images (*.png)")
        if path:
            path = Path(path).with_suffix(".png")
            w.latency_chart.export_png(path)
            w.batch_chart.export_png(path.with_name(path.stem + "-batch.png"))
            w.statusBar().showMessage(f"Saved {path} and {path.stem}-batch.png", 5000)

    def _on_export_csv_triggered(self) -> None:
        w = self.window
        path, _ = QFileDialog.getSaveFileName(w, "Export benchmark as CSV", self._last_dir("benchmark.csv"),
                                              "CSV files (*.csv)")
        if path:
            w.latency_chart.export_csv(Path(path).with_suffix(".csv"))
            w.statusBar().showMessage(f"Saved {path}", 5000)

    def _on_export_report_triggered(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self.window, "Export report", self._last_dir("report.html"),
                                                   "HTML files (*.html);;PDF files (*.pdf)")  # it asks before replacing
        if path:
            pdf = path.lower().endswith(".pdf") or chosen.startswith("PDF")
            self.export_report(Path(path).with_suffix(".pdf" if pdf else ".html"))

    def export_report(self, out: Path) -> BackgroundJob:
        """Write the report of this session's artifacts, last benchmark and sweep in the background:
        HTML, or for ``*.pdf`` the same page printed by QtWebEngine."""
        import tempfile

        from app.artifacts.manifest import manifest_path_of
        from app.reports.html import profile_for_report
        from ui.workers import report_job

        w = self.window
        manifests = [manifest_path_of(a) for a in w.results.artifacts() if manifest_path_of(a).is_file()]
        benches = [b for b in (w.last_benchmark, w.last_sweep) if b]
        benches += [profile_for_report(p, w.session.diagnoses.get(a)) for a, p in w.session.profiles.items()]
        html = out
        if out.suffix.lower() == ".pdf":
            html = Path(tempfile.mkdtemp(prefix="studio-report-")) / (out.stem + ".html")
        job = report_job(manifests, html, benches, w)
        job.pdf = out if html != out else None
        return w.start_job(JobKey("report", out.name), f"Report · {out.name}", job,
                           self._on_report_written, self._on_report_failed)

    def _on_report_written(self, job: BackgroundJob, written: dict) -> None:
        w = self.window
        key = job.key
        if job.pdf is not None:
            return self._print_pdf(job, Path(written["report"]), job.pdf)
        w.log.add(f"wrote the report {written['report']} ({len(written['artifacts'])} artifact(s), "
                  f"{len(written['benchmarks'])} benchmark result(s))")
        w.session.job_ended(key, DONE, written["report"])
        w.statusBar().showMessage(f"Report written: {written['report']}", 10000)
        w.report_finished.emit(written["report"])

    def _print_pdf(self, job: BackgroundJob, html: Path, pdf: Path) -> None:
        from ui.web_engine import web_engine_available

        w = self.window
        key = job.key
        ok, why = web_engine_available()
        if not ok:
            return self._on_report_failed(job, FAILED, f"a PDF is printed by QtWebEngine, which is missing here ({why}); "
                                          "export HTML and print it from a browser")
        from ui.report_pdf import PdfPrinter

        w.session.job_progressed(key, "printing to PDF", -1.0)
        printer = PdfPrinter(w)

        def printed(path: str, done: bool) -> None:
            import shutil

            shutil.rmtree(html.parent, ignore_errors=True)
            printer.deleteLater()
            if not done:
                return self._on_report_failed(job, FAILED, f"QtWebEngine could not print {pdf}")
            w.log.add(f"wrote the report {path} (PDF)")
            w.session.job_ended(key, DONE, path)
            w.statusBar().showMessage(f"Report written: {path}", 10000)
            w.report_finished.emit(path)

        printer.finished.connect(printed)
        printer.print(html, pdf)

    def _on_report_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        w = self.window
        if job.pdf is not None:  # the HTML staged for a PDF goes too
            import shutil

            shutil.rmtree(Path(job.payload).parent, ignore_errors=True)
        w.log.add(f"report: {state}: {message}")
        w.session.job_ended(job.key, state, message)
        if state == FAILED:
            w.show_message(QMessageBox.Icon.Warning, "Cannot write the report", message)

    def _on_copy_path_triggered(self) -> None:
        w = self.window
        row = w.results.selected_row()
        if row is not None:
            w.results.copy_path(row)
            w.statusBar().showMessage("Artifact path copied", 3000)

    def _on_copy_command_triggered(self) -> None:
        w = self.window
        row = w.results.selected_row()
        if row is not None:
            w.results.copy_command(row)
            w.statusBar().showMessage("Command line copied", 3000)
