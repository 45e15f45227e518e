"""Accuracy against latency: each artifact a point, the Pareto front drawn, hover names the artifact.

Latency is the benchmark's p50 at its first batch size; accuracy is the artifact's evaluation on the
user's data (top-1 when the data has labels, else mean cosine to the source), or, without data, the
benchmark's cosine on random inputs — the axis label says which.

An ``--accuracy-budget`` conversion adds its rounds (quantizer settings, then nodes kept in float) as
orange points, the kept one larger, rounds below the speed floor hollow; the loop's own Pareto set of its
rounds is joined by an orange line, and the floor (``--min-speedup`` over the same runtime's fp32) is a
dashed vertical line: a kept round lies left of it. Their latency is the loop's median on one sample,
timed beside its fp32 (not the benchmark's), so they stay off the benchmark's Pareto front.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QWidget

from app.session import Session
from ui.chart_theme import (FRONT, OTHER, ThemedChart, colors, elide, legend_below, set_title, show_axes,
                            text_item)
from ui.latency_chart import LOG_SPREAD, _log_ticks, _nice_below, _png, _tick_names, show_hover

ROUND = "#e65100"       # accuracy-budget rounds: the kept one, the floor
ROUND_LIGHT = "#ffb74d"
# where a point's label may go, in order of preference: (anchor, dx, dy) in pixels from the point
PLACES = [((0.0, 0.5), 8, 0), ((1.0, 0.5), -8, 0), ((0.0, 1.0), 5, -4), ((0.0, 0.0), 5, 4),
          ((1.0, 1.0), -5, -4), ((1.0, 0.0), -5, 4), ((0.5, 1.0), 0, -7), ((0.5, 0.0), 0, 7)]
SAME_PX = 4.0           # points closer than this (in pixels) share one place: their names stacked
LABEL_PX = 160.0        # the widest point label; longer names are shortened (hover shows them whole)
# the left axis says what accuracy is, briefly; the title says it in full
SHORT = {"top-1 on the data": "top-1", "mean cosine on the data": "mean cosine",
         "cosine to the source (random inputs)": "cosine to the source"}


def pareto_front(points: list[dict]) -> list[dict]:
    """Points no other point beats on both axes (lower latency and higher accuracy), by latency."""
    from app.bench.stats import pareto_front as front

    return front(points, cost=lambda p: p["latency_ms"], gain=lambda p: p["accuracy"])


def accuracy_points(rows: list[dict], evaluations: dict[str, object]) -> tuple[list[dict], str]:
    """Chart points from benchmark rows (first batch) and ``{artifact path: Evaluation}``; the axis label."""
    if not rows:
        return [], ""
    batch = min(int(r["batch"]) for r in rows)
    shown = [r for r in rows if int(r["batch"]) == batch]
    labelled = any(getattr(e, "artifact_top1", None) is not None for e in evaluations.values())
    label = "top-1 on the data" if labelled else ("mean cosine on the data" if evaluations else
                                                  "cosine to the source (random inputs)")
    points = []
    for r in shown:
        e = evaluations.get(str(r.get("artifact"))) if r.get("artifact") else None
        if r.get("baseline"):
            e0 = next(iter(evaluations.values()), None)
            value = (getattr(e0, "source_top1", None) if labelled else 1.0) if evaluations else 1.0
        elif e is not None:
            value = e.artifact_top1 if labelled else e.cosine_mean
        elif not evaluations:
            value = r.get("cosine")
        else:
            value = None
        if value is not None:
            points.append({"name": r["name"], "latency_ms": float(r["p50_ms"]), "accuracy": float(value),
                           "precision": r.get("precision", "")})
    return points, f"{label} · p50 latency at batch {batch}"


def budget_points(name: str, report: dict, labelled: bool) -> list[dict]:
    """Chart points of an accuracy-budget report's measured rounds (a round that repeats an earlier
    round's model, or was not built, has no figures of its own and no point)."""
    from app.accuracy.budget import round_label

    points = []
    floor = report.get("speed_floor")
    for r in report.get("rounds") or []:
        value = r.get("artifact_top1") if labelled else r.get("cosine_mean")
        if "identical_to" in r or "failed" in r or "skipped" in r or value is None or r.get("latency_ms") is None:
            continue
        speedup = r.get("speedup")
        points.append({"name": f"{name} round {r['round']}: {round_label(r)}", "latency_ms": float(r["latency_ms"]),
                       "accuracy": float(value), "kept": bool(r.get("kept")), "met": bool(r.get("met")),
                       "pareto": bool(r.get("pareto")), "speedup": speedup,
                       "below_floor": speedup is not None and floor is not None and speedup < floor - 1e-12,
                       "why": r.get("kept_because") or r.get("why_not") or ""})
    return points


def floor_latency_ms(report: dict) -> float | None:
    """The latency a round must beat to reach the floor: the same runtime's fp32 over the floor (None
    where the fp32 was not timed)."""
    fp32, floor = report.get("fp32_latency_ms"), report.get("speed_floor")
    return float(fp32) / float(floor) if fp32 and floor else None


class AccuracyChart(ThemedChart, pg.PlotWidget):
    """Scatter of artifacts by latency (x, from 0) and accuracy (y), each point labelled with its name, the
    Pareto front as a line, the legend below; drawn from the session's benchmarks and its conversions'
    evaluations (when given a session)."""

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        if session is not None:
            session.events.benchmark_finished.connect(self._on_benchmark_finished)
        self.setAccessibleName("Accuracy vs latency chart")
        self.setMinimumHeight(220)
        self.points: list[dict] = []
        self.front: list[dict] = []
        self.labels: list[pg.TextItem] = []   # one per point, beside it
        self.hover_text = ""
        self.title = ""
        self.log = False   # latency on a log axis: the slowest is LOG_SPREAD× the fastest
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.setLabel("bottom", "p50 latency (ms)")
        plot.hideButtons()
        plot.getViewBox().setLimits(xMin=0)   # no negative latency, even when zoomed out
        self.scatter = pg.ScatterPlotItem(size=11)
        self.line = pg.PlotCurveItem()
        self.rounds: list[dict] = []
        self.rounds_scatter = pg.ScatterPlotItem(size=8)
        self.rounds_line = pg.PlotCurveItem()
        self.rounds_front = pg.PlotCurveItem()       # the loop's Pareto set of its rounds
        self.floor_line = pg.InfiniteLine(angle=90, movable=False,
                                          pen=pg.mkPen(ROUND, width=1, style=Qt.PenStyle.DashLine))
        self.floor_line.setVisible(False)
        self.floor_ms: float | None = None
        plot.addItem(self.rounds_line)
        plot.addItem(self.rounds_front)
        plot.addItem(self.floor_line)
        plot.addItem(self.rounds_scatter)
        plot.addItem(self.line)
        plot.addItem(self.scatter)
        self.legend = legend_below(plot, columns=2)
        self._empty = pg.TextItem("Convert with data and benchmark to compare accuracy and speed", anchor=(0.5, 0.5))
        plot.addItem(self._empty)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        plot.getViewBox().sigResized.connect(self._place_labels)
        plot.getViewBox().sigTransformChanged.connect(self._place_labels)
        self._built = True
        self.apply_palette()
        self._redraw()

    def theme_legends(self) -> list[pg.LegendItem]:
        return [self.legend]

    def theme_texts(self) -> list[pg.TextItem]:
        return [self._empty, *self.labels]

    def axis_value(self, ms: float) -> float:
        """Where ``ms`` lies on the latency axis (its log10 on a log axis)."""
        return float(np.log10(max(ms, 1e-6))) if self.log else float(ms)

    def _choose_scale(self) -> None:
        xs = [p["latency_ms"] for p in [*self.points, *self.rounds] if p["latency_ms"] > 0]
        self.log = bool(xs) and max(xs) >= LOG_SPREAD * min(xs)

    def set_points(self, points: list[dict], label: str = "") -> None:
        self.points = list(points)
        self.front = pareto_front(self.points)
        self._choose_scale()
        self._draw_points()
        self._draw_rounds()
        plot = self.getPlotItem()
        for item in self.labels:
            plot.removeItem(item)
        _, fg = colors(self)
        names = _tick_names([p["name"] for p in self.points])
        self.labels = [text_item(elide(name, LABEL_PX), fg, anchor=(0.0, 0.5)) for name in names]
        for item in self.labels:
            plot.addItem(item)
        if label:
            accuracy, _, latency = label.partition(" · ")
            plot.setLabel("left", SHORT.get(accuracy, accuracy))
            self.title = f"{accuracy} vs {latency}" if latency else accuracy
        elif not self.points:
            self.title = ""
        self._redraw()

    def set_rounds(self, rounds: list[dict], label: str = "", floor_ms: float | None = None) -> None:
        """The accuracy-budget rounds (:func:`budget_points`), joined in the order they were tried (dotted),
        their Pareto set joined (solid), and the speed floor at ``floor_ms`` (:func:`floor_latency_ms`)."""
        self.rounds = list(rounds)
        self.floor_ms = floor_ms
        self._choose_scale()
        self._draw_points()
        self._draw_rounds()
        if label and not self.points:
            self.getPlotItem().setLabel("left", SHORT.get(label, label))
            self.title = f"{label}: accuracy-budget rounds"
        self._redraw()

    def _draw_points(self) -> None:
        f = self.axis_value
        on_front = {id(p) for p in self.front}
        self.scatter.setData([{"pos": (f(p["latency_ms"]), p["accuracy"]), "data": i,
                               "brush": pg.mkBrush(FRONT if id(p) in on_front else OTHER)}
                              for i, p in enumerate(self.points)])
        self.line.setData([f(p["latency_ms"]) for p in self.front], [p["accuracy"] for p in self.front],
                          pen=pg.mkPen(FRONT, width=2))

    def _draw_rounds(self) -> None:
        f, floor_ms = self.axis_value, self.floor_ms
        self.rounds_scatter.setData([{"pos": (f(p["latency_ms"]), p["accuracy"]), "data": i, "size": 13 if p["kept"] else 8,
                                      "brush": pg.mkBrush(None if p.get("below_floor") else
                                                          ROUND if p["kept"] else ROUND_LIGHT),
                                      "pen": pg.mkPen(ROUND if p["kept"] else ROUND_LIGHT, width=1.5)}
                                     for i, p in enumerate(self.rounds)])
        self.rounds_line.setData([f(p["latency_ms"]) for p in self.rounds], [p["accuracy"] for p in self.rounds],
                                 pen=pg.mkPen(ROUND_LIGHT, width=1, style=Qt.PenStyle.DotLine))
        front = sorted((p for p in self.rounds if p.get("pareto")), key=lambda p: p["latency_ms"])
        self.rounds_front.setData([f(p["latency_ms"]) for p in front], [p["accuracy"] for p in front],
                                  pen=pg.mkPen(ROUND, width=2))
        self.floor_line.setVisible(floor_ms is not None)
        if floor_ms is not None:
            self.floor_line.setValue(f(floor_ms))

    def _redraw(self) -> None:
        """Legend, title, axes and ranges for what is drawn now."""
        plot = self.getPlotItem()
        _, fg = colors(self)
        drawn = bool(self.points or self.rounds)
        self._empty.setVisible(not drawn)
        show_axes(plot, drawn, grid_x=True)
        self.legend.clear()
        self.legend.setVisible(drawn)
        if self.points:
            self.legend.addItem(pg.ScatterPlotItem(size=9, brush=pg.mkBrush(FRONT), pen=None),
                                "on the Pareto front (joined)")
            if len(self.front) < len(self.points):
                self.legend.addItem(pg.ScatterPlotItem(size=9, brush=pg.mkBrush(OTHER), pen=None),
                                    "another is faster and as accurate")
        if self.rounds:
            self.legend.addItem(pg.ScatterPlotItem(size=9, brush=pg.mkBrush(ROUND_LIGHT), pen=pg.mkPen(ROUND_LIGHT)),
                                "accuracy-budget round (kept: large; hollow: too slow)")
        if self.floor_ms is not None and self.rounds:
            self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(ROUND, width=1, style=Qt.PenStyle.DashLine)),
                                "speed floor")
        self.legend.recolor(fg)
        self.fit_legends()
        set_title(plot, self.title if drawn else "", fg)
        if not drawn:
            plot.setXRange(-1, 1, padding=0)
            plot.setYRange(-1, 1, padding=0)
            self._empty.setPos(0, 0)
            plot.getViewBox().setLimits(xMin=None)
            return
        xs = [p["latency_ms"] for p in [*self.points, *self.rounds]] + ([self.floor_ms] if self.floor_ms else [])
        ys = [p["accuracy"] for p in [*self.points, *self.rounds]]
        if self.log:
            lo_x, hi_x = self.axis_value(_nice_below(min(xs) / 1.3)), self.axis_value(max(xs)) + 0.08
            plot.getViewBox().setLimits(xMin=lo_x)
            plot.setXRange(lo_x, hi_x, padding=0)
            plot.getAxis("bottom").setTicks(_log_ticks(lo_x, hi_x, hi_x - lo_x < 2.0))
            plot.setLabel("bottom", "p50 latency (ms, log scale)")
        else:
            plot.getViewBox().setLimits(xMin=0)
            plot.setXRange(0, max(xs) * 1.12 or 1.0, padding=0)
            plot.getAxis("bottom").setTicks(None)
            plot.setLabel("bottom", "p50 latency (ms)")
        lo, hi = min(ys), max(ys)
        pad = (hi - lo) * 0.15 or max(abs(hi) * 0.01, 1e-3)
        plot.setYRange(lo - pad, hi + pad, padding=0)
        self._place_labels()

    def _place_labels(self, *_args) -> None:
        """Each point's name beside it: right of it, else left, above or below, wherever it stays inside
        the plot and clear of the labels placed before it. Points drawn at the same place (within
        ``SAME_PX``) share one place: their names stacked, one under another."""
        if not self._built:
            return
        vb = self.getPlotItem().getViewBox()
        area = vb.sceneBoundingRect()
        if not self.labels or area.width() < 10:
            return
        taken: list[QRectF] = []
        dots = [vb.mapViewToScene(QPointF(self.axis_value(p["latency_ms"]), p["accuracy"])) for p in self.points]
        order = sorted(range(len(self.points)), key=lambda i: (dots[i].x(), dots[i].y()))
        groups: list[list[int]] = []
        for i in order:
            group = next((g for g in groups if any(abs(dots[i].x() - dots[j].x()) <= SAME_PX
                                                   and abs(dots[i].y() - dots[j].y()) <= SAME_PX for j in g)), None)
            if group is None:
                groups.append([i])
            else:
                group.append(i)
        for group in groups:
            group.sort()   # stacked in the points' order (the source first)
            dot = dots[group[0]]
            sizes = [self.labels[i].boundingRect() for i in group]
            w, h = max(r.width() for r in sizes), sum(r.height() for r in sizes)
            candidates = [(anchor, QRectF(dot.x() + dx - anchor[0] * w, dot.y() + dy - anchor[1] * h, w, h))
                          for anchor, dx, dy in PLACES]
            others = [QRectF(d.x() - 6, d.y() - 6, 12, 12) for j, d in enumerate(dots) if j not in group]

            def cost(c, others=others):
                rect = c[1]
                return ((not area.contains(rect)) * 4 + 2 * sum(rect.intersects(t) for t in taken)
                        + sum(rect.intersects(o) for o in others))
            anchor, rect = min(candidates, key=cost)
            taken.append(rect)
            top = rect.top()
            for i, size in zip(group, sizes):   # each name's top edge, aligned as the block is
                item = self.labels[i]
                x = rect.left() + anchor[0] * (rect.width() - size.width())
                item.setAnchor((0.0, 0.0))
                item.setPos(vb.mapSceneToView(QPointF(x, top)))
                top += size.height()

    def _on_benchmark_finished(self, result: dict) -> None:
        evaluations = {str(o.artifact): o.result.evaluation for o in self.session.outcomes
                       if o.result is not None and o.result.evaluation is not None and o.artifact}
        self.set_points(*accuracy_points(list(result.get("results", [])), evaluations))

    def point_at(self, scene_pos: QPointF) -> dict | None:
        view = self.getPlotItem().getViewBox().mapSceneToView(scene_pos)
        hits = self.scatter.pointsAt(view)
        if len(hits):
            return self.points[hits[0].data()]
        hits = self.rounds_scatter.pointsAt(view)
        return self.rounds[hits[0].data()] if len(hits) else None

    def round_scene_pos(self, index: int) -> QPointF:
        p = self.rounds[index]
        return self.getPlotItem().getViewBox().mapViewToScene(QPointF(self.axis_value(p["latency_ms"]), p["accuracy"]))

    def point_scene_pos(self, index: int) -> QPointF:
        p = self.points[index]
        return self.getPlotItem().getViewBox().mapViewToScene(QPointF(self.axis_value(p["latency_ms"]), p["accuracy"]))

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        p = self.point_at(scene_pos)
        if p is not None and "kept" in p:
            speed = f" · {p['speedup']:.2f}× fp32" if p.get("speedup") is not None else ""
            self.hover_text = (f"{p['name']}\nmedian latency {p['latency_ms']:.3f} ms{speed} · accuracy {p['accuracy']:.5f}"
                               + ("\non the rounds' Pareto set" if p.get("pareto") else "")
                               + ("\nbelow the speed floor" if p.get("below_floor") else "")
                               + ("\nmeets the budget" if p["met"] else "") + ("\nkept" if p["kept"] else "")
                               + (f"\n{p['why']}" if p.get("why") else ""))
        else:
            self.hover_text = (f"{p['name']}\np50 {p['latency_ms']:.3f} ms · accuracy {p['accuracy']:.5f}"
                               + ("\non the Pareto front" if p in self.front else "")) if p else ""
        show_hover(self, self.hover_text)

    def export_png(self, path: str | Path, width: int = 1600) -> Path:
        return _png(self.getPlotItem(), path, width)
