"""Measuring in child processes: benchmarking the source and its artifacts, sweeping the artifacts,
and diagnosing where an fp16/int8 artifact's error comes from. The charts, the Sweep tab and the
Diagnosis tab draw the results themselves (they observe the session); this starts the jobs.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from app.session import BENCHMARK, SWEEP, JobKey
from ui.workers import DONE, FAILED, BackgroundJob


class Measuring:
    """Benchmarking, sweeping, diagnosing and profiling in child processes."""

    def __init__(self, window) -> None:
        self.window = window
        window.benchmark_button.clicked.connect(self._on_benchmark_triggered)
        window.benchmark_action.triggered.connect(self._on_benchmark_triggered)
        window.results.diagnose_requested.connect(self.diagnose)
        window.profile_panel.profile_requested.connect(self.profile_selected)
        events = window.session.events  # the charts and the Sweep and Diagnosis tabs draw these themselves
        events.benchmark_finished.connect(self._on_benchmark_finished)
        events.sweep_finished.connect(self._on_sweep_finished)
        events.diagnosis_finished.connect(self._on_diagnosis_finished)
        events.profile_finished.connect(self._on_profile_finished)

    def benchmark_blockers(self) -> list[str]:
        from app.errors import BadInput

        w = self.window
        blockers = [b for b in w.converting.convert_blockers() if not b.startswith("tick at least")]
        if BENCHMARK in w.running:
            blockers.append("a benchmark is running")
        try:
            w.bench_options.batch_sizes()
        except BadInput as e:
            blockers.append(f"batch sizes: {e}")
        return blockers

    def bench_request(self):
        """The :class:`app.bench.run.BenchRequest` of the Benchmark button: the source, every
        artifact in the results table, the batch sizes and counts (raises ``BadInput``)."""
        from app.bench.harness import BenchConfig
        from app.bench.run import BenchRequest

        w = self.window
        config = BenchConfig(batches=tuple(w.bench_options.batch_sizes()), warmup=w.bench_options.warmup.value(),
                             runs=w.bench_options.runs.value(), min_seconds=0.5, threads=None)
        return BenchRequest(w.converting.model_source(), tuple(w.results.artifacts()), config)

    def _on_benchmark_triggered(self) -> None:
        from app.errors import BadInput
        from ui.workers import benchmark_job

        w = self.window
        blockers = self.benchmark_blockers()
        request = None
        try:
            request = self.bench_request() if not blockers else None  # typed here: the child parses nothing
        except BadInput as e:
            blockers.append(str(e))
        if blockers:
            w.statusBar().showMessage(f"Cannot benchmark: {blockers[0]}", 8000)
            return
        w.settings.set_value("choices/bench", w.bench_options.state())
        w.log.add(f"benchmark: source + {len(request.artifacts)} artifact(s), "
                  f"batch {list(request.config.batches)}")
        w.start_job(BENCHMARK, "Benchmark", benchmark_job(request, w),
                    lambda _job, result: w.session.benchmarked(result), w.converting.on_job_failed,
                    progress=True, log_as=str(BENCHMARK))
        w.menus.update_actions()

    def sweep_request(self):
        """The :class:`app.bench.sweep.SweepRequest` of the Sweep tab (raises ``BadInput``)."""
        from app.bench.sweep import SweepRequest

        w = self.window
        return SweepRequest(w.converting.model_source(), tuple(w.results.artifacts()),
                            tuple(w.sweep_panel.sweep_items()),
                            w.sweep_panel.seconds.value(), w.sweep_panel.p99_budget_ms())

    def sweep_file(self):
        """Where the sweep's result is saved: beside the artifacts (``serve-bundle --from-sweep``, the report)."""
        artifacts = self.window.results.artifacts()
        return artifacts[0].parent / f"{self.window.model_path.stem}.sweep.json" if artifacts else None

    def sweep(self) -> None:
        """Sweep every artifact over the Sweep tab's grid (its Run button), unless something blocks it."""
        from app.errors import BadInput
        from ui.workers import sweep_job

        w = self.window
        blockers = [b for b in self.benchmark_blockers() if not b.startswith("batch sizes")]
        if not w.results.artifacts():
            blockers.append("convert first: the sweep measures artifacts")
        if SWEEP in w.running:
            blockers.append("a sweep is running")
        request = None
        try:
            request = self.sweep_request() if not blockers else None
        except BadInput as e:
            blockers.append(str(e))
        if blockers:
            w.statusBar().showMessage(f"Cannot sweep: {blockers[0]}", 8000)
            return
        w.log.add(f"sweep: {len(request.artifacts)} artifact(s), {' '.join(request.sweep)}")
        w.start_job(SWEEP, "Deployment sweep", sweep_job(request, self.sweep_file(), w),
                    lambda _job, data: w.session.swept(data), self._on_sweep_failed, progress=True, log_as="sweep")

    def _on_sweep_finished(self, data: dict) -> None:
        w = self.window
        w.session.job_ended(SWEEP, DONE, f"{len(data.get('points', []))} points")
        for p in data.get("proposals", []):
            w.log.add(f"sweep {p['name']}: {p['why']}")
        w.tabs.setCurrentWidget(w.sweep_page)

    def _on_sweep_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        self.window.log.add(f"sweep: {state}: {message}")
        self.window.session.job_ended(job.key, state, message)

    def _on_benchmark_finished(self, result: dict) -> None:
        """Log the benchmark's headline (the charts draw it themselves) and show the Latency tab."""
        w = self.window
        rows = list(result.get("results", []))
        machine = result.get("machine") or {}
        if machine:
            w.log.add("benchmark machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
        first_batch = min((int(r["batch"]) for r in rows), default=None)  # the batch the Latency chart shows
        for r in rows:
            if int(r.get("batch", 0)) == first_batch:
                w.log.add(f"benchmark {r['name']}: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms"
                          + (f", ×{r['speedup_vs_baseline']:.2f}" if r.get("speedup_vs_baseline") else ""))
        w.tabs.setCurrentIndex(0)
        if BENCHMARK in w.session.jobs and not w.session.jobs[BENCHMARK].ended:  # (not one read back from disk)
            w.session.job_ended(BENCHMARK, DONE, f"{len(rows)} measurements")
        w.menus.update_actions()

    def diagnose(self, row: int) -> BackgroundJob | None:
        """Rank the nodes of the row's fp16/int8 ONNX artifact by the error they add on the data."""
        from ui.workers import diagnosis_job

        w = self.window
        info = w.results.rows[row]
        data = info.request.data or w.options.data_source()
        if data is None:
            w.show_message(QMessageBox.Icon.Information, "Diagnosis needs data",
                           "Ranking nodes by the error they add runs the model on real samples: choose a data "
                           "folder (Data…, or drop one on the window), then ask again.")
            return None
        job = diagnosis_job(info.request.source, data, info.artifact, info.request.options, parent=w)
        return w.start_job(JobKey("diagnose", info.artifact.name), f"Diagnose · {info.artifact.name}", job,
                           self._on_diagnosed, self._on_background_failed, progress=True)

    def _on_diagnosed(self, job: BackgroundJob, result: dict) -> None:
        self.window.session.job_ended(job.key, DONE, f"{len(result['ranking'])} nodes compared")
        self.window.session.diagnosed(job.payload, result)

    def _on_diagnosis_finished(self, artifact, result: dict) -> None:
        """After the Diagnosis tab has drawn it (it observes the session): show the tab."""
        w = self.window
        w.tabs.setCurrentWidget(w.diagnosis)
        w.log.add(f"diagnosis of {artifact.name}: {len(result['ranking'])} nodes ranked by the error they add")

    def profile_selected(self) -> BackgroundJob | None:
        """The Profile tab's button: profile the artifact selected in the results (the only one, if one)."""
        w = self.window
        row = w.results.selected_row()
        with_file = [i for i, r in enumerate(w.results.rows) if r.artifact is not None and r.artifact.exists()]
        if row is None and len(with_file) == 1:
            row = with_file[0]
        if row is None or row not in with_file:
            w.statusBar().showMessage("Cannot profile: select an artifact in the results first (convert one if "
                                      "there is none)", 8000)
            return None
        return self.profile(row)

    def profile(self, row: int) -> BackgroundJob | None:
        """Time each node of the row's artifact with its runtime's own profiler, in a child."""
        from app.bench.harness import BenchConfig
        from ui.workers import profiling_job

        w = self.window
        artifact = w.results.rows[row].artifact
        key = JobKey("profile", artifact.name)
        if key in w.running:
            w.statusBar().showMessage(f"{artifact.name} is being profiled", 5000)
            return None
        config = BenchConfig(warmup=w.bench_options.warmup.value(), runs=w.bench_options.runs.value(),
                             min_seconds=0.5, threads=None)
        return w.start_job(key, f"Profile · {artifact.name}", profiling_job(artifact, config, parent=w),
                           self._on_profiled, self._on_background_failed, progress=True)

    def _on_profiled(self, job: BackgroundJob, result: dict) -> None:
        self.window.session.job_ended(job.key, DONE, f"{len(result['nodes'])} nodes timed")
        self.window.session.profiled(job.payload, result)

    def _on_profile_finished(self, artifact, result: dict) -> None:
        """After the Profile tab has drawn it (it observes the session): show the tab."""
        w = self.window
        w.tabs.setCurrentWidget(w.profile_panel)
        cover = f", coverage {result['coverage']:.0%}" if result.get("coverage") is not None else ""
        w.log.add(f"profile of {artifact.name}: {len(result['nodes'])} nodes, node sum {result['node_sum_ms']:.3f} ms, "
                  f"median {result['median_ms']:.3f} ms{cover}")

    def _on_background_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        w = self.window
        key = job.key
        w.log.add(f"{key}: {state}: {message}")
        w.session.job_ended(key, state, message)
        if state == FAILED:
            w.show_message(QMessageBox.Icon.Warning, f"Cannot {key}", message)
