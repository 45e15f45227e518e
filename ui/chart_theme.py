"""One look for every chart (Latency, Batch sizes, Accuracy vs latency, Sweep): the palette's background
(white in a light palette) and text colour, one font for axes, ticks, titles, legends and labels, the same
pens, series colours and warning colour, legends below the data (never over a point) and text that fits.

A chart mixes in :class:`ThemedChart`, lists its plots and legends, and calls :meth:`ThemedChart.paint_theme`;
it is repainted when the system switches between light and dark.
"""

from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPalette
from PySide6.QtWidgets import QWidget

FONT_PT = 9
WARNING = QColor("#d84315")      # flags: too noisy to rank
FRONT = QColor("#2e7d32")        # the Pareto front
OTHER = QColor("#9e9e9e")        # a point off the front
INTERVAL = QColor(200, 40, 40)   # a p50's 95 % interval
SAMPLE_PX = 26.0                 # a legend entry's sample (pyqtgraph draws it 20 px wide)


def font(bold: bool = False) -> QFont:
    f = QFont()
    f.setPointSizeF(FONT_PT)
    f.setBold(bold)
    return f


def colors(widget: QWidget) -> tuple[QColor, QColor]:
    """(background, foreground) of every chart: the palette's Base and Text."""
    pal = widget.palette()
    return pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)


def series_color(i: int, n: int, alpha: int = 255) -> QColor:
    """The colour of series ``i`` of ``n``, the same in every chart."""
    return pg.intColor(i, hues=max(n, 3), values=1, maxValue=200, alpha=alpha)


def text_width(text: str, bold: bool = False) -> float:
    """Width in pixels of one line of ``text`` in the charts' font."""
    metrics = QFontMetricsF(font(bold))
    return max((metrics.horizontalAdvance(line) for line in text.split("\n")), default=0.0)


def elide(text: str, pixels: float) -> str:
    """``text`` cut to ``pixels`` wide with an ellipsis (whole when it fits)."""
    return QFontMetricsF(font()).elidedText(text, Qt.TextElideMode.ElideRight, max(pixels, 0.0))


def text_item(text: str, color: QColor, anchor=(0.0, 0.5), bold: bool = False) -> pg.TextItem:
    """A label in data coordinates, in the charts' font."""
    item = pg.TextItem(text, color=color, anchor=anchor)
    item.setFont(font(bold))
    return item


def style_plot(plot: pg.PlotItem, fg: QColor) -> None:
    """Axes, ticks, axis labels and title of ``plot`` in the theme's pen and font."""
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.enableAutoSIPrefix(False)  # "latency (ms) (x0.001)" reads wrong; the label has the unit
        # pyqtgraph's enableAutoSIPrefix(False) still computes a scale from the axis's range at that moment
        # and keeps it: a sweep's p99 of 0.05–0.8 ms read 50–800 on an axis labelled "ms"
        axis.autoSIPrefixScale, axis.labelUnitPrefix = 1.0, ""
        axis.picture = None
        axis.update()
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(pg.mkPen(fg))
        axis.setTickFont(font())
        if axis.labelText:
            axis.setLabel(axis.labelText, units=axis.labelUnits or None, color=fg.name(), size=f"{FONT_PT}pt")
    if plot.titleLabel.text:
        plot.setTitle(plot.titleLabel.text, color=fg.name(), size=f"{FONT_PT}pt", bold=True)


def set_title(plot: pg.PlotItem, text: str, fg: QColor) -> None:
    plot.setTitle(text or None, color=fg.name(), size=f"{FONT_PT}pt", bold=True)


def show_axes(plot: pg.PlotItem, shown: bool, grid_x: bool = False) -> None:
    """Axes only with data: an empty chart shows its message, not a meaningless −0.4…0.4 scale."""
    for name in ("left", "bottom"):
        plot.showAxis(name, shown)
    plot.showGrid(x=shown and grid_x, y=shown, alpha=0.25)


class Legend(pg.LegendItem):
    """A legend laid out in its own cell, below the data (see :func:`legend_below`): the layout sizes it."""

    def __init__(self, columns: int, beside: pg.AxisItem | None = None) -> None:
        super().__init__(offset=None, colCount=columns, labelTextSize=f"{FONT_PT}pt", frame=False)
        self.beside = beside   # the axis left of the legend's cell: its width is not the legend's

        self.note: pg.LabelItem | None = None   # a line of text under the entries, across all columns

    def updateSize(self) -> None:  # noqa: N802 - pyqtgraph override: the parent layout places it
        self.updateGeometry()

    def set_note(self, text: str) -> None:
        """A line under the entries (what labels on the data mean), plain text."""
        if self.note is None:
            self.note = pg.LabelItem("", justify="left")
        self.note.setText(html.escape(text, quote=False), color=self.opts["labelTextColor"] or None,
                          size=f"{FONT_PT}pt")
        self._place_note()

    def _take_note(self) -> None:
        """The note out of the layout (it stays this legend's child)."""
        for i in range(self.layout.count()):
            if self.layout.itemAt(i) is self.note:
                self.layout.removeAt(i)
                return

    def _place_note(self) -> None:
        if self.note is None:
            return
        self._take_note()
        rows = max((r + 1 for r in range(self.layout.rowCount()) for c in range(self.layout.columnCount())
                    if self.layout.itemAt(r, c) is not None), default=0)
        self.layout.addItem(self.note, rows, 0, 1, max(self.columnCount * 2, 1))

    def addItem(self, item, name: str) -> None:  # noqa: N802 - pyqtgraph override: the note stays last
        self._take_note()
        super().addItem(item, name)
        self._place_note()

    def clear(self) -> None:
        self._take_note()
        super().clear()
        self._place_note()

    def setColumnCount(self, columnCount: int) -> None:  # noqa: N802, N803 - pyqtgraph override
        if columnCount == self.columnCount:
            return
        self._take_note()
        super().setColumnCount(columnCount)
        self._place_note()

    def entries(self) -> list[str]:
        return [html.unescape(label.text) for _, label in self.items]

    def fit(self, pixels: float) -> None:
        """As many columns as fit in ``pixels`` (one, at least)."""
        if self.beside is not None and self.beside.isVisible():
            pixels -= getattr(self.beside, "fixedWidth", None) or self.beside.width()
        widths = [SAMPLE_PX + label.item.boundingRect().width() + 2 * self.layout.horizontalSpacing()
                  for _, label in self.items]
        for columns in range(max(len(widths), 1), 0, -1):
            cols = [max(widths[c::columns], default=0.0) for c in range(columns)]
            if sum(cols) <= pixels or columns == 1:
                break
        self.setColumnCount(columns)

    def recolor(self, fg: QColor) -> None:
        self.setLabelTextColor(fg)
        for _, label in [*self.items, (None, self.note)]:
            if label is not None:
                label.setText(label.text, color=fg.name(), size=f"{FONT_PT}pt")   # re-rendered in the colour


def legend_below(plot: pg.PlotItem, columns: int = 3) -> Legend:
    """A legend in a row of its own under ``plot``'s bottom axis, outside the data area."""
    legend = Legend(columns, beside=plot.getAxis("left"))
    plot.layout.addItem(legend, 4, 1)
    return legend


def legend_in_layout(layout: pg.GraphicsLayout, row: int, col: int = 0, colspan: int = 1,
                     columns: int = 3) -> Legend:
    """A legend in a cell of a :class:`pyqtgraph.GraphicsLayout` (under plots sharing it)."""
    legend = Legend(columns)
    layout.addItem(legend, row=row, col=col, colspan=colspan)
    return legend


class ThemedChart:
    """Mixed into a pyqtgraph widget: paints its plots, legends and texts in the theme, and repaints them
    when the palette changes. Subclasses list ``theme_plots()`` and ``theme_legends()`` and keep their
    texts (TextItems recoloured to the foreground) in ``theme_texts()``."""

    def theme_plots(self) -> list[pg.PlotItem]:
        return [self.getPlotItem()]

    def theme_legends(self) -> list[pg.LegendItem]:
        return []

    def theme_texts(self) -> list[pg.TextItem]:
        return []

    def paint_theme(self) -> QColor:
        """Background, axes, legends and texts in the palette's colours; returns the text colour."""
        bg, fg = colors(self)
        self.setBackground(bg)
        for plot in self.theme_plots():
            style_plot(plot, fg)
        for legend in self.theme_legends():
            legend.recolor(fg)
            legend.setBrush(pg.mkBrush(None))
            legend.setPen(pg.mkPen(None))
        self.fit_legends()
        for item in self.theme_texts():
            item.setColor(fg)
        return fg

    def fit_legends(self) -> None:
        """Legends below the data in as many columns as the chart's width holds."""
        for legend in self.theme_legends():
            legend.fit(self.width() - 24)

    def apply_palette(self) -> None:
        self.paint_theme()

    def close(self) -> bool:
        """No more re-flowing or repainting: pyqtgraph's close deletes every item first."""
        self._built = False
        return super().close()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override: legends re-flow
        super().resizeEvent(event)
        if getattr(self, "_built", False):
            self.fit_legends()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override: light/dark switch
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and getattr(self, "_built", False):
            self.apply_palette()
