"""Benchmark charts: latency per runner (p50 bars, p90/p99 whiskers, speedups) and the batch sweep.

Both are built from the benchmark engine's JSON rows ``{"name", "runtime", "provider", "precision",
"batch", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "throughput", "speedup_vs_baseline",
"cosine", "rel_l2"}``; both export to PNG and CSV, and hovering shows the exact numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QPalette
from PySide6.QtWidgets import QToolTip, QWidget

from app.session import Session
from ui.plain_text import rich, tooltip

def write_csv(rows: list[dict], path: str | Path) -> Path:
    """The rows as CSV, exactly as ``python main.py bench --csv`` writes them."""
    from app.bench.output import write_csv as write

    return write(rows, path)


def describe(row: dict) -> str:
    """Every number of one row, for the hover tooltip."""
    parts = [f"{row.get('name')}",
             " · ".join(str(row[k]) for k in ("runtime", "provider", "precision") if row.get(k)),
             f"batch {row.get('batch')}",
             f"p50 {row['p50_ms']:.3f} ms · p90 {row['p90_ms']:.3f} ms · p99 {row['p99_ms']:.3f} ms"]
    if row.get("mean_ms") is not None:
        parts.append(f"mean {row['mean_ms']:.3f} ± {row.get('std_ms') or 0:.3f} ms")
    if row.get("throughput") is not None:
        parts.append(f"throughput {row['throughput']:,.1f} items/s")
    if row.get("p50_ci_low_ms") is not None:
        parts.append(f"p50 95 % interval {row['p50_ci_low_ms']:.3f}–{row['p50_ci_high_ms']:.3f} ms"
                     + (" (too noisy to rank)" if row.get("noisy") else ""))
    if row.get("speedup_vs_baseline") is not None:
        parts.append(f"speedup vs source ×{row['speedup_vs_baseline']:.2f}"
                     + (f" [{row['speedup_ci_low']:.2f}–{row['speedup_ci_high']:.2f}]"
                        if row.get("speedup_ci_low") is not None and not row.get("baseline") else ""))
    if row.get("verdict"):
        parts.append(row["verdict"])
    if row.get("cosine") is not None:
        parts.append(f"cosine {row['cosine']:.6f} · rel L2 {row.get('rel_l2') or 0:.2e}")
    return "\n".join(parts)


def _colors(widget: QWidget) -> tuple[QColor, QColor]:
    pal = widget.palette()
    return pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)


def _style_plot(plot: pg.PlotItem, fg: QColor) -> None:
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.enableAutoSIPrefix(False)  # "latency (ms) (x0.001)" reads wrong; the label has the unit
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(pg.mkPen(fg))
    if plot.titleLabel.text:
        plot.setTitle(plot.titleLabel.text, color=fg.name(), size="9pt")


def _show_axes(plot: pg.PlotItem, shown: bool) -> None:
    """Axes only with data: an empty chart shows its message, not a meaningless −0.4…0.4 scale."""
    for name in ("left", "bottom"):
        plot.showAxis(name, shown)
    plot.showGrid(x=False, y=shown, alpha=0.25)


def _png(item, path: str | Path, width: int) -> Path:
    from pyqtgraph.exporters import ImageExporter

    exporter = ImageExporter(item)
    exporter.parameters()["width"] = width
    exporter.export(str(path))
    return Path(path)


def show_hover(widget: QWidget, text: str) -> None:
    """The hover tooltip of a chart: ``text`` at the cursor, or none."""
    if text:
        QToolTip.showText(QCursor.pos(), tooltip(text), widget)  # names from files, shown as written
    else:
        QToolTip.hideText()


def observe_benchmarks(chart, session: Session | None) -> None:
    """Let ``chart`` draw the session's finished benchmarks, and go blank when its model is forgotten; while
    a benchmark runs, its empty note says so (and at which stage) instead of asking for one."""
    if session is not None:
        session.events.benchmark_finished.connect(lambda result: chart.set_rows(result.get("results", [])))
        session.events.model_forgotten.connect(lambda: chart.set_rows([]))
        session.events.job_added.connect(lambda job: _show_benchmark_running(chart, job))
        session.events.job_changed.connect(lambda job: _show_benchmark_running(chart, job))


def _show_benchmark_running(chart, job) -> None:
    from app.session import BENCHMARK

    if job.key != BENCHMARK or getattr(chart, "_empty", None) is None:
        return
    idle = chart.__dict__.setdefault("idle_note", chart._empty.toPlainText())
    chart._empty.setText(idle if job.ended else
                         f"A benchmark is running ({job.stage or 'starting'}): the chart appears when it ends")


class _FollowsPalette:
    """Re-colours the chart when the system switches between light and dark."""

    def paint_plot(self) -> QColor:
        """Background, axes and the empty-chart text in the palette's colours; returns the text colour."""
        bg, fg = _colors(self)
        self.setBackground(bg)
        _style_plot(self.getPlotItem(), fg)
        self._empty.setColor(fg)
        return fg

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override: light/dark switch
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and getattr(self, "_built", False):
            self.apply_palette()


class LatencyChart(_FollowsPalette, pg.PlotWidget):
    """p50 latency per runner at one batch size: bars, p90/p99 whiskers, speedup labels, hover; draws
    the session's benchmarks (when given one)."""

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        observe_benchmarks(self, session)
        self.setAccessibleName("Latency chart")
        self.setMinimumHeight(220)
        self.rows: list[dict] = []          # every row, all batches
        self.shown: list[dict] = []         # the bars, in order
        self.batch: int | None = None
        self.hover_text = ""
        self.bars: pg.BarGraphItem | None = None
        self.whiskers: list[pg.ErrorBarItem] = []
        self.intervals: pg.ErrorBarItem | None = None  # the p50's 95 % bootstrap interval
        self.labels: list[pg.TextItem] = []
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.showGrid(y=True, alpha=0.25)
        plot.setLabel("left", "latency (ms)")  # no SI prefix: "kms" reads wrong
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        self._empty = pg.TextItem("Run a benchmark (Ctrl+B) to compare the source and every artifact",
                                  anchor=(0.5, 0.5))
        plot.addItem(self._empty)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._built = True
        self.apply_palette()
        self._draw()

    def apply_palette(self) -> None:
        fg = self.paint_plot()
        for label in self.labels:
            label.setColor(fg)

    def set_rows(self, rows: list[dict], batch: int | None = None) -> None:
        """Show ``rows`` at ``batch`` (default: the smallest batch measured)."""
        self.rows = [dict(r) for r in rows]
        batches = sorted({int(r["batch"]) for r in self.rows})
        self.batch = batch if batch in batches else (batches[0] if batches else None)
        self.shown = [r for r in self.rows if int(r["batch"]) == self.batch]
        self._draw()

    def _draw(self) -> None:
        plot = self.getPlotItem()
        for item in [self.bars, *self.whiskers, self.intervals, *self.labels]:
            if item is not None:
                plot.removeItem(item)
        self.bars, self.whiskers, self.intervals, self.labels = None, [], None, []
        self._empty.setVisible(not self.shown)
        _show_axes(plot, bool(self.shown))
        if not self.shown:
            plot.setTitle("")
            plot.getAxis("bottom").setTicks(None)
            plot.setXRange(-1, 1, padding=0)
            plot.setYRange(-1, 1, padding=0)
            self._empty.setPos(0, 0)
            return
        _, fg = _colors(self)
        n = len(self.shown)
        x = np.arange(n, dtype=float)
        p50 = np.array([r["p50_ms"] for r in self.shown], dtype=float)
        p90 = np.array([r["p90_ms"] for r in self.shown], dtype=float)
        p99 = np.array([r["p99_ms"] for r in self.shown], dtype=float)
        brushes = [pg.mkBrush(pg.intColor(i, hues=max(n, 3), values=1, maxValue=200, alpha=200)) for i in range(n)]
        self.bars = pg.BarGraphItem(x=x, height=p50, width=0.6, brushes=brushes, pen=pg.mkPen(fg, width=0.5))
        plot.addItem(self.bars)
        zero = np.zeros(n)
        p99_whisker = pg.ErrorBarItem(x=x, y=p50, top=np.maximum(p99 - p50, 0), bottom=zero, beam=0.12,
                                      pen=pg.mkPen(fg, width=1, style=Qt.PenStyle.DashLine))
        p90_whisker = pg.ErrorBarItem(x=x, y=p50, top=np.maximum(p90 - p50, 0), bottom=zero, beam=0.3,
                                      pen=pg.mkPen(fg, width=2))
        self.whiskers = [p90_whisker, p99_whisker]
        for w in self.whiskers:
            plot.addItem(w)
        if all(r.get("p50_ci_low_ms") is not None for r in self.shown):
            lo = np.array([r["p50_ci_low_ms"] for r in self.shown], dtype=float)
            hi = np.array([r["p50_ci_high_ms"] for r in self.shown], dtype=float)
            self.intervals = pg.ErrorBarItem(x=x + 0.22, y=p50, top=np.maximum(hi - p50, 0),
                                             bottom=np.maximum(p50 - lo, 0), beam=0.08,
                                             pen=pg.mkPen(QColor(200, 40, 40), width=2))
            plot.addItem(self.intervals)
        top = float(max(p99.max(), p50.max()))
        for i, row in enumerate(self.shown):
            speedup = row.get("speedup_vs_baseline")
            text = f"×{speedup:.2f}" if speedup is not None else f"{row['p50_ms']:.2f} ms"
            if row.get("verdict") == "no measurable difference":
                text += " (=)"
            label = pg.TextItem(text, color=fg, anchor=(0.5, 1.0))
            label.setPos(i, float(max(p99[i], p50[i])) + top * 0.02)
            plot.addItem(label)
            self.labels.append(label)
        axis = plot.getAxis("bottom")
        names = _tick_names([r["name"] for r in self.shown])
        axis.setTicks([[(i, name) for i, name in enumerate(names)]])
        plot.setTitle(f"p50 latency at batch {self.batch} · whiskers p90 (solid) and p99 (dashed) · red: p50's "
                      "95 % interval · labels: speedup vs source, (=) no measurable difference",
                      color=fg.name(), size="9pt")
        plot.setXRange(-0.6, n - 0.4, padding=0)
        plot.setYRange(0, top * 1.15, padding=0)

    # -- hover
    def row_at(self, view_x: float, view_y: float) -> dict | None:
        """The runner whose bar or whisker is under a point in data coordinates."""
        i = int(round(view_x))
        if not self.shown or not 0 <= i < len(self.shown) or abs(view_x - i) > 0.35:
            return None
        row = self.shown[i]
        return row if 0 <= view_y <= max(row["p99_ms"], row["p50_ms"]) * 1.08 else None

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        vb = self.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            self.hover_text = ""
            return
        point = vb.mapSceneToView(scene_pos)
        row = self.row_at(point.x(), point.y())
        self.hover_text = describe(row) if row else ""
        show_hover(self, self.hover_text)

    def bar_center(self, index: int) -> QPointF:
        """Scene position of the middle of bar ``index`` (what a user would point at)."""
        row = self.shown[index]
        return self.getPlotItem().getViewBox().mapViewToScene(QPointF(index, row["p50_ms"] / 2))

    # -- export
    def export_png(self, path: str | Path, width: int = 1600) -> Path:
        return _png(self.getPlotItem(), path, width)

    def export_csv(self, path: str | Path) -> Path:
        return write_csv(self.rows, path)


class BatchChart(_FollowsPalette, pg.GraphicsLayoutWidget):
    """Latency (p50) and throughput of every runner across batch sizes, side by side; draws the
    session's benchmarks (when given one)."""

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        observe_benchmarks(self, session)
        self.setAccessibleName("Batch size chart")
        self.setMinimumHeight(200)
        self.rows: list[dict] = []
        self.series: dict[str, list[dict]] = {}
        self.hover_text = ""
        self.latency = self.addPlot(row=0, col=0)
        self.throughput = self.addPlot(row=0, col=1)
        for plot, label in ((self.latency, "p50 latency (ms)"), (self.throughput, "throughput (items/s)")):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setLabel("left", label)
            plot.setLabel("bottom", "batch size")
            plot.setLogMode(x=True, y=False)
        self.latency.setTitle("p50 latency vs batch size", size="9pt")
        self.throughput.setTitle("throughput vs batch size", size="9pt")
        self.throughput.getAxis("left").setWidth(64)  # room for "35000" beside the axis label
        self.legend = self.throughput.addLegend(offset=(5, 5), labelTextSize="8pt")
        self.curves: list[pg.PlotDataItem] = []
        self._empty = pg.TextItem("Benchmark at several batch sizes (e.g. 1, 4, 16) to see how latency and "
                                  "throughput grow", anchor=(0.5, 0.5))
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._built = True
        self.apply_palette()

    def apply_palette(self) -> None:
        bg, fg = _colors(self)
        self.setBackground(bg)
        for plot in (self.latency, self.throughput):
            _style_plot(plot, fg)
        self.legend.setLabelTextColor(fg)
        self.legend.setBrush(pg.mkBrush(bg))
        self._empty.setColor(fg)
        self._show_empty(not self.rows)

    def _show_empty(self, empty: bool) -> None:
        """No rows: the message over the left plot, no axes, titles or grids."""
        for plot in (self.latency, self.throughput):
            _show_axes(plot, not empty)
            plot.showGrid(x=not empty, y=not empty, alpha=0.25)
        self.latency.setTitle("" if empty else "p50 latency vs batch size", size="9pt")
        self.throughput.setTitle("" if empty else "throughput vs batch size", size="9pt")
        if empty:
            if self._empty.scene() is None:
                self.latency.addItem(self._empty)
            self.latency.setLogMode(x=False, y=False)
            self.latency.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
            self._empty.setPos(0, 0)
        else:
            self.latency.setLogMode(x=True, y=False)
        self._empty.setVisible(empty)

    def set_rows(self, rows: list[dict]) -> None:
        self.rows = [dict(r) for r in rows]
        self.series = {}
        for r in self.rows:
            self.series.setdefault(r["name"], []).append(r)
        for s in self.series.values():
            s.sort(key=lambda r: int(r["batch"]))
        for plot in (self.latency, self.throughput):
            plot.clear()  # also takes the empty message off; _show_empty puts it back
        self.legend.clear()
        self.curves = []
        self._show_empty(not self.rows)
        n = max(len(self.series), 3)
        legend_names = _tick_names(list(self.series))
        for i, (name, series) in enumerate(self.series.items()):
            color = pg.intColor(i, hues=n, values=1, maxValue=200)
            batch = np.array([int(r["batch"]) for r in series], dtype=float)
            kw = dict(pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6, symbolBrush=color, symbolPen=None)
            self.curves.append(self.latency.plot(batch, [r["p50_ms"] for r in series], **kw))
            self.curves.append(self.throughput.plot(batch, [r.get("throughput") or 0.0 for r in series],
                                                    name=rich(legend_names[i]), **kw))  # legends are HTML
        batches = sorted({int(r["batch"]) for r in self.rows})
        ticks = [[(float(np.log10(b)), str(b)) for b in batches]]
        for plot in (self.latency, self.throughput):
            plot.getAxis("bottom").setTicks(ticks)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        self.hover_text = ""
        for plot, key in ((self.latency, "p50_ms"), (self.throughput, "throughput")):
            vb = plot.getViewBox()
            if not vb.sceneBoundingRect().contains(scene_pos):
                continue
            best, best_d = None, 12.0  # pixels
            for series in self.series.values():
                for r in series:
                    pt = vb.mapViewToScene(QPointF(np.log10(int(r["batch"])), float(r.get(key) or 0.0)))
                    d = (pt - scene_pos).manhattanLength()
                    if d < best_d:
                        best, best_d = r, d
            if best is not None:
                self.hover_text = describe(best)
        show_hover(self, self.hover_text)

    def export_png(self, path: str | Path, width: int = 1600) -> Path:
        return _png(self.scene(), path, width)

    def export_csv(self, path: str | Path) -> Path:
        return write_csv(self.rows, path)


def _tick_names(names: list[str]) -> list[str]:
    """Artifact names without the stem they share (resnet18.fp16.onnx → fp16.onnx), so labels fit."""
    def file_part(n: str) -> str:  # "resnet18.fp32.onnx [OpenVINO]" → "resnet18.fp32.onnx"
        return n.split(" [", 1)[0]

    stems = {file_part(n).split(".")[0] for n in names if "." in file_part(n) and " " not in file_part(n)}
    if len(stems) == 1:
        stem = stems.pop() + "."
        names = [n[len(stem):] if n.startswith(stem) and " " not in file_part(n) else n for n in names]
    return [_short(n, 30) for n in names]


def _short(name: str, limit: int = 22) -> str:
    name = str(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"
