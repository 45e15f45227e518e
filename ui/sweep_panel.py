"""The Sweep tab: throughput against p99 for each artifact over threads × batch × concurrency, the knee
starred, and the serving settings it suggests (``app.bench.sweep``; "Export for serving" uses them)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QHBoxLayout, QLineEdit, QPushButton,
                               QVBoxLayout, QWidget)

from app.session import Session
from ui.chart_theme import ThemedChart, colors, elide, legend_below, series_color, set_title, show_axes
from ui.plain_text import PlainLabel, rich
from ui.wording import window_words

EMPTY = ("Sweep threads × batch × concurrency for every artifact: throughput against p99, the knee, "
         "and Triton settings (instances, threads, dynamic batching) for Export for serving")


class SweepChart(ThemedChart, pg.PlotWidget):
    """Throughput against p99 per artifact, in the charts' theme, the legend below the data."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Sweep chart")
        self.setMinimumHeight(180)
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setLabel("bottom", "p99 latency (ms)")
        plot.setLabel("left", "items/s")
        plot.getViewBox().setLimits(xMin=0, yMin=0)   # no negative latency or throughput
        self.legend = legend_below(plot, columns=3)
        self._built = True
        self.apply_palette()

    def theme_legends(self) -> list[pg.LegendItem]:
        return [self.legend]

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """No taller than its minimum: the panel's wrapped proposals make its scroll area size it by its
        height for its width, from its parts' preferred heights, and pyqtgraph's 480 pixels put the legend
        below the tab's bottom edge at 1280×860; the chart still takes the height the tab has (stretch)."""
        return QSize(super().sizeHint().width(), self.minimumHeight())


class SweepPanel(QWidget):
    """The grid to sweep, a Run button, the chart and the proposals; draws the session's finished sweep."""

    run_requested = Signal()

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if session is not None:
            session.events.sweep_finished.connect(self.set_result)
            # each point as it is measured, drawn before the sweep ends (its job's stages say them)
            session.events.job_added.connect(self._on_job_changed)
            session.events.job_changed.connect(self._on_job_changed)
        self.live: dict[str, list[dict]] = {}   # the running sweep's points so far, by artifact name
        self._live_items: dict = {}             # their scatter items on the chart, by artifact name
        self.setAccessibleName("Deployment sweep")
        self.data: dict | None = None
        self.threads = QLineEdit("1, 2")
        self.batches = QLineEdit("1, 4, 16")
        self.concurrency = QLineEdit("1, 2, 4")
        for edit, name in ((self.threads, "Sweep threads"), (self.batches, "Sweep batch sizes"),
                           (self.concurrency, "Sweep concurrency")):
            edit.setAccessibleName(name)
        self.seconds = QDoubleSpinBox()
        self.seconds.setRange(0.1, 60.0)
        self.seconds.setValue(1.0)
        self.seconds.setSuffix(" s per point")
        self.seconds.setAccessibleName("Seconds per sweep point")
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0.0, 1e6)
        self.budget.setSpecialValueText("knee")
        self.budget.setSuffix(" ms p99")
        self.budget.setAccessibleName("p99 budget")
        self.budget.setToolTip("propose the highest throughput whose p99 stays within this; 'knee': the knee")
        self.run_button = QPushButton("Run Sweep")
        self.run_button.setAccessibleName("Run sweep")
        self.run_button.clicked.connect(self.run_requested)
        form = QFormLayout()
        grid = QHBoxLayout()
        for label, edit in (("threads", self.threads), ("batch", self.batches), ("concurrency", self.concurrency)):
            grid.addWidget(PlainLabel(label))
            grid.addWidget(edit)
        form.addRow("Grid:", grid)
        knobs = QHBoxLayout()
        knobs.addWidget(self.seconds)
        knobs.addWidget(self.budget)
        knobs.addWidget(self.run_button)
        form.addRow("", knobs)
        self.chart = SweepChart()
        self.legend = self.chart.legend
        self.knees: list[pg.ScatterPlotItem] = []
        self.proposals = PlainLabel(EMPTY)
        self.proposals.setWordWrap(True)
        self.proposals.setAccessibleName("Sweep proposals")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.chart, 1)
        layout.addWidget(self.proposals)
        self._show_axes(False)

    def _show_axes(self, shown: bool) -> None:
        plot = self.chart.getPlotItem()
        show_axes(plot, shown, grid_x=True)
        self.legend.setVisible(shown)
        set_title(plot, "throughput against p99 latency · ★ the knee" if shown else "", colors(self.chart)[1])

    def sweep_items(self) -> list[str]:
        """The grid as ``bench --sweep`` takes it; raises ``BadInput`` with the field that is wrong."""
        from app.bench.sweep import parse_sweep

        items = [f"{key}={edit.text().replace(' ', '')}" for key, edit in
                 (("threads", self.threads), ("batch", self.batches), ("concurrency", self.concurrency))]
        parse_sweep(items)
        return items

    def p99_budget_ms(self) -> float | None:
        return self.budget.value() or None

    def _on_job_changed(self, job) -> None:
        from app.bench.sweep import measured_point
        from app.session import RUNNING, SWEEP

        if job.key != SWEEP:
            return
        if job.state != RUNNING or job.ended:
            if not job.ended:   # a new sweep, queued: the last one's live points go
                self.live, self._live_items = {}, {}
            elif self.data is None or job.state != "done":
                self.proposals.setText(f"sweep {job.state}: {job.message}" if job.message else f"sweep {job.state}")
            return
        point = measured_point(job.stage)
        if point is not None and point not in self.live.get(point["name"], []):
            self.live.setdefault(point["name"], []).append(point)
            self._draw_live()
        count = sum(len(points) for points in self.live.values())
        self.proposals.setText(f"Sweeping ({job.stage}): {count} point{'s' if count != 1 else ''} measured so far; "
                               "the knee and the serving settings follow when every point is measured")

    def live_points(self) -> list[dict]:
        """The running sweep's points measured so far (cleared when a sweep starts)."""
        return [p for points in self.live.values() for p in points]

    def _draw_live(self) -> None:
        """The points measured so far, one colour per artifact, before the sweep's result replaces them: the
        last result goes when the first point comes; then each artifact's scatter only takes its new data."""
        plot = self.chart.getPlotItem()
        if not self._live_items:
            plot.clear()
            self.legend.clear()
            self.knees = []
        for i, (name, points) in enumerate(self.live.items()):
            xy = ([p["p99_ms"] for p in points], [p["throughput"] for p in points])
            if name in self._live_items:
                self._live_items[name].setData(*xy)
                continue
            color = pg.intColor(i, hues=3, values=1, maxValue=200)
            self._live_items[name] = item = pg.ScatterPlotItem(*xy, size=7, brush=pg.mkBrush(color), pen=None,
                                                               name=rich(name))   # legends are HTML
            plot.addItem(item)
        self._show_axes(bool(self.live))

    def set_result(self, data: dict) -> None:
        """Draw a sweep result (the ``bench --sweep --json`` object) and list its proposals."""
        from app.bench.sweep import SweepPoint, pareto

        self.data = data
        self._live_items = {}
        plot = self.chart.getPlotItem()
        plot.clear()
        self.legend.clear()
        self.knees = []
        by: dict[str, list[SweepPoint]] = {}
        for p in data.get("points", []):
            by.setdefault(p["artifact"], []).append(SweepPoint(**p))
        knees = {p["artifact"]: p["knee"] for p in data.get("proposals", [])}
        _, fg = colors(self.chart)
        from ui.latency_chart import LEGEND_PX, _tick_names

        names = _tick_names([points[0].name for points in by.values()])
        for i, (artifact, points) in enumerate(by.items()):
            color = series_color(i, len(by))
            dots = pg.ScatterPlotItem([p.p99_ms for p in points], [p.throughput for p in points], size=7,
                                      brush=pg.mkBrush(color), pen=None)
            plot.addItem(dots)
            self.legend.addItem(dots, rich(elide(names[i], LEGEND_PX)))  # legends are HTML
            front = pareto(points)
            plot.plot([p.p99_ms for p in front], [p.throughput for p in front], pen=pg.mkPen(color, width=1.5))
            if artifact in knees:
                k = knees[artifact]
                star = pg.ScatterPlotItem([k["p99_ms"]], [k["throughput"]], symbol="star", size=18,
                                          brush=pg.mkBrush(color), pen=pg.mkPen(fg))
                plot.addItem(star)
                self.knees.append(star)
        self._show_axes(bool(by))
        if by:
            xs = [p["p99_ms"] for p in data.get("points", [])]
            ys = [p["throughput"] for p in data.get("points", [])]
            plot.setXRange(0, max(xs) * 1.08, padding=0)   # from 0: no negative latency
            plot.setYRange(0, max(ys) * 1.1, padding=0)
        self.chart.paint_theme()
        lines = []
        for p in data.get("proposals", []):
            batching = (f"dynamic batching {p['preferred_batch_sizes']}, queue delay {p['max_queue_delay_us']} µs"
                        if p.get("preferred_batch_sizes") else "no dynamic batching")
            lines.append(f"{p['name']}: {p['instances']} instance(s) × {p['threads_per_instance']} "
                         f"thread(s), {batching} — {p['why']}")
        lines += [f"skipped {s['artifact']}: {s['reason']}" for s in data.get("skipped", [])]
        lines += [f"note: {n}" for n in data.get("notes", [])]
        if data.get("saved"):
            lines.append(f"saved {data['saved']} (for serving exports and the report)")
        text = window_words("\n".join(lines))   # the core's hints in the window's terms
        self.proposals.setText(text or "no points were measured")  # plain text: names from files

    def proposal_for(self, artifact) -> dict | None:
        from pathlib import Path

        wanted = str(Path(artifact).resolve())
        return next((p for p in (self.data or {}).get("proposals", []) if p["artifact"] == wanted), None)

    def knee_positions(self) -> list[tuple[float, float]]:
        return [tuple(np.asarray(s.getData()).ravel()[:2]) for s in self.knees]
