"""A small line plot: pressure (mmHg) against distance from the inlet along the centreline (or,
with another ``x_label``, against time over the cardiac cycle), one curve per inlet→outlet path,
stenoses marked with a red triangle on their curve. A curve may be dashed and share another's
colour (the 3D model's pressure along the same path as the reduced model's); the legend shows
each curve's line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
STENOSIS_COLOUR = QColor("#d62728")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 10, 10, 34
LEGEND_WIDTH, LEGEND_LINE, LEGEND_ROW = 130, 18, 14


@dataclass(frozen=True)
class PlotCurve:
    label: str
    distance_mm: np.ndarray
    pressure_mmhg: np.ndarray
    markers_mm: tuple[float, ...] = ()  # distances of stenoses on this path
    dashed: bool = False
    colour_index: int | None = None  # into CURVE_COLOURS; None: the curve's place in the plot

    def pressure_at(self, distance_mm: float) -> float:
        return float(np.interp(distance_mm, self.distance_mm, self.pressure_mmhg))


class PressurePlot(QWidget):
    """Draws :class:`PlotCurve` s; ``set_curves([])`` or :meth:`clear` empties it."""

    def __init__(
        self,
        parent: QWidget | None = None,
        x_label: str = "distance from inlet (mm)",
        empty_text: str = "No flow computed",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("pressure_plot")
        self.x_label = x_label  # the curves' distance_mm is then that quantity
        self.empty_text = empty_text
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.curves: list[PlotCurve] = []

    def set_curves(self, curves: Sequence[PlotCurve]) -> None:
        self.curves = [c for c in curves if len(c.distance_mm) > 1]
        self.update()

    def add_curves(self, curves: Sequence[PlotCurve]) -> None:
        self.set_curves([*self.curves, *curves])

    def remove_dashed(self) -> None:
        self.set_curves([c for c in self.curves if not c.dashed])

    def colour_of(self, n: int) -> QColor:
        """The colour the ``n``-th curve is drawn in."""
        curve = self.curves[n]
        index = n if curve.colour_index is None else curve.colour_index
        return QColor(CURVE_COLOURS[index % len(CURVE_COLOURS)])

    def clear(self) -> None:
        self.set_curves([])

    # --- geometry ---------------------------------------------------------------------------
    def data_range(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) shown: all curves, the pressure axis padded so a flat curve shows."""
        x = np.concatenate([c.distance_mm for c in self.curves])
        y = np.concatenate([c.pressure_mmhg for c in self.curves])
        x0, x1 = 0.0, max(float(x.max()), 1.0)
        y0, y1 = float(y.min()), float(y.max())
        pad = max(0.1 * (y1 - y0), 0.05)
        return x0, x1, y0 - pad, y1 + pad

    def _plot_rect(self) -> QRectF:
        return QRectF(
            MARGIN_LEFT,
            MARGIN_TOP,
            max(self.width() - MARGIN_LEFT - MARGIN_RIGHT, 1),
            max(self.height() - MARGIN_TOP - MARGIN_BOTTOM, 1),
        )

    def to_widget(self, distance_mm: float, pressure_mmhg: float) -> QPointF:
        x0, x1, y0, y1 = self.data_range()
        rect = self._plot_rect()
        return QPointF(
            rect.left() + (distance_mm - x0) / (x1 - x0) * rect.width(),
            rect.bottom() - (pressure_mmhg - y0) / (y1 - y0) * rect.height(),
        )

    # --- painting ---------------------------------------------------------------------------
    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        text_pen = QPen(self.palette().text().color())
        painter.setPen(text_pen)
        if not self.curves:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        rect = self._plot_rect()
        painter.drawRect(rect)
        self._draw_ticks(painter, rect)
        for n, curve in enumerate(self.curves):
            pen = QPen(self.colour_of(n), 2)
            if curve.dashed:
                pen.setStyle(Qt.PenStyle.DashLine)
            path = QPainterPath(self.to_widget(curve.distance_mm[0], curve.pressure_mmhg[0]))
            for d, p in zip(curve.distance_mm[1:], curve.pressure_mmhg[1:], strict=True):
                path.lineTo(self.to_widget(float(d), float(p)))
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            row = QPointF(rect.right() - LEGEND_WIDTH, rect.top() + LEGEND_ROW * (n + 1))
            painter.drawLine(row + QPointF(0, -4), row + QPointF(LEGEND_LINE, -4))
            painter.setPen(text_pen)
            painter.drawText(row + QPointF(LEGEND_LINE + 4, 0), curve.label)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(STENOSIS_COLOUR)
            for mark in curve.markers_mm:
                at = self.to_widget(mark, curve.pressure_at(mark))
                painter.drawPolygon(
                    QPolygonF([at + QPointF(0, -3), at + QPointF(-5, -11), at + QPointF(5, -11)])
                )
        painter.end()

    def _draw_ticks(self, painter: QPainter, rect: QRectF) -> None:
        x0, x1, y0, y1 = self.data_range()
        for value in np.linspace(x0, x1, 5):
            at = self.to_widget(float(value), y0)
            painter.drawLine(at, at + QPointF(0, 4))
            painter.drawText(
                QRectF(at.x() - 30, at.y() + 4, 60, 14), Qt.AlignmentFlag.AlignCenter, f"{value:.0f}"
            )
        for value in np.linspace(y0, y1, 4):
            at = self.to_widget(x0, float(value))
            painter.drawLine(at, at - QPointF(4, 0))
            painter.drawText(
                QRectF(0, at.y() - 7, MARGIN_LEFT - 6, 14),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{value:.2f}",
            )
        painter.drawText(
            QRectF(rect.left(), rect.bottom() + 17, rect.width(), 14),
            Qt.AlignmentFlag.AlignCenter,
            f"{self.x_label} — pressure (mmHg)",
        )
