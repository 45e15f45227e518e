"""Benchmarking and sweeping the source and its artifacts in child processes, and showing the rows.

A part of :class:`ui.main_window.MainWindow` (which keeps the widgets, the signals and the wiring).
"""

from __future__ import annotations

from app.session import BENCHMARK, SWEEP
from ui.workers import DONE


class Benchmarking:
    """Benchmarking and sweeping the source and its artifacts in child processes, and showing the rows."""

    def benchmark_blockers(self) -> list[str]:
        from app.errors import BadInput

        blockers = [b for b in self.convert_blockers() if not b.startswith("tick at least")]
        if self.bench is not None:
            blockers.append("a benchmark is running")
        try:
            self.bench_options.batch_sizes()
        except BadInput as e:
            blockers.append(f"batch sizes: {e}")
        return blockers

    def bench_request(self):
        """The :class:`app.bench.run.BenchRequest` of the Benchmark button: the source, every
        artifact in the results table, the batch sizes and counts (raises ``BadInput``)."""
        from app.bench.harness import BenchConfig
        from app.bench.run import BenchRequest

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
        self.bench = benchmark_job(request, self)
        self.session.add_job(BENCHMARK, "Benchmark")
        self._wire_job(BENCHMARK, self.bench)
        self.log.add(f"benchmark: source + {len(request.artifacts)} artifact(s), "
                     f"batch {list(request.config.batches)}")
        self.bench.start()
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
        if any(key == SWEEP for key in self.background_jobs):
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
        self._start_background(SWEEP, "Deployment sweep", sweep_job(request, self.sweep_file(), self),
                               self._on_sweep_done, self._on_sweep_failed)

    def _on_sweep_done(self, key, data: dict) -> None:
        self.background_jobs.pop(key, None)
        self.session.swept(data)

    def _on_sweep_finished(self, data: dict) -> None:
        self.sweep_panel.set_result(data)
        self.session.job_ended(SWEEP, DONE, f"{len(data.get('points', []))} points")
        for p in data.get("proposals", []):
            self.log.add(f"sweep {p['name']}: {p['why']}")
        self.tabs.setCurrentWidget(self._sweep_holder)
        self.sweep_finished.emit(data)

    def _on_sweep_failed(self, key, state: str, message: str) -> None:
        self.background_jobs.pop(key, None)
        self.log.add(f"sweep: {state}: {message}")
        self.session.job_ended(key, state, message)

    def _on_benchmark_succeeded(self, result: dict) -> None:
        self.bench = None
        self.session.benchmarked(result)

    def _on_benchmark_finished(self, result: dict) -> None:
        rows = self.show_benchmark(result)
        self.session.job_ended(BENCHMARK, DONE, f"{len(rows)} measurements")
        self._update_actions()
        self.benchmark_finished.emit(result)

    def show_benchmark(self, result: dict) -> list[dict]:
        """Chart a benchmark result ``{"machine": {...}, "results": [rows]}`` and log its headline."""
        rows = list(result.get("results", []))
        self.latency_chart.set_rows(rows)
        self.batch_chart.set_rows(rows)
        from ui.accuracy_chart import accuracy_points

        evaluations = {str(r.artifact): r.result.evaluation for r in self.results.rows
                       if r.result is not None and r.result.evaluation is not None and r.artifact}
        self.accuracy_chart.set_points(*accuracy_points(rows, evaluations))
        machine = result.get("machine") or {}
        if machine:
            self.log.add("benchmark machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
        for r in rows:
            if int(r.get("batch", 0)) == self.latency_chart.batch:
                self.log.add(f"benchmark {r['name']}: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms"
                             + (f", ×{r['speedup_vs_baseline']:.2f}" if r.get("speedup_vs_baseline") else ""))
        self.tabs.setCurrentIndex(0)
        self._update_actions()
        return rows
