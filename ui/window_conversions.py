"""Converting: the requests the window builds, asking for data where int8 wants it, and the
jobs' progress, results and failures.

A part of :class:`ui.main_window.MainWindow` (which keeps the widgets, the signals and the wiring).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.session import BENCHMARK, JobKey
from ui.workers import DONE, FAILED, ConversionJob


class Conversions:
    """Converting: the requests the window builds, asking for data where int8 wants it, and the"""

    def convert_blockers(self) -> list[str]:
        """Why Convert cannot start now (empty: it can)."""
        if not self.is_ready:
            return ["the window is still starting"]
        if self.model_path is None:
            return ["load a model first (drop it on the window or press Ctrl+O)"]
        if self.inspection is not None:
            return ["the model is still loading"]
        if self.session.jobs_running:
            return ["conversions are running"]
        problems = list(self.model.signature().problems)
        if not self.targets.checked():
            problems.append("tick at least one target and precision")
        return problems

    def model_source(self):
        """The source model as the window shows it (an ``app.request.ModelSource``): its signature where
        the user must give or changed it, the dynamic axes the model does not declare itself, the
        network of a state dict and what the user trusted; converting, benchmarking and sweeping all
        load it from this."""
        from app.request import ModelSource

        summary = self.model.summary or {}
        sig = self.model.signature()
        declared = {(s["name"], i) for s in summary.get("inputs", [])
                    for i, d in enumerate(s.get("shape") or []) if isinstance(d, str)}
        pass_inputs = self.model.inputs_must_be_given()
        dynamic = [d for d in sig.dynamic if pass_inputs or (d[0], d[1]) not in declared]
        return ModelSource(self.model_path, inputs=tuple(sig.inputs) if pass_inputs else (),
                           dynamic=tuple(dynamic), arch=self.model.arch(),
                           arch_kwargs=tuple(self.model.arch_kwargs().items()),
                           allow_pickle=self.allow_pickle, trusted_globals=self.trusted_globals)

    def build_request(self, target: str, precision: str):
        """The :class:`ConversionRequest` for one ticked box, from everything the window shows."""
        from app.request import ConversionRequest

        options = self.targets.choice(target).options_in(self.options.values(), precision)  # what shapes this target at this precision
        return ConversionRequest(self.model_source(), target, precision, options,
                                 data=self.options.data_source(), out_dir=self.options.output_folder(),
                                 overwrite=self.options.overwrite.isChecked())

    def _on_convert_triggered(self) -> None:
        from app.errors import BadInput

        blockers = self.convert_blockers()
        if blockers:
            self.statusBar().showMessage(f"Cannot convert: {blockers[0]}", 8000)
            return
        try:
            requests = [self.build_request(t, p) for t, p in self.targets.checked()]
        except BadInput as e:
            self._show_message(QMessageBox.Icon.Warning, "Cannot convert", str(e))
            return
        if self._needs_data(requests):
            self._ask_for_data(requests)
            return
        self._confirm_and_start(requests)

    def _needs_data(self, requests: list) -> bool:
        """Automatic INT8 without data: the user must choose a folder or random data, knowingly."""
        return any(self.targets.choice(r.target).wants_data(r) for r in requests)

    def _ask_for_data(self, requests: list) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Question, "INT8 needs data",
                          "INT8 is calibrated and judged on real samples. Choose a data folder (images in class "
                          "folders, .npy/.npz files, or sentences with a tokenizer), or calibrate on random data — "
                          "then the artifact's accuracy on real inputs is unknown.", QMessageBox.StandardButton.Cancel,
                          self)
        choose = box.addButton("Choose data folder…", QMessageBox.ButtonRole.AcceptRole)
        random = box.addButton("Random data (accuracy unknown)", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(choose)
        box.setAccessibleName("INT8 needs data")
        self.dialog = box

        def answered(_result: int) -> None:
            self._on_dialog_finished(box)
            if box.clickedButton() is random:
                self._confirm_and_start([r.with_options(quantization="static")
                                         if self.targets.choice(r.target).wants_data(r) else r for r in requests])
            elif box.clickedButton() is choose:
                self._choose_data_folder()

        box.finished.connect(answered)
        box.open()
        return box

    def _choose_data_folder(self) -> QFileDialog:
        start = self.options.calibration.text() or str(self.model_path.parent if self.model_path else Path.home())
        dialog = QFileDialog(self, "Data folder", start)
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.setAccessibleName("Data folder")

        def chosen(folder: str) -> None:
            self.set_data(folder)
            self._on_convert_triggered()

        dialog.fileSelected.connect(chosen)
        dialog.finished.connect(lambda _r: dialog.deleteLater())
        self.dialog = dialog
        dialog.open()
        return dialog

    def _confirm_and_start(self, requests: list) -> None:
        if self._memory_refused(requests):
            return
        if not self.options.overwrite.isChecked():
            from dataclasses import replace

            from app.pipeline import artifact_path

            existing = [r for r in requests if artifact_path(r).exists()]
            if existing:
                names = "\n".join(f"  {artifact_path(r).name}" for r in existing)
                folder = artifact_path(existing[0]).parent
                self._ask("Replace existing artifacts?",
                          f"These files exist already in {folder}:\n{names}\n\nReplace them?",
                          lambda: self._start_conversions([replace(r, overwrite=True) if r in existing else r
                                                           for r in requests]))
                return
        self._start_conversions(requests)

    def _memory_refused(self, requests: list) -> bool:
        """Jobs whose memory estimate exceeds what is available: ask before running them anyway (their
        request then skips the job's own check); jobs that fit tightly are logged as warnings."""
        from dataclasses import replace

        from app.machine.memory import NotEnoughMemory, check_memory

        source = (self.model.summary or {}).get("size_bytes")
        refused = []
        for request in requests:
            if request.ignore_memory_check:
                continue
            try:
                for warning in check_memory(request, source):
                    self.log.add(f"warning: {warning}")
            except NotEnoughMemory as e:
                refused.append((request, str(e)))
        if not refused:
            return False
        text = "\n\n".join(m.replace("; --ignore-memory-check runs it anyway", "") for _, m in refused)
        self._ask("Not enough memory", f"{text}\n\nRun anyway? (The job may be stopped when memory runs out.)",
                  lambda: self._confirm_and_start([replace(r, ignore_memory_check=True) if any(r is q for q, _ in refused)
                                                   else r for r in requests]))
        return True

    def _start_conversions(self, requests: list) -> None:
        self.session.clear_jobs()
        self.conversions.clear()
        self._stage_logged.clear()
        self.settings.set_value("choices/targets", self.targets.checked_keys())
        self.settings.set_value("choices/options", self.options.state())
        for request in requests:
            key = JobKey.conversion(request.target, request.precision)
            label = self.targets.choice(request.target).label
            self.session.add_job(key, f"{label} · {request.precision.upper()}")
            job = ConversionJob(request, parent=self)
            self.conversions[key] = job
            self._wire_job(key, job)
            self.log.add(f"queued {request.target} {request.precision}")
            job.start()
        self.statusBar().showMessage(f"Converting to {len(requests)} target(s)…")
        self._update_actions()

    def _on_job_progressed(self, key, stage: str, fraction: float) -> None:
        self.session.job_progressed(key, stage, fraction)
        if self._stage_logged.get(key) != stage:
            self._stage_logged[key] = stage
            self.log.add(f"{key.name or key.kind}: {stage}")

    def _on_job_succeeded(self, key, result) -> None:
        if key == BENCHMARK:
            self._on_benchmark_succeeded(result)
            return
        self.session.converted(self.conversions[key].request, result)
        v = result.verification
        self.log.add(f"{key.name}: wrote {result.artifact} ({result.size_bytes / 1e6:.2f} MB, "
                     f"{result.seconds:.1f} s)" + (f"; verification {v.summary()}" if v else ""))
        for w in result.warnings:
            self.log.add(f"{key.name}: warning: {w}")
        self.session.job_ended(key, DONE, "verified" if result.status == "ok" else result.status)
        self._refresh_graph()

    def _on_job_failed(self, key, state: str, message: str) -> None:
        if key == BENCHMARK:
            self.bench = None
        elif state == FAILED:
            self.session.converted(self.conversions[key].request, message=message)
        self.log.add(f"{key.name or key.kind}: {state}: {message}")
        self.session.job_ended(key, state, message)
        self._update_actions()

    def _on_job_cancel_requested(self, key) -> None:
        job = self.bench if key == BENCHMARK else self.conversions.get(key) or self.background_jobs.get(key)
        if job is not None:
            self.log.add(f"{key}: cancelling")
            job.cancel()

    def _on_cancel_all_triggered(self) -> None:
        for key, job in list(self.session.jobs.items()):
            if not job.ended:
                self.session.job_cancelling(key)
                self._on_job_cancel_requested(key)

    def _on_all_jobs_finished(self) -> None:
        counts = self.session.job_counts()
        text = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        self.statusBar().showMessage(f"Finished: {text}", 10000)
        self.log.add(f"all jobs finished: {text}")
        self._update_actions()
