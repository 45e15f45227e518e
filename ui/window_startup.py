"""Start-up after the first paint: the charts, the targets this machine can build, the engine's
warm-up, and what the status bar says (sandbox, CPU, GPU).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QScrollArea

from app.session import JobKey


class StartUp:
    """Start-up after the first paint: the charts, the targets this machine can build, the engine's
    warm-up, and the status bar's sandbox, CPU and GPU lines; the window is ready (``window.ready``)
    once the charts are built and the targets known."""

    def __init__(self, window) -> None:
        self.window = window
        self._targets_known = False
        self._charts_built = False
        self._hardware = ""                 # the CPU line of the status bar, once the targets are probed
        self._gpu_name = ""                 # the GPU, once the engine's child process has looked
        # with the window as the timer's context: never called once the window is gone
        window.first_painted.connect(lambda: QTimer.singleShot(0, window, self._on_first_painted))

    def _show_sandbox_status(self) -> None:
        from app.safety.sandbox import status as sandbox_status

        w = self.window
        sandboxed, line = sandbox_status()  # one syscall: whether model code can be fenced here
        w.sandbox_label.setText("Sandboxed" if sandboxed else "Not sandboxed")
        w.sandbox_label.setToolTip(line[0].upper() + line[1:])
        if not sandboxed:
            w.sandbox_label.setStyleSheet("color: #b35900; font-weight: bold")

    def _on_first_painted(self) -> None:
        w = self.window
        if w.closed:  # closed before the event loop came back: start nothing that would outlive it
            return
        self._show_sandbox_status()
        w.engine_label.setText("engine loading…")
        w.engine_label.setToolTip("PyTorch, ONNX and ONNX Runtime are imported in the background; the window works meanwhile")
        from ui.workers import engine_job, targets_job

        w.running.start(JobKey("probe targets"), targets_job(w), self._on_targets_probed,
                        lambda _job, _s, message: w.log.add(f"probing the targets failed: {message}"))
        w.running.start(JobKey("warm engine"), engine_job(w), self._on_engine_warmed, self._on_engine_failed)
        QTimer.singleShot(0, w, self._build_charts)

    def _build_charts(self) -> None:
        w = self.window
        if w.closed:
            return
        from ui.latency_chart import BatchChart, LatencyChart
        from ui.sweep_panel import SweepPanel

        w.latency_chart = LatencyChart(w.session)
        w.batch_chart = BatchChart(w.session)
        w.sweep_panel = SweepPanel(w.session)
        w.sweep_panel.run_requested.connect(w.measuring.sweep)
        w.latency_page.put(w.latency_chart)
        w.batch_page.put(w.batch_chart)
        sweep_scroll = QScrollArea()  # its form must not raise the window's minimum size
        sweep_scroll.setWidgetResizable(True)
        sweep_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        sweep_scroll.setWidget(w.sweep_panel)
        w.sweep_page.put(sweep_scroll)
        from ui.accuracy_chart import AccuracyChart

        w.accuracy_chart = AccuracyChart(w.session)
        w.accuracy_page.put(w.accuracy_chart)
        self._charts_built = True
        self._check_ready()

    def _on_targets_probed(self, _job, choices: list) -> None:
        from app.loaders.kinds import supported
        from ui.warmup import hardware_summary

        w = self.window
        self._hardware = hardware_summary()  # /proc/cpuinfo, already read (and cached) by the probe
        self._show_hardware()
        w.targets.set_choices(choices)
        w.options.set_catalogue(choices)
        w.model.show_supported(supported())  # the kinds are declared: the probe imported the engine
        w.targets.set_checked_keys(w.settings.value("choices/targets", []))
        self._targets_known = True
        self._check_ready()

    def _show_hardware(self) -> None:
        """CPU instruction sets (from the probe) and the GPU (once the engine's child has looked)."""
        if not self._hardware:
            return
        cpu = self._hardware.rsplit(" · GPU: ", 1)[0]
        self.window.hardware_label.setText(cpu + (f" · GPU: {self._gpu_name}" if self._gpu_name else
                                                  " · GPU: " + self._hardware.rsplit(" · GPU: ", 1)[-1]))

    def _check_ready(self) -> None:
        w = self.window
        if self._targets_known and self._charts_built and not w.is_ready:
            w.is_ready = True
            w.menus.update_actions()
            w.statusBar().showMessage("Ready: drop a model on the window", 5000)
            w.ready.emit()

    def _on_engine_warmed(self, _job, info: dict) -> None:
        self.window.engine_label.setText("engine ready")
        self.window.engine_label.setToolTip(f"the jobs' processes start with torch {info.get('torch', '?')}, ONNX and "
                                            "ONNX Runtime already imported")
        self._gpu_name = info.get("gpu") or "none"  # the child process imported torch and asked CUDA
        self._show_hardware()
        self.window.engine_ready.emit()

    def _on_engine_failed(self, _job, _state: str, message: str) -> None:
        self.window.engine_label.setText("engine failed to start")
        self.window.log.add(f"the engine failed to start: {message}")
