"""Converting: the requests the window builds, asking for data where int8 wants it, and the
jobs' results and failures (the jobs list and the results table draw them from the session).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.accuracy.verdict import cancelled, failed
from app.session import JobKey
from ui.plain_text import plain_box
from ui.window_model import INSPECTION
from ui.workers import CANCELLED, DONE, FAILED, ConversionJob


class Converting:
    """Converting: the requests the window builds, asking for data where int8 wants it, and the
    jobs' results and failures."""

    def __init__(self, window) -> None:
        self.window = window
        window.convert_button.clicked.connect(self._on_convert_triggered)
        window.convert_action.triggered.connect(self._on_convert_triggered)

    def convert_blockers(self) -> list[str]:
        """Why Convert cannot start now (empty: it can)."""
        w = self.window
        if not w.is_ready:
            return ["the window is still starting"]
        if w.model_path is None:
            return ["load a model first (drop it on the window or press Ctrl+O)"]
        if INSPECTION in w.running:
            return ["the model is still loading"]
        if w.session.jobs_running:
            return ["conversions are running"]
        problems = list(w.model.signature().problems)
        if not w.targets.checked():
            problems.append("tick at least one target and precision")
        return problems

    def model_source(self):
        """The source model as the window shows it (an ``app.request.ModelSource``): its signature where
        the user must give or changed it, the dynamic axes the model does not declare itself, the
        network of a state dict and what the user trusted; converting, benchmarking and sweeping all
        load it from this."""
        from app.request import ModelSource

        w = self.window
        summary = w.model.summary or {}
        sig = w.model.signature()
        declared = {(s["name"], i) for s in summary.get("inputs", [])
                    for i, d in enumerate(s.get("shape") or []) if isinstance(d, str)}
        pass_inputs = w.model.inputs_must_be_given()
        dynamic = [d for d in sig.dynamic if pass_inputs or (d[0], d[1]) not in declared]
        return ModelSource(w.model_path, inputs=tuple(sig.inputs) if pass_inputs else (),
                           dynamic=tuple(dynamic), arch=w.model.arch(),
                           arch_kwargs=tuple(w.model.arch_kwargs().items()),
                           allow_pickle=w.allow_pickle, trusted_globals=w.trusted_globals)

    def build_request(self, target: str, precision: str):
        """The :class:`ConversionRequest` for one ticked box, from everything the window shows."""
        from app.request import ConversionRequest

        w = self.window
        options = w.targets.choice(target).options_in(w.options.values(), precision)  # what shapes this target at this precision
        return ConversionRequest(self.model_source(), target, precision, options,
                                 data=w.options.data_source(), out_dir=w.options.output_folder(),
                                 overwrite=w.options.overwrite.isChecked())

    def _on_convert_triggered(self) -> None:
        from app.errors import BadInput

        w = self.window
        blockers = self.convert_blockers()
        if blockers:
            w.statusBar().showMessage(f"Cannot convert: {blockers[0]}", 8000)
            return
        try:
            requests = [self.build_request(t, p) for t, p in w.targets.checked()]
        except BadInput as e:
            w.show_message(QMessageBox.Icon.Warning, "Cannot convert", str(e))
            return
        if self._needs_data(requests):
            self._ask_for_data(requests)
            return
        self._confirm_and_start(requests)

    def _needs_data(self, requests: list) -> bool:
        """Automatic INT8 without data: the user must choose a folder or random data, knowingly."""
        return any(self.window.targets.choice(r.target).wants_data(r) for r in requests)

    def _ask_for_data(self, requests: list) -> QMessageBox:
        w = self.window
        box = plain_box(QMessageBox.Icon.Question, "INT8 needs data",
                        "INT8 is calibrated and judged on real samples. Choose a data folder (images in class "
                        "folders, .npy/.npz files, or sentences with a tokenizer), or calibrate on random data — "
                        "then the artifact's accuracy on real inputs is unknown.", QMessageBox.StandardButton.Cancel,
                        w)
        choose = box.addButton("Choose data folder…", QMessageBox.ButtonRole.AcceptRole)
        random = box.addButton("Random data (accuracy unknown)", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(choose)
        box.setAccessibleName("INT8 needs data")
        w.dialog = box

        def answered(_result: int) -> None:
            w.on_dialog_finished(box)
            if box.clickedButton() is random:
                self._confirm_and_start([r.with_options(quantization="static")
                                         if w.targets.choice(r.target).wants_data(r) else r for r in requests])
            elif box.clickedButton() is choose:
                self._choose_data_folder()

        box.finished.connect(answered)
        box.open()
        return box

    def _choose_data_folder(self) -> QFileDialog:
        w = self.window
        start = w.options.calibration.text() or str(w.model_path.parent if w.model_path else Path.home())
        dialog = QFileDialog(w, "Data folder", start)
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.setAccessibleName("Data folder")

        def chosen(folder: str) -> None:  # Convert goes on once the folder is checked (a refusal says why)
            w.opening.set_data(folder).succeeded.connect(lambda _found: self._on_convert_triggered())

        dialog.fileSelected.connect(chosen)
        dialog.finished.connect(lambda _r: dialog.deleteLater())
        w.dialog = dialog
        dialog.open()
        return dialog

    def _confirm_and_start(self, requests: list) -> None:
        if self._memory_refused(requests):
            return
        if not self.window.options.overwrite.isChecked():
            from app.pipeline import artifact_path

            existing = [r for r in requests if artifact_path(r).exists()]
            if existing:
                self._ask_keep_or_replace(requests, existing)
                return
        self._start_conversions(requests)

    def _ask_keep_or_replace(self, requests: list, existing: list) -> QMessageBox:
        """Some ticked artifacts exist already: keep them (convert only the others), replace them, or cancel.
        Keep is the default: nothing the user made is lost unless they say so."""
        from dataclasses import replace

        from app.pipeline import artifact_path

        w = self.window
        names = "\n".join(f"  {artifact_path(r).name}" for r in existing)
        others = len(requests) - len(existing)
        text = (f"These files exist already in {artifact_path(existing[0]).parent}:\n{names}\n\n"
                f"Keep existing: they stay as they are"
                + (f" and only the other {others} target(s) are converted." if others else
                   "; nothing is converted.")
                + "\nReplace: they are converted again and overwritten.")
        box = plain_box(QMessageBox.Icon.Question, "Artifacts exist already", text,
                        QMessageBox.StandardButton.Cancel, w)
        keep = box.addButton("Keep existing", QMessageBox.ButtonRole.AcceptRole)
        overwrite = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(keep)
        box.setAccessibleName("Artifacts exist already")
        w.dialog = box

        def answered(_result: int) -> None:
            w.on_dialog_finished(box)
            if box.clickedButton() is overwrite:
                self._start_conversions([replace(r, overwrite=True) if r in existing else r for r in requests])
            elif box.clickedButton() is keep:
                self._keep_existing(requests, existing)

        box.finished.connect(answered)
        box.open()
        return box

    def _keep_existing(self, requests: list, existing: list) -> None:
        """Convert only the requests without an artifact; the kept ones are shown from disk."""
        from app.pipeline import artifact_path

        w = self.window
        for r in existing:
            w.log.add(f"kept {artifact_path(r)} (it exists already)")
        w.history.look(force=True)   # the kept artifacts' rows, from their manifests
        rest = [r for r in requests if r not in existing]
        if rest:
            self._start_conversions(rest)
        else:
            w.statusBar().showMessage("Nothing converted: every ticked artifact exists already and was kept", 8000)

    def _memory_refused(self, requests: list) -> bool:
        """Jobs whose memory estimate exceeds what is available: ask before running them anyway (their
        request then skips the job's own check); jobs that fit tightly are logged as warnings."""
        from dataclasses import replace

        from app.machine.memory import NotEnoughMemory, check_memory

        w = self.window
        source = (w.model.summary or {}).get("size_bytes")
        refused = []
        for request in requests:
            if request.ignore_memory_check:
                continue
            try:
                for warning in check_memory(request, source):
                    w.log.add(f"warning: {warning}")
            except NotEnoughMemory as e:
                refused.append((request, str(e)))
        if not refused:
            return False
        text = "\n\n".join(m.replace("; --ignore-memory-check runs it anyway", "") for _, m in refused)
        w.ask("Not enough memory", f"{text}\n\nRun anyway? (The job may be stopped when memory runs out.)",
              lambda: self._confirm_and_start([replace(r, ignore_memory_check=True) if any(r is q for q, _ in refused)
                                               else r for r in requests]))
        return True

    def _start_conversions(self, requests: list) -> None:
        w = self.window
        w.session.clear_jobs()
        w.settings.set_value("choices/targets", w.targets.checked_keys())
        w.settings.set_value("choices/options", w.options.state())
        for request in requests:
            key = JobKey.conversion(request.target, request.precision)
            label = w.targets.choice(request.target).label
            w.log.add(f"queued {request.target} {request.precision}")
            w.start_job(key, f"{label} · {request.precision.upper()}", ConversionJob(request, parent=w),
                        self._on_converted, self.on_job_failed, progress=True, log_as=str(key))
        w.statusBar().showMessage(f"Converting to {len(requests)} target(s)…")
        w.menus.update_actions()

    def _on_converted(self, job: ConversionJob, result) -> None:
        w = self.window
        key = job.key
        w.session.converted(job.request, result)
        v = result.verification
        w.log.add(f"{key.name}: wrote {result.artifact} ({result.size_bytes / 1e6:.2f} MB, "
                  f"{result.seconds:.1f} s)" + (f"; verification {v.summary()}" if v else ""))
        if result.evaluation is not None:
            w.log.add(f"{key.name}: on data: {result.evaluation.summary()}")
        for warning in result.warnings:
            w.log.add(f"{key.name}: warning: {warning}")
        if result.accuracy_budget:
            labelled = result.evaluation is not None and result.evaluation.artifact_top1 is not None
            self._show_budget_rounds(key, result.accuracy_budget, labelled)
        verdict = result.verdict
        w.log.add(f"{key.name}: {verdict.text()}")
        w.session.job_ended(key, DONE, verdict.summary(), verdict)

    def _show_budget_rounds(self, key, b: dict, labelled: bool) -> None:
        """Log each accuracy-budget round and draw the rounds on the accuracy chart (also for a job that
        wrote nothing because no round reached the speed floor: its error carries the rounds)."""
        from app.accuracy.budget import budget_rounds_text
        from ui.accuracy_chart import budget_points, floor_latency_ms

        w = self.window
        w.log.add(f"{key.name}: accuracy budget {b['budget']} {'met' if b['met'] else 'NOT met'} "
                  f"(stopped: {b['stopped']})")
        for line in budget_rounds_text(b):
            w.log.add(f"{key.name}: {line}")
        w.accuracy_chart.set_rounds(budget_points(key.name, b, labelled),
                                    "top-1 on the data" if labelled else "mean cosine on the data", floor_latency_ms(b))

    def on_job_failed(self, job, state: str, message: str) -> None:
        """A conversion or the benchmark failed or was cancelled (a failed conversion gets a red row)."""
        w = self.window
        key = job.key
        if state == FAILED and isinstance(job, ConversionJob):
            w.session.converted(job.request, message=message)
        w.log.add(f"{key.name or key.kind}: {state}: {message}")
        details = getattr(getattr(job, "error", None), "details", None)    # app.errors.BudgetUnmet's rounds
        if state == FAILED and isinstance(details, dict) and isinstance(details.get("accuracy_budget"), dict):
            b = details["accuracy_budget"]
            rounds = [r for r in b.get("rounds") or [] if isinstance(r, dict) and "latency_ms" in r]
            self._show_budget_rounds(key, b, bool(rounds) and all(r.get("artifact_top1") is not None for r in rounds))
        verdict = None
        if isinstance(job, ConversionJob):   # no artifact: failed, or cancelled
            verdict = cancelled(message) if state == CANCELLED else failed(message)
        w.session.job_ended(key, state, message, verdict)
        w.menus.update_actions()
