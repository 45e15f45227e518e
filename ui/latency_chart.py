"""Benchmark charts: latency per runner (p50 bars, p90/p99 whiskers, speedups) and the batch sweep.

Both are built from the benchmark engine's JSON rows ``{"name", "runtime", "provider", "precision",
"batch", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "throughput", "speedup_vs_baseline",
"cosine", "rel_l2"}``; both export to PNG and CSV, and hovering shows the exact numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QToolTip, QWidget

from app.session import Session
from ui.chart_theme import (INTERVAL, WARNING, ThemedChart, colors, elide, legend_below, legend_in_layout,
                            series_color, set_title, show_axes, text_item, text_width)
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


class LatencyChart(ThemedChart, pg.PlotWidget):
    """p50 latency per runner at one batch size, one horizontal bar each (names fit on the left): p90/p99
    whiskers, the p50's 95 % interval, a label with the p50 and the speed-up with its interval, a flag on
    a bar too noisy to rank; a log axis when the slowest is LOG_SPREAD× the fastest. Hover shows every
    number; draws the session's benchmarks (when given one)."""

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        observe_benchmarks(self, session)
        self.setAccessibleName("Latency chart")
        self.setMinimumHeight(220)
        self.rows: list[dict] = []          # every row, all batches
        self.shown: list[dict] = []         # the bars, top to bottom
        self.batch: int | None = None
        self.log = False                    # the latency axis is logarithmic
        self.floor = 0.0                    # where the bars start, in axis units
        self.hover_text = ""
        self.bars: pg.BarGraphItem | None = None
        self.whiskers: list[pg.ErrorBarItem] = []
        self.intervals: pg.ErrorBarItem | None = None  # the p50's 95 % bootstrap interval
        self.labels: list[pg.TextItem] = []            # p50 and speed-up [interval], right of each bar
        self.flags: list[pg.TextItem] = []             # "too noisy to rank", under a label
        self.names: list[str] = []                     # the full names behind the left axis' (elided) ones
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getViewBox().invertY(True)   # the source on top
        self.legend = legend_below(plot, columns=2)
        _, fg = colors(self)
        for pen, text in ((pg.mkPen(fg, width=2), "p90 whisker"),
                          (pg.mkPen(fg, width=1, style=Qt.PenStyle.DashLine), "p99 whisker"),
                          (pg.mkPen(INTERVAL, width=2), "p50's 95 % interval")):
            self.legend.addItem(pg.PlotDataItem(pen=pen), text)
        self.legend.set_note("×speed-up vs source [its 95 % interval] · (=) no measurable difference")
        self._empty = pg.TextItem("Run a benchmark (Ctrl+B) to compare the source and every artifact",
                                  anchor=(0.5, 0.5))
        plot.addItem(self._empty)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        plot.getViewBox().sigResized.connect(self._fit)
        self._built = True
        self.apply_palette()
        self._draw()

    def theme_legends(self) -> list[pg.LegendItem]:
        return [self.legend]

    def theme_texts(self) -> list[pg.TextItem]:
        return [self._empty, *self.labels]

    def set_rows(self, rows: list[dict], batch: int | None = None) -> None:
        """Show ``rows`` at ``batch`` (default: the smallest batch measured)."""
        self.rows = [dict(r) for r in rows]
        batches = sorted({int(r["batch"]) for r in self.rows})
        self.batch = batch if batch in batches else (batches[0] if batches else None)
        self.shown = [r for r in self.rows if int(r["batch"]) == self.batch]
        self._draw()

    def axis_value(self, ms: float) -> float:
        """Where ``ms`` lies on the latency axis (its log10 on a log axis)."""
        return float(np.log10(max(ms, 1e-6))) if self.log else float(ms)

    def _draw(self) -> None:
        plot = self.getPlotItem()
        for item in [self.bars, *self.whiskers, self.intervals, *self.labels, *self.flags]:
            if item is not None:
                plot.removeItem(item)
        self.bars, self.whiskers, self.intervals, self.labels, self.flags = None, [], None, [], []
        self._empty.setVisible(not self.shown)
        show_axes(plot, bool(self.shown), grid_x=True)
        self.legend.setVisible(bool(self.shown))
        if not self.shown:
            plot.setTitle("")
            plot.getAxis("left").setTicks(None)
            plot.getAxis("bottom").setTicks(None)
            plot.setXRange(-1, 1, padding=0)
            plot.setYRange(-1, 1, padding=0)
            self._empty.setPos(0, 0)
            return
        _, fg = colors(self)
        n = len(self.shown)
        y = np.arange(n, dtype=float)
        p50, p90, p99 = (np.array([r[k] for r in self.shown], dtype=float) for k in ("p50_ms", "p90_ms", "p99_ms"))
        lows = [v for r in self.shown for v in (r["p50_ms"], r.get("p50_ci_low_ms")) if v is not None and v > 0]
        self.log = bool(lows) and float(max(p99.max(), p50.max())) >= LOG_SPREAD * min(lows)
        f = np.vectorize(self.axis_value, otypes=[float])
        self.floor = f(_nice_below(min(lows) / 2.5)) if self.log else 0.0
        noisy = [bool(r.get("noisy")) for r in self.shown]
        brushes = [pg.mkBrush(series_color(i, n, alpha=200)) for i in range(n)]
        pens = [pg.mkPen(WARNING, width=2, style=Qt.PenStyle.DashLine) if noisy[i] else pg.mkPen(fg, width=0.5)
                for i in range(n)]
        self.bars = pg.BarGraphItem(x0=np.full(n, self.floor), x1=f(p50), y=y, height=np.full(n, 0.5),
                                    brushes=brushes, pens=pens)
        plot.addItem(self.bars)
        zero = np.zeros(n)
        p90_whisker = pg.ErrorBarItem(x=f(p50), y=y, right=np.maximum(f(p90) - f(p50), 0), left=zero, beam=0.3,
                                      pen=pg.mkPen(fg, width=2))
        p99_whisker = pg.ErrorBarItem(x=f(p50), y=y, right=np.maximum(f(p99) - f(p50), 0), left=zero, beam=0.14,
                                      pen=pg.mkPen(fg, width=1, style=Qt.PenStyle.DashLine))
        self.whiskers = [p90_whisker, p99_whisker]
        for w in self.whiskers:
            plot.addItem(w)
        ends = np.maximum(p50, np.maximum(p90, p99))
        if all(r.get("p50_ci_low_ms") is not None for r in self.shown):
            lo = np.array([r["p50_ci_low_ms"] for r in self.shown], dtype=float)
            hi = np.array([r["p50_ci_high_ms"] for r in self.shown], dtype=float)
            self.intervals = pg.ErrorBarItem(x=f(p50), y=y + 0.36, right=np.maximum(f(hi) - f(p50), 0),
                                             left=np.maximum(f(p50) - f(np.maximum(lo, 1e-6)), 0), beam=0.12,
                                             pen=pg.mkPen(INTERVAL, width=2))
            plot.addItem(self.intervals)
            ends = np.maximum(ends, hi)
        self._ends = f(ends)
        for i, row in enumerate(self.shown):
            label = text_item(bar_label(row), fg, anchor=(0.0, 0.5))
            plot.addItem(label)
            self.labels.append(label)
            flag = noisy_flag(row)
            if flag:
                item = text_item(flag, WARNING, anchor=(0.0, 0.5), bold=True)
                item.row = i
                plot.addItem(item)
                self.flags.append(item)
        self.names = [r["name"] for r in self.shown]
        width = min(max(text_width(name) for name in _tick_names(self.names)), NAME_PX)
        plot.getAxis("left").setTicks([[(i, elide(name, width)) for i, name in enumerate(_tick_names(self.names))]])
        plot.getAxis("left").setWidth(int(width) + 12)
        self.fit_legends()
        bottom = plot.getAxis("bottom")
        if self.log:
            bottom.setTicks(_log_ticks(self.floor, float(self._ends.max()) + 1.0))
            plot.setLabel("bottom", "p50 latency (ms, log scale)")
        else:
            bottom.setTicks(None)
            plot.setLabel("bottom", "p50 latency (ms)")
        set_title(plot, f"Latency at batch {self.batch}" + (" (log scale)" if self.log else ""), fg)
        self.apply_palette()
        plot.setYRange(-0.6, n - 0.4, padding=0)
        self._fit()

    def _fit(self, *_args) -> None:
        """The latency range wide enough for every label right of its bar; labels and flags placed there."""
        if not self.shown or self.bars is None or not self._built:
            return
        vb = self.getPlotItem().getViewBox()
        px = max(vb.width(), 50.0)
        a = self.floor
        widths = [label.boundingRect().width() for label in self.labels]
        for flag in self.flags:
            widths[flag.row] = max(widths[flag.row], flag.boundingRect().width())
        b = float(self._ends.max()) if len(self._ends) else a + 1.0
        b = a + max(b - a, 1e-9) * 1.02
        for end, w in zip(self._ends, widths):
            room = max(px - w - 10.0, 0.25 * px)
            b = max(b, a + (float(end) - a) * px / room)
        self.getPlotItem().setXRange(a, b, padding=0)
        if self.log:   # ticks where the data is, not under the labels; 2 and 5 written where they fit
            self.getPlotItem().getAxis("bottom").setTicks(_log_ticks(a, float(self._ends.max()),
                                                                     px / (b - a) >= 130.0))
        gap = 4.0 * (b - a) / px
        for i, label in enumerate(self.labels):
            label.setPos(float(self._ends[i]) + gap, i - (0.12 if any(f.row == i for f in self.flags) else 0.0))
        for flag in self.flags:
            flag.setPos(float(self._ends[flag.row]) + gap, flag.row + 0.26)

    # -- hover
    def row_at(self, view_x: float, view_y: float) -> dict | None:
        """The runner whose bar or whisker is under a point in axis coordinates."""
        i = int(round(view_y))
        if not self.shown or not 0 <= i < len(self.shown) or abs(view_y - i) > 0.4:
            return None
        return self.shown[i] if self.floor <= view_x <= float(self._ends[i]) * 1.02 + 1e-9 else None

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        plot = self.getPlotItem()
        vb = plot.getViewBox()
        row = None
        if vb.sceneBoundingRect().contains(scene_pos):
            point = vb.mapSceneToView(scene_pos)
            row = self.row_at(point.x(), point.y())
        elif self.shown and plot.getAxis("left").sceneBoundingRect().contains(scene_pos):
            i = int(round(vb.mapSceneToView(scene_pos).y()))   # a (maybe shortened) name: its numbers
            row = self.shown[i] if 0 <= i < len(self.shown) else None
        else:
            self.hover_text = ""
            return
        self.hover_text = describe(row) if row else ""
        show_hover(self, self.hover_text)

    def bar_center(self, index: int) -> QPointF:
        """Scene position of the middle of bar ``index`` (what a user would point at)."""
        row = self.shown[index]
        x = (self.floor + self.axis_value(row["p50_ms"])) / 2
        return self.getPlotItem().getViewBox().mapViewToScene(QPointF(x, index))

    # -- export
    def export_png(self, path: str | Path, width: int = 1600) -> Path:
        return _png(self.getPlotItem(), path, width)

    def export_csv(self, path: str | Path) -> Path:
        return write_csv(self.rows, path)


LOG_SPREAD = 10.0   # the slowest p99 this many times the fastest p50: a log axis, else the fast bars are flat
NAME_PX = 170.0     # the widest name beside a bar; longer ones are shortened (hover shows them whole)


def bar_label(row: dict) -> str:
    """The label right of a bar: its p50, and the speed-up over the source with its 95 % interval."""
    text = f"{_ms(row['p50_ms'])}"
    speedup = row.get("speedup_vs_baseline")
    if row.get("baseline"):
        return text + " · source"
    if speedup is not None:
        text += f" · ×{speedup:.2f}"
        if row.get("speedup_ci_low") is not None:
            text += f" [{row['speedup_ci_low']:.2f}–{row['speedup_ci_high']:.2f}]"
    if row.get("verdict") == "no measurable difference":
        text += " (=)"
    return text


def noisy_flag(row: dict) -> str:
    """The warning on a bar whose p50 is too uncertain to rank (the benchmark's ``noisy``), else ""."""
    if not row.get("noisy"):
        return ""
    lo, hi, p50 = row.get("p50_ci_low_ms"), row.get("p50_ci_high_ms"), row["p50_ms"]
    spread = f" (±{(hi - lo) / 2 / p50 * 100:.0f} %)" if lo is not None and hi is not None and p50 > 0 else ""
    if row.get("baseline"):
        return f"⚠ too noisy{spread}: speed-ups uncertain"
    return f"⚠ too noisy to rank{spread}"


def _ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 100 else f"{value:,.0f} ms"


def _nice_below(value: float) -> float:
    """The largest 1, 2 or 5 × 10^k not above ``value``."""
    k = np.floor(np.log10(value))
    for m in (5.0, 2.0, 1.0):
        if m * 10**k <= value:
            return float(m * 10**k)
    return float(10**k)


def _log_ticks(lo: float, hi: float, minor_labels: bool = True) -> list[list[tuple[float, str]]]:
    """Ticks of a log axis from 10^lo to 10^hi: decades labelled, 2 and 5 between them labelled too
    unless ``minor_labels`` is False (a decade too narrow for three numbers)."""
    major, minor = [], []
    for k in range(int(np.floor(lo)) - 1, int(np.ceil(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**k
            pos = float(np.log10(v))
            if lo - 1e-9 <= pos <= hi + 1e-9:
                (major if m == 1 else minor).append((pos, f"{v:g}"))
    if not minor_labels:   # 2 and 5 marked but not written, so the numbers never run together
        minor = [(pos, "") for pos, _ in minor]
    return [major, minor]


class BatchChart(ThemedChart, pg.GraphicsLayoutWidget):
    """Latency (p50) and throughput of every runner across batch sizes, side by side, one legend below
    both; latency on a log axis when the slowest is LOG_SPREAD× the fastest. Draws the session's
    benchmarks (when given one)."""

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        observe_benchmarks(self, session)
        self.setAccessibleName("Batch size chart")
        self.setMinimumHeight(200)
        self.rows: list[dict] = []
        self.series: dict[str, list[dict]] = {}
        self.hover_text = ""
        self.log = False
        self.latency = self.addPlot(row=0, col=0)
        self.throughput = self.addPlot(row=0, col=1)
        for plot, label in ((self.latency, "ms"), (self.throughput, "items/s")):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setLabel("left", label)
            plot.setLabel("bottom", "batch size")
            plot.setLogMode(x=True, y=False)
        self.legend = legend_in_layout(self.ci, row=1, col=0, colspan=2, columns=3)
        self.curves: list[pg.PlotDataItem] = []
        self._empty = pg.TextItem("Benchmark at several batch sizes (e.g. 1, 4, 16) to see how latency and "
                                  "throughput grow", anchor=(0.5, 0.5))
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._built = True
        self.apply_palette()

    def theme_plots(self) -> list[pg.PlotItem]:
        return [self.latency, self.throughput]

    def theme_legends(self) -> list[pg.LegendItem]:
        return [self.legend]

    def theme_texts(self) -> list[pg.TextItem]:
        return [self._empty]

    def apply_palette(self) -> None:
        self.paint_theme()
        self._show_empty(not self.rows)

    def _show_empty(self, empty: bool) -> None:
        """No rows: the message over the left plot, no axes, titles or grids."""
        _, fg = colors(self)
        for plot in (self.latency, self.throughput):
            show_axes(plot, not empty, grid_x=True)
        set_title(self.latency, "" if empty else "p50 latency" + (" (log scale)" if self.log else ""), fg)
        set_title(self.throughput, "" if empty else "throughput", fg)
        self.legend.setVisible(not empty)
        if empty:
            if self._empty.scene() is None:
                self.latency.addItem(self._empty)
            self.latency.setLogMode(x=False, y=False)
            self.latency.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
            self._empty.setPos(0, 0)
        else:
            self.latency.setLogMode(x=True, y=self.log)
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
        p50 = [float(r["p50_ms"]) for r in self.rows if r["p50_ms"] > 0]
        self.log = bool(p50) and max(p50) >= LOG_SPREAD * min(p50)
        self._show_empty(not self.rows)
        n = len(self.series)
        legend_names = _tick_names(list(self.series))
        for i, (name, series) in enumerate(self.series.items()):
            color = series_color(i, n)
            batch = np.array([int(r["batch"]) for r in series], dtype=float)
            kw = dict(pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6, symbolBrush=color, symbolPen=None)
            self.curves.append(self.latency.plot(batch, [r["p50_ms"] for r in series], **kw))
            self.curves.append(self.throughput.plot(batch, [r.get("throughput") or 0.0 for r in series], **kw))
            self.legend.addItem(self.curves[-1], rich(elide(legend_names[i], LEGEND_PX)))  # legends are HTML
        batches = sorted({int(r["batch"]) for r in self.rows})
        ticks = [[(float(np.log10(b)), str(b)) for b in batches]]
        for plot in (self.latency, self.throughput):
            plot.getAxis("bottom").setTicks(ticks)
        if self.log:
            lo, hi = np.log10(min(p50)) - 0.1, np.log10(max(p50)) + 0.1
            self.latency.getAxis("left").setTicks(_log_ticks(lo, hi, hi - lo < 2.0))
        else:
            self.latency.getAxis("left").setTicks(None)
        self.fit_legends()

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        self.hover_text = ""
        for plot, key in ((self.latency, "p50_ms"), (self.throughput, "throughput")):
            vb = plot.getViewBox()
            if not vb.sceneBoundingRect().contains(scene_pos):
                continue
            best, best_d = None, 12.0  # pixels
            for series in self.series.values():
                for r in series:
                    value = float(r.get(key) or 0.0)
                    if plot is self.latency and self.log:
                        value = float(np.log10(max(value, 1e-6)))
                    pt = vb.mapViewToScene(QPointF(np.log10(int(r["batch"])), value))
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


LEGEND_PX = 200.0   # the widest name in a legend; longer ones are shortened


def _short(name: str, limit: int = 22) -> str:
    name = str(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"
