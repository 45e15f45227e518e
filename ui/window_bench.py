"""Benchmarking and sweeping the source and its artifacts in child processes, and showing the rows.

A part of :class:`ui.main_window.MainWindow` (which keeps the widgets, the signals and the wiring).
"""

from __future__ import annotations

from ui.workers import DONE

BENCH_KEY = ("benchmark", "all")   # the jobs-view row of the benchmark
SWEEP_KEY = ("sweep", "all")


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

    def benchmark_payload(self) -> dict:
        sig = self.model.signature()
        pass_inputs = self.model.inputs_must_be_given()
        return {"model": str(self.model_path), "artifacts": [str(p) for p in self.results.artifacts()],
                "inputs": sig.input_flags() if pass_inputs else [], "dynamic": sig.dynamic_flags(),
                "arch": self.model.arch(), "arch_kwargs": self.model.arch_kwargs(),
                "allow_pickle": self.allow_pickle, "trusted_globals": list(self.trusted_globals),
                "batch": self.bench_options.batch_sizes(),
                "warmup": self.bench_options.warmup.value(), "runs": self.bench_options.runs.value(),
                "min_seconds": 0.5, "threads": None}

    def _on_benchmark_triggered(self) -> None:
        from app.bench.request import bench_request
        from app.errors import BadInput
        from ui.workers import benchmark_job

        blockers = self.benchmark_blockers()
        payload = self.benchmark_payload() if not blockers else None
        try:
            request = bench_request(payload) if payload else None  # typed here: the child parses nothing
        except BadInput as e:
            blockers.append(str(e))
        if blockers:
            self.statusBar().showMessage(f"Cannot benchmark: {blockers[0]}", 8000)
            return
        self.settings.set_value("choices/bench", self.bench_options.state())
        self.bench = benchmark_job(request, self)
        self.jobs.add_job(BENCH_KEY, "Benchmark")
        self._wire_job(BENCH_KEY, self.bench)
        self.log.add(f"benchmark: source + {len(payload['artifacts'])} artifact(s), batch {payload['batch']}")
        self.bench.start()
        self._update_actions()

    def sweep_payload(self) -> dict:
        """The benchmark payload's source fields, the artifacts, the grid, and where the result is saved."""
        payload = {k: v for k, v in self.benchmark_payload().items() if k not in ("batch", "warmup", "runs", "min_seconds")}
        artifacts = self.results.artifacts()
        payload.update(sweep=self.sweep_panel.sweep_items(), seconds=self.sweep_panel.seconds.value(),
                       p99_budget_ms=self.sweep_panel.p99_budget_ms(),
                       save=str(artifacts[0].parent / f"{self.model_path.stem}.sweep.json") if artifacts else None)
        return payload

    def _on_sweep_triggered(self) -> None:
        from app.errors import BadInput
        from ui.workers import sweep_job

        blockers = [b for b in self.benchmark_blockers() if not b.startswith("batch sizes")]
        if not self.results.artifacts():
            blockers.append("convert first: the sweep measures artifacts")
        if any(key == SWEEP_KEY for key in self.background_jobs):
            blockers.append("a sweep is running")
        try:
            payload = self.sweep_payload() if not blockers else None
        except BadInput as e:
            blockers.append(str(e))
        if blockers:
            self.statusBar().showMessage(f"Cannot sweep: {blockers[0]}", 8000)
            return
        self.log.add(f"sweep: {len(payload['artifacts'])} artifact(s), {' '.join(payload['sweep'])}")
        self._start_background(SWEEP_KEY, "Deployment sweep", sweep_job(payload, self),
                               self._on_sweep_done, self._on_sweep_failed)

    def _on_sweep_done(self, key, data: dict) -> None:
        self.background_jobs.pop(key, None)
        self.session.swept(data)

    def _on_sweep_finished(self, data: dict) -> None:
        self.sweep_panel.set_result(data)
        self.jobs.show_outcome(SWEEP_KEY, DONE, f"{len(data.get('points', []))} points")
        for p in data.get("proposals", []):
            self.log.add(f"sweep {p['name']}: {p['why']}")
        self.tabs.setCurrentWidget(self._sweep_holder)
        self.sweep_finished.emit(data)

    def _on_sweep_failed(self, key, state: str, message: str) -> None:
        self.background_jobs.pop(key, None)
        self.log.add(f"sweep: {state}: {message}")
        self.jobs.show_outcome(key, state, message)

    def _on_benchmark_succeeded(self, result: dict) -> None:
        self.bench = None
        self.session.benchmarked(result)

    def _on_benchmark_finished(self, result: dict) -> None:
        rows = self.show_benchmark(result)
        self.jobs.show_outcome(BENCH_KEY, DONE, f"{len(rows)} measurements")
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
