"""Draws the case's planning objects (rulers, angles, trajectories, cut planes) on a slice view.

:class:`PlanOverlay` is an ``OverlayPainter`` (see :mod:`surgtwin.ui.view_tools`): the
window registers one per slice view. Points near the shown plane are drawn solid, farther
ones faint and dashed at their projection, so a plan made on another slice stays findable.
The drawing helpers here are shared with the planning tools' live gestures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QLineF, QPointF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

from surgtwin.core.plan import Angle, CutPlane, PlanObject, Ruler, Trajectory
from surgtwin.core.scene import Scene
from surgtwin.ui.view_tools import ViewFrame

NEAR_MM = 2.0  # a point at most this far from the shown plane (or half a slice) counts as on it
FAINT_ALPHA = 110
MARKER_PX = 5.0


def qcolor(color: Sequence[float], alpha: int = 255) -> QColor:
    c = QColor.fromRgbF(*[min(max(float(v), 0.0), 1.0) for v in color[:3]])
    c.setAlpha(alpha)
    return c


def project(frame: ViewFrame, lps: Sequence[float]) -> np.ndarray:
    """The point moved along the view normal onto the shown plane."""
    p = np.asarray(lps, dtype=np.float64)
    return p - ((p - frame.plane_point) @ frame.normal) * frame.normal


def widget_point(frame: ViewFrame, lps: Sequence[float]) -> QPointF:
    return frame.to_widget(project(frame, lps))


def _pen(color: Sequence[float], solid: bool, width: float = 2.0) -> QPen:
    pen = QPen(qcolor(color, 255 if solid else FAINT_ALPHA), width if solid else 1.0)
    pen.setStyle(Qt.PenStyle.SolidLine if solid else Qt.PenStyle.DashLine)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


def draw_segment(
    painter: QPainter, frame: ViewFrame, a: Sequence[float], b: Sequence[float], color, solid: bool
) -> None:
    painter.setPen(_pen(color, solid))
    painter.drawLine(QLineF(widget_point(frame, a), widget_point(frame, b)))


def draw_marker(
    painter: QPainter, frame: ViewFrame, lps: Sequence[float], color, solid: bool, shape: str = "dot"
) -> None:
    """A point: filled dot, open ring ("ring") or a cross ("cross") at its projection."""
    at = widget_point(frame, lps)
    painter.setPen(_pen(color, solid))
    r = MARKER_PX
    if shape == "cross":
        painter.drawLine(QLineF(at.x() - r, at.y() - r, at.x() + r, at.y() + r))
        painter.drawLine(QLineF(at.x() - r, at.y() + r, at.x() + r, at.y() - r))
        return
    painter.setBrush(
        qcolor(color, 255 if solid else FAINT_ALPHA) if shape == "dot" else Qt.BrushStyle.NoBrush
    )
    painter.drawEllipse(at, r if shape == "ring" else r * 0.7, r if shape == "ring" else r * 0.7)
    painter.setBrush(Qt.BrushStyle.NoBrush)


def draw_label(painter: QPainter, at: QPointF, text: str, color, solid: bool = True) -> None:
    """Text with a dark shadow so it reads on any grey level."""
    font = QFont(painter.font())
    font.setPointSizeF(9.0)
    painter.setFont(font)
    pos = QPointF(at.x() + 7, at.y() - 7)
    painter.setPen(QColor(0, 0, 0, 220 if solid else FAINT_ALPHA))
    painter.drawText(pos + QPointF(1, 1), text)
    painter.setPen(qcolor(color, 255 if solid else FAINT_ALPHA))
    painter.drawText(pos, text)


def ruler_text(length_mm: float) -> str:
    return f"{length_mm:.1f} mm"


def angle_text(degrees: float) -> str:
    return f"{degrees:.1f}°"


def degrees_between(vertex, first, second) -> float:
    u = np.asarray(first, dtype=np.float64) - np.asarray(vertex, dtype=np.float64)
    v = np.asarray(second, dtype=np.float64) - np.asarray(vertex, dtype=np.float64)
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v)), float(u @ v))))


def plane_crossing(frame: ViewFrame, a: Sequence[float], b: Sequence[float]) -> np.ndarray | None:
    """Where the segment a-b crosses the shown plane, or None (parallel, or ends on one side)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    along = (b - a) @ frame.normal
    if abs(along) < 1e-9:
        return None
    t = ((frame.plane_point - a) @ frame.normal) / along
    return a + t * (b - a) if 0.0 <= t <= 1.0 else None


def plane_intersection(
    frame: ViewFrame, point: Sequence[float], normal: Sequence[float]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(point, unit direction) of the line where a plane meets the shown plane, or None if
    they are parallel. The point is the one nearest ``point`` (where the plane was drawn)."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    direction = np.cross(n, frame.normal)
    size = float(np.linalg.norm(direction))
    if size < 1e-6:
        return None
    direction /= size
    p = np.asarray(point, dtype=np.float64)
    rows = np.array([n, frame.normal, direction])
    values = np.array([n @ p, frame.normal @ frame.plane_point, direction @ p])
    return np.linalg.solve(rows, values), direction


class PlanOverlay:
    """``PlanOverlay(scene_getter)(painter, frame)`` draws every visible planning object.

    ``scene_getter`` returns the scene shown now (the window's case changes on Open);
    ``near_mm`` overrides the on-plane tolerance (default: half a slice, at least 2 mm).
    """

    def __init__(self, scene_getter: Callable[[], Scene | None], near_mm: float | None = None) -> None:
        self.scene_getter = scene_getter
        self.near_mm = near_mm
        self.selected_id: str | None = None  # drawn a little thicker when set

    def tolerance(self, scene: Scene, frame: ViewFrame) -> float:
        if self.near_mm is not None:
            return self.near_mm
        volume = next(iter(scene.volumes.values()), None)
        if volume is None:
            return NEAR_MM
        # The voxel's extent along the view normal is the slice thickness there.
        thickness = float(np.abs(volume.ijk_to_lps[:3, :3].T @ frame.normal).max())
        return max(NEAR_MM, thickness / 2.0)

    def __call__(self, painter: QPainter, frame: ViewFrame) -> None:
        scene = self.scene_getter()
        if scene is None:
            return
        plans = scene.plans
        if not plans:
            return
        near = self.tolerance(scene, frame)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        try:
            for plan in plans.values():
                if plan.visible:
                    draw_plan(painter, frame, plan, near)
        finally:
            painter.restore()


def draw_plan(painter: QPainter, frame: ViewFrame, plan: PlanObject, near_mm: float) -> None:
    def on_plane(*points: Sequence[float]) -> bool:
        return all(frame.distance_to_plane(np.asarray(p)) <= near_mm for p in points)

    color = plan.color
    if isinstance(plan, Ruler):
        solid = on_plane(plan.start, plan.end)
        draw_segment(painter, frame, plan.start, plan.end, color, solid)
        for p in (plan.start, plan.end):
            draw_marker(painter, frame, p, color, on_plane(p))
        middle = (np.asarray(plan.start) + np.asarray(plan.end)) / 2.0
        draw_label(painter, widget_point(frame, middle), ruler_text(plan.length_mm), color, solid)
    elif isinstance(plan, Angle):
        solid = on_plane(plan.first, plan.vertex, plan.second)
        for end in (plan.first, plan.second):
            draw_segment(painter, frame, plan.vertex, end, color, solid)
            draw_marker(painter, frame, end, color, on_plane(end))
        draw_marker(painter, frame, plan.vertex, color, on_plane(plan.vertex))
        draw_label(painter, widget_point(frame, plan.vertex), angle_text(plan.degrees), color, solid)
    elif isinstance(plan, Trajectory):
        _draw_trajectory(painter, frame, plan, on_plane)
    elif isinstance(plan, CutPlane):
        _draw_cut_plane(painter, frame, plan)


def _draw_trajectory(painter: QPainter, frame: ViewFrame, plan: Trajectory, on_plane) -> None:
    color = plan.color
    in_plane = on_plane(plan.entry, plan.target)
    draw_segment(painter, frame, plan.entry, plan.target, color, in_plane)
    draw_marker(painter, frame, plan.entry, color, on_plane(plan.entry), "ring")
    draw_marker(painter, frame, plan.target, color, on_plane(plan.target), "dot")
    crossing = None if in_plane else plane_crossing(frame, plan.entry, plan.target)
    if crossing is not None:  # where the needle passes through this slice
        draw_marker(painter, frame, crossing, color, True, "cross")
    label_at = crossing if crossing is not None else np.asarray(plan.target)
    draw_label(
        painter,
        widget_point(frame, label_at),
        f"{plan.name} {ruler_text(plan.length_mm)}",
        color,
        in_plane or crossing is not None,
    )


def _draw_cut_plane(painter: QPainter, frame: ViewFrame, plan: CutPlane) -> None:
    line = plane_intersection(frame, plan.point, plan.normal)
    if line is None:
        return  # parallel to this slice: no line to show
    point, direction = line
    device = painter.device()
    reach = float(np.hypot(device.width(), device.height())) * frame.mm_per_pixel
    reach += float(np.linalg.norm(point - frame.plane_point))  # long enough to cross the view
    draw_segment(painter, frame, point - reach * direction, point + reach * direction, plan.color, True)
    # A short tick towards the positive side (the part a split moves out).
    n = np.asarray(plan.unit_normal)
    in_plane = n - (n @ frame.normal) * frame.normal
    if np.linalg.norm(in_plane) > 1e-6:
        tick = point + in_plane / np.linalg.norm(in_plane) * 15.0 * frame.mm_per_pixel
        draw_segment(painter, frame, point, tick, plan.color, True)
    draw_label(painter, widget_point(frame, point), plan.name, plan.color)
