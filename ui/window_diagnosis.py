"""Diagnosis: where an fp16/int8 artifact's error comes from (its nodes ranked by the error they add on
the data, in a child process), and showing a chosen node in the Graph tab.

A part of :class:`ui.main_window.MainWindow` (which keeps the widgets, the signals and the wiring).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from app.session import JobKey
from ui.workers import DONE, FAILED, BackgroundJob


class Diagnosis:
    """Diagnosis: where an fp16/int8 artifact's error comes from."""

    def diagnose(self, row: int) -> BackgroundJob | None:
        """Rank the nodes of the row's fp16/int8 ONNX artifact by the error they add on the data."""
        from ui.workers import diagnosis_job

        info = self.results.rows[row]
        data = info.request.data or self.options.data_source()
        if data is None:
            self._show_message(QMessageBox.Icon.Information, "Diagnosis needs data",
                               "Ranking nodes by the error they add runs the model on real samples: choose a data "
                               "folder (Data…, or drop one on the window), then ask again.")
            return None
        return self._start_background(JobKey("diagnose", info.artifact.name), f"Diagnose · {info.artifact.name}",
                                      diagnosis_job(info.request.source, data, info.artifact, info.request.options,
                                                    parent=self),
                                      self._on_diagnosed, self._on_background_failed)

    def _on_diagnosed(self, key, result: dict) -> None:
        job = self.background_jobs.pop(key, None)
        self.session.job_ended(key, DONE, f"{len(result['ranking'])} nodes compared")
        self.diagnosis.show_ranking(job.payload, result)
        self.tabs.setCurrentWidget(self.diagnosis)
        self.log.add(f"diagnosis of {key.name}: {len(result['ranking'])} nodes ranked by the error they add")

    def _on_background_failed(self, key, state: str, message: str) -> None:
        self.background_jobs.pop(key, None)
        self.log.add(f"{key}: {state}: {message}")
        self.session.job_ended(key, state, message)
        if state == FAILED:
            self._show_message(QMessageBox.Icon.Warning, f"Cannot {key}", message)

    def show_node(self, artifact: str, node: str, output: str = "") -> None:
        """Show ``artifact``'s graph in the Graph tab with ``node`` selected."""
        self.show_graph_tab()
        self._ensure_graph()
        if not self.graph.panes[0].show_node(Path(artifact), node, output):
            self.statusBar().showMessage(f"{Path(artifact).name} is not among the models in the Graph tab", 5000)
