"""Measuring in child processes: benchmarking the source and its artifacts, sweeping the artifacts,
and diagnosing where an fp16/int8 artifact's error comes from. The charts, the Sweep tab and the
Diagnosis tab draw the results themselves (they observe the session); this starts the jobs.

A part of :class:`ui.main_window.MainWindow` (which builds the widgets and wires them).
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from app.session import BENCHMARK, SWEEP, JobKey
from ui.workers import DONE, FAILED, BackgroundJob


class Benchmarking:
    """Benchmarking, sweeping and diagnosing in child processes."""

    def benchmark_blockers(self) -> list[str]:
        from app.errors import BadInput

        blockers = [b for b in self.convert_blockers() if not b.startswith("tick at least")]
        if BENCHMARK in self.running:
            blockers.append("a benchmark is running")
        try:
            self.bench_options.batch_sizes()
        except BadInput as e:
            blockers.append(f"batch sizes: {e}")
        return blockers

    def bench_request(self):
        """The :class:`app.bench.request.BenchRequest` of the Benchmark button: the source, every
        artifact in the results table, the batch sizes and counts (raises ``BadInput``)."""
        from app.bench.harness import BenchConfig
        from app.bench.request import BenchRequest

        config = BenchConfig(batches=tuple(self.bench_options.batch_sizes()), warmup=self.bench_options.warmup.value(),
                             runs=self.bench_options.runs.value(), min_seconds=0.5, threads=None)
        return BenchRequest(self.model_source(), tuple(self.results.artifacts()), config)

    def _on_benchmark_triggered(self) -> None:
        from app.errors import BadInput
        from ui.workers import benchmark_job

        blockers = self.benchmark_blockers()
        request = None
        try:
            request = self.bench_request() if not blockers else None  # typed here: the child parses nothing
        except BadInput as e:
            blockers.append(str(e))
        if blockers:
            self.statusBar().showMessage(f"Cannot benchmark: {blockers[0]}", 8000)
            return
        self.settings.set_value("choices/bench", self.bench_options.state())
        self.log.add(f"benchmark: source + {len(request.artifacts)} artifact(s), "
                     f"batch {list(request.config.batches)}")
        self._start_job(BENCHMARK, "Benchmark", benchmark_job(request, self),
                        lambda _job, result: self.session.benchmarked(result), self._on_job_failed,
                        progress=True, log_as=str(BENCHMARK))
        self._update_actions()

    def sweep_request(self):
        """The :class:`app.bench.sweep.SweepRequest` of the Sweep tab (raises ``BadInput``)."""
        from app.bench.sweep import SweepRequest

        return SweepRequest(self.model_source(), tuple(self.results.artifacts()), tuple(self.sweep_panel.sweep_items()),
                            self.sweep_panel.seconds.value(), self.sweep_panel.p99_budget_ms())

    def sweep_file(self):
        """Where the sweep's result is saved: beside the artifacts (``serve-bundle --from-sweep``, the report)."""
        artifacts = self.results.artifacts()
        return artifacts[0].parent / f"{self.model_path.stem}.sweep.json" if artifacts else None

    def _on_sweep_triggered(self) -> None:
        from app.errors import BadInput
        from ui.workers import sweep_job

        blockers = [b for b in self.benchmark_blockers() if not b.startswith("batch sizes")]
        if not self.results.artifacts():
            blockers.append("convert first: the sweep measures artifacts")
        if SWEEP in self.running:
            blockers.append("a sweep is running")
        request = None
        try:
            request = self.sweep_request() if not blockers else None
        except BadInput as e:
            blockers.append(str(e))
        if blockers:
            self.statusBar().showMessage(f"Cannot sweep: {blockers[0]}", 8000)
            return
        self.log.add(f"sweep: {len(request.artifacts)} artifact(s), {' '.join(request.sweep)}")
        self._start_job(SWEEP, "Deployment sweep", sweep_job(request, self.sweep_file(), self),
                        lambda _job, data: self.session.swept(data), self._on_sweep_failed)

    def _on_sweep_finished(self, data: dict) -> None:
        self.session.job_ended(SWEEP, DONE, f"{len(data.get('points', []))} points")
        for p in data.get("proposals", []):
            self.log.add(f"sweep {p['name']}: {p['why']}")
        self.tabs.setCurrentWidget(self._sweep_holder)

    def _on_sweep_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        self.log.add(f"sweep: {state}: {message}")
        self.session.job_ended(job.key, state, message)

    def _on_benchmark_finished(self, result: dict) -> None:
        """Log the benchmark's headline (the charts draw it themselves) and show the Latency tab."""
        rows = list(result.get("results", []))
        machine = result.get("machine") or {}
        if machine:
            self.log.add("benchmark machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
        first_batch = min((int(r["batch"]) for r in rows), default=None)  # the batch the Latency chart shows
        for r in rows:
            if int(r.get("batch", 0)) == first_batch:
                self.log.add(f"benchmark {r['name']}: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms"
                             + (f", ×{r['speedup_vs_baseline']:.2f}" if r.get("speedup_vs_baseline") else ""))
        self.tabs.setCurrentIndex(0)
        self.session.job_ended(BENCHMARK, DONE, f"{len(rows)} measurements")
        self._update_actions()

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
        job = diagnosis_job(info.request.source, data, info.artifact, info.request.options, parent=self)
        return self._start_job(JobKey("diagnose", info.artifact.name), f"Diagnose · {info.artifact.name}", job,
                               self._on_diagnosed, self._on_background_failed)

    def _on_diagnosed(self, job: BackgroundJob, result: dict) -> None:
        self.session.job_ended(job.key, DONE, f"{len(result['ranking'])} nodes compared")
        self.session.diagnosed(job.payload, result)

    def _on_diagnosis_finished(self, artifact, result: dict) -> None:
        """After the Diagnosis tab has drawn it (it observes the session): show the tab."""
        self.tabs.setCurrentWidget(self.diagnosis)
        self.log.add(f"diagnosis of {artifact.name}: {len(result['ranking'])} nodes ranked by the error they add")

    def _on_background_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        key = job.key
        self.log.add(f"{key}: {state}: {message}")
        self.session.job_ended(key, state, message)
        if state == FAILED:
            self._show_message(QMessageBox.Icon.Warning, f"Cannot {key}", message)
