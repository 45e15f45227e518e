"""Start-up after the first paint: the charts, the targets this machine can build, the engine's
warm-up, and what the status bar says (sandbox, CPU, GPU).

A part of :class:`ui.main_window.MainWindow` (which keeps the widgets, the signals and the wiring).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QScrollArea


class StartUp:
    """Start-up after the first paint: the charts, the targets this machine can build, the engine's"""

    def _show_sandbox_status(self) -> None:
        from app.safety.sandbox import status as sandbox_status

        sandboxed, line = sandbox_status()  # one syscall: whether model code can be fenced here
        self.sandbox_label.setText("Sandboxed" if sandboxed else "Not sandboxed")
        self.sandbox_label.setToolTip(line[0].upper() + line[1:])
        if not sandboxed:
            self.sandbox_label.setStyleSheet("color: #b35900; font-weight: bold")

    def _on_first_painted(self) -> None:
        self._show_sandbox_status()
        self.engine_label.setText("loading PyTorch and ONNX in the background…")
        from ui.workers import engine_job, targets_job

        probe = targets_job(self)
        probe.succeeded.connect(self._on_targets_probed)
        probe.failed.connect(lambda _s, message: self.log.add(f"probing the targets failed: {message}"))
        probe.start()
        engine = engine_job(self)
        engine.succeeded.connect(self._on_engine_warmed)
        engine.failed.connect(self._on_engine_failed)
        engine.start()
        self._startup_jobs = [probe, engine]
        QTimer.singleShot(0, self._build_charts)

    def _build_charts(self) -> None:
        from ui.latency_chart import BatchChart, LatencyChart

        from ui.sweep_panel import SweepPanel

        self.latency_chart = LatencyChart()
        self.batch_chart = BatchChart()
        self.sweep_panel = SweepPanel()
        self.sweep_panel.run_requested.connect(self._on_sweep_triggered)
        self._latency_holder.put(self.latency_chart)
        self._batch_holder.put(self.batch_chart)
        sweep_scroll = QScrollArea()  # its form must not raise the window's minimum size
        sweep_scroll.setWidgetResizable(True)
        sweep_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        sweep_scroll.setWidget(self.sweep_panel)
        self._sweep_holder.put(sweep_scroll)
        from ui.accuracy_chart import AccuracyChart

        self.accuracy_chart = AccuracyChart()
        self._accuracy_holder.put(self.accuracy_chart)
        self._charts_built = True
        self._check_ready()

    def _on_targets_probed(self, choices: list) -> None:
        from ui.warmup import hardware_summary

        self._hardware = hardware_summary()  # /proc/cpuinfo, already read (and cached) by the probe
        self._show_hardware()
        self.targets.set_choices(choices)
        self.options.set_catalogue(choices)
        self.targets.set_source_format(self.model.source_format)
        self.targets.set_checked_keys(self.settings.value("choices/targets", []))
        self._targets_known = True
        self._check_ready()

    def _show_hardware(self) -> None:
        """CPU instruction sets (from the probe) and the GPU (once the engine's child has looked)."""
        if not self._hardware:
            return
        cpu = self._hardware.rsplit(" · GPU: ", 1)[0]
        self.hardware_label.setText(cpu + (f" · GPU: {self._gpu_name}" if self._gpu_name else
                                           " · GPU: " + self._hardware.rsplit(" · GPU: ", 1)[-1]))

    def _check_ready(self) -> None:
        if self._targets_known and self._charts_built and not self.is_ready:
            self.is_ready = True
            self._update_actions()
            self.statusBar().showMessage("Ready: drop a model on the window", 5000)
            self.ready.emit()

    def _on_engine_warmed(self, info: dict) -> None:
        self.engine_label.setText(f"engine ready (torch {info.get('torch', '?')})")
        self._gpu_name = info.get("gpu") or "none"  # the child process imported torch and asked CUDA
        self._show_hardware()
        self.engine_ready.emit()

    def _on_engine_failed(self, _state: str, message: str) -> None:
        self.engine_label.setText("engine failed to start")
        self.log.add(f"the engine failed to start: {message}")
