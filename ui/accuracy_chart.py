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

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QWidget

from app.session import Session
from ui.latency_chart import _FollowsPalette, _png, show_hover


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


class AccuracyChart(_FollowsPalette, pg.PlotWidget):
    """Scatter of artifacts by latency (x) and accuracy (y), the Pareto front as a line; drawn from the
    session's benchmarks and its conversions' evaluations (when given a session)."""

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        if session is not None:
            session.events.benchmark_finished.connect(self._on_benchmark_finished)
        self.setAccessibleName("Accuracy vs latency chart")
        self.setMinimumHeight(220)
        self.points: list[dict] = []
        self.front: list[dict] = []
        self.hover_text = ""
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setLabel("bottom", "p50 latency (ms)")
        plot.hideButtons()
        self.scatter = pg.ScatterPlotItem(size=11)
        self.line = pg.PlotCurveItem()
        self.rounds: list[dict] = []
        self.rounds_scatter = pg.ScatterPlotItem(size=8)
        self.rounds_line = pg.PlotCurveItem()
        self.rounds_front = pg.PlotCurveItem()       # the loop's Pareto set of its rounds
        self.floor_line = pg.InfiniteLine(angle=90, movable=False,
                                          pen=pg.mkPen("#e65100", width=1, style=Qt.PenStyle.DashLine),
                                          label="speed floor", labelOpts={"position": 0.9, "color": "#e65100"})
        self.floor_line.setVisible(False)
        self.floor_ms: float | None = None
        plot.addItem(self.rounds_line)
        plot.addItem(self.rounds_front)
        plot.addItem(self.floor_line)
        plot.addItem(self.rounds_scatter)
        plot.addItem(self.line)
        plot.addItem(self.scatter)
        self._empty = pg.TextItem("Convert with data and benchmark to compare accuracy and speed", anchor=(0.5, 0.5))
        plot.addItem(self._empty)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._built = True
        self.apply_palette()

    def apply_palette(self) -> None:
        self.paint_plot()

    def set_points(self, points: list[dict], label: str = "") -> None:
        self.points = list(points)
        self.front = pareto_front(self.points)
        self._empty.setVisible(not self.points and not self.rounds)
        on_front = {id(p) for p in self.front}
        self.scatter.setData([{"pos": (p["latency_ms"], p["accuracy"]), "data": i,
                               "brush": pg.mkBrush("#2e7d32" if id(p) in on_front else "#9e9e9e")}
                              for i, p in enumerate(self.points)])
        self.line.setData([p["latency_ms"] for p in self.front], [p["accuracy"] for p in self.front],
                          pen=pg.mkPen("#2e7d32", width=2))
        plot = self.getPlotItem()
        plot.setLabel("left", label.split(" · ")[0] if label else "accuracy")
        if label:
            plot.setTitle(label + " · green: the Pareto front (nothing is both faster and more accurate)",
                          size="9pt")
        if self.points:
            plot.getViewBox().autoRange(padding=0.15)

    def set_rounds(self, rounds: list[dict], label: str = "", floor_ms: float | None = None) -> None:
        """The accuracy-budget rounds (:func:`budget_points`), joined in the order they were tried (dotted),
        their Pareto set joined (solid), and the speed floor at ``floor_ms`` (:func:`floor_latency_ms`)."""
        self.rounds = list(rounds)
        self.floor_ms = floor_ms
        self._empty.setVisible(not self.points and not self.rounds)
        self.rounds_scatter.setData([{"pos": (p["latency_ms"], p["accuracy"]), "data": i, "size": 13 if p["kept"] else 8,
                                      "brush": pg.mkBrush(None if p.get("below_floor") else
                                                          "#e65100" if p["kept"] else "#ffb74d"),
                                      "pen": pg.mkPen("#e65100" if p["kept"] else "#ffb74d", width=1.5)}
                                     for i, p in enumerate(self.rounds)])
        self.rounds_line.setData([p["latency_ms"] for p in self.rounds], [p["accuracy"] for p in self.rounds],
                                 pen=pg.mkPen("#ffb74d", width=1, style=Qt.PenStyle.DotLine))
        front = sorted((p for p in self.rounds if p.get("pareto")), key=lambda p: p["latency_ms"])
        self.rounds_front.setData([p["latency_ms"] for p in front], [p["accuracy"] for p in front],
                                  pen=pg.mkPen("#e65100", width=2))
        self.floor_line.setVisible(floor_ms is not None)
        if floor_ms is not None:
            self.floor_line.setValue(floor_ms)
        if label and not self.points:
            self.getPlotItem().setLabel("left", label)
            self.getPlotItem().setTitle(f"{label} · budget rounds: Pareto set joined, kept one larger, "
                                        "hollow below the speed floor (dashed)", size="9pt")
        if self.rounds:
            self.getPlotItem().getViewBox().autoRange(padding=0.15)

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
        return self.getPlotItem().getViewBox().mapViewToScene(QPointF(p["latency_ms"], p["accuracy"]))

    def point_scene_pos(self, index: int) -> QPointF:
        p = self.points[index]
        return self.getPlotItem().getViewBox().mapViewToScene(QPointF(p["latency_ms"], p["accuracy"]))

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
