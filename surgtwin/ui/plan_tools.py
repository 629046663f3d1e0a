"""Slice-view tools that place planning objects: ruler, angle, trajectory, cut plane.

Each tool collects points (``SlicePoint.lps``, patient LPS mm) from the left mouse button,
draws its unfinished gesture with the live measurement, and on completion runs exactly one
``AddPlanObject`` (one undo step). ``cancel`` (Escape) drops an unfinished gesture.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter

from surgtwin.core.plan import Angle, CutPlane, PlanError, PlanObject, Ruler, Trajectory
from surgtwin.core.plan.commands import AddPlanObject
from surgtwin.ui.plan_overlay import (
    angle_text,
    degrees_between,
    draw_label,
    draw_marker,
    draw_segment,
    ruler_text,
    widget_point,
)
from surgtwin.ui.view_tools import SlicePoint, SliceTool, ToolContext, ViewFrame

SAME_POINT_MM = 1e-3  # a click without a drag: not a measurement


def next_name(context: ToolContext, cls: type[PlanObject]) -> str:
    """'Ruler 1', 'Ruler 2', ...: the first number no object of the case uses."""
    taken = {plan.name for plan in context.scene.plans.values()}
    n = 1
    while f"{cls.default_name} {n}" in taken:
        n += 1
    return f"{cls.default_name} {n}"


class PlanTool(SliceTool):
    """Common part: the points clicked so far, the mouse position, and adding the object."""

    cursor = Qt.CursorShape.CrossCursor
    plan_class: type[PlanObject] = PlanObject

    def __init__(self, context: ToolContext) -> None:
        super().__init__(context)
        self.points: list[np.ndarray] = []
        self.hover: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return bool(self.points)

    def cancel(self) -> None:
        if self.points or self.hover is not None:
            self.points, self.hover = [], None
            self.context.tool_changed()

    def move(self, at: SlicePoint, buttons_down: bool) -> bool:
        if not self.points:
            return False
        self.hover = np.asarray(at.lps, dtype=np.float64)
        self.context.tool_changed()
        return True

    def _differs(self, point: np.ndarray, hint: str) -> bool:
        if self.points and np.linalg.norm(point - self.points[-1]) < SAME_POINT_MM:
            self.context.set_status(hint)
            return False
        return True

    def _add(self, **fields) -> bool:
        """Make the object and run one AddPlanObject; the gesture ends either way."""
        self.points, self.hover = [], None
        self.context.tool_changed()
        try:
            plan = self.plan_class(name=next_name(self.context, self.plan_class), **fields)
        except PlanError as exc:
            self.context.report_error(f"Add {self.plan_class.default_name.lower()}", exc)
            return False
        if not self.context.execute(AddPlanObject(plan)):
            return False
        self.context.set_status(f"Added {plan.name}: {self.describe(plan)}")
        return True

    def describe(self, plan: PlanObject) -> str:
        return ""


class RulerTool(PlanTool):
    """Press at one end, drag, release at the other."""

    name = "ruler"
    plan_class = Ruler

    def press(self, at: SlicePoint) -> bool:
        self.points, self.hover = [np.asarray(at.lps, dtype=np.float64)], None
        self.context.tool_changed()
        return True

    def release(self, at: SlicePoint) -> bool:
        if not self.points:
            return False
        end = np.asarray(at.lps, dtype=np.float64)
        if not self._differs(end, "Ruler: drag from one end to the other"):
            self.cancel()
            return True
        self._add(start=self.points[0], end=end)
        return True

    def describe(self, plan: PlanObject) -> str:
        assert isinstance(plan, Ruler)
        return ruler_text(plan.length_mm)

    def paint(self, painter: QPainter, frame: ViewFrame) -> None:
        if not self.points:
            return
        start, end = self.points[0], self.hover
        draw_marker(painter, frame, start, Ruler.default_color, True)
        if end is not None:
            draw_segment(painter, frame, start, end, Ruler.default_color, True)
            length = float(np.linalg.norm(end - start))
            draw_label(painter, widget_point(frame, end), ruler_text(length), Ruler.default_color)


class AngleTool(PlanTool):
    """Three clicks: first arm's end, the vertex, second arm's end."""

    name = "angle"
    plan_class = Angle

    def press(self, at: SlicePoint) -> bool:
        point = np.asarray(at.lps, dtype=np.float64)
        if not self._differs(point, "Angle: click a point away from the last one"):
            return True
        self.points.append(point)
        if len(self.points) == 3:
            first, vertex, second = self.points
            self._add(first=first, vertex=vertex, second=second)
        else:
            self.hover = None
            self.context.tool_changed()
            self.context.set_status(
                ("Angle: click the vertex", "Angle: click the end of the second arm")[len(self.points) - 1]
            )
        return True

    def release(self, at: SlicePoint) -> bool:
        return self.active  # clicks are presses; swallow the release mid-gesture

    def describe(self, plan: PlanObject) -> str:
        assert isinstance(plan, Angle)
        return angle_text(plan.degrees)

    def paint(self, painter: QPainter, frame: ViewFrame) -> None:
        if not self.points:
            return
        color = Angle.default_color
        chain = [*self.points, *([self.hover] if self.hover is not None else [])]
        for a, b in zip(chain, chain[1:], strict=False):
            draw_segment(painter, frame, a, b, color, True)
        for p in self.points:
            draw_marker(painter, frame, p, color, True)
        if len(chain) == 3 and np.linalg.norm(chain[2] - chain[1]) >= SAME_POINT_MM:
            degrees = degrees_between(chain[1], chain[0], chain[2])
            draw_label(painter, widget_point(frame, chain[1]), angle_text(degrees), color)


class TrajectoryTool(PlanTool):
    """Click the entry, then the target (the two clicks may be in different views)."""

    name = "trajectory"
    plan_class = Trajectory

    def press(self, at: SlicePoint) -> bool:
        point = np.asarray(at.lps, dtype=np.float64)
        if not self.points:
            self.points, self.hover = [point], None
            self.context.tool_changed()
            self.context.set_status("Trajectory: click the target (any view; scroll to its slice first)")
            return True
        if not self._differs(point, "Trajectory: the target must differ from the entry"):
            return True
        self._add(entry=self.points[0], target=point)
        return True

    def release(self, at: SlicePoint) -> bool:
        return self.active

    def describe(self, plan: PlanObject) -> str:
        assert isinstance(plan, Trajectory)
        return ruler_text(plan.length_mm)

    def paint(self, painter: QPainter, frame: ViewFrame) -> None:
        if not self.points:
            return
        color, entry = Trajectory.default_color, self.points[0]
        on_plane = frame.distance_to_plane(entry) <= 2.0
        draw_marker(painter, frame, entry, color, on_plane, "ring")
        if self.hover is not None:
            draw_segment(painter, frame, entry, self.hover, color, True)
            length = float(np.linalg.norm(self.hover - entry))
            draw_label(painter, widget_point(frame, self.hover), ruler_text(length), color)


class CutPlaneTool(PlanTool):
    """Drag a line on a slice: the plane contains it and the view's normal, and cuts the
    segment selected in the segments panel. Its normal (the side a split moves out, marked
    by the overlay's tick) is drag direction x view normal: on screen, left of the drag."""

    name = "cut_plane"
    plan_class = CutPlane

    def __init__(self, context: ToolContext) -> None:
        super().__init__(context)
        self._view_normal: np.ndarray | None = None

    def press(self, at: SlicePoint) -> bool:
        self.points, self.hover = [np.asarray(at.lps, dtype=np.float64)], None
        self._view_normal = np.asarray(at.normal, dtype=np.float64)
        self.context.tool_changed()
        return True

    def release(self, at: SlicePoint) -> bool:
        if not self.points or self._view_normal is None:
            return False
        start, end = self.points[0], np.asarray(at.lps, dtype=np.float64)
        # Keep the line in the plane where it started (a drag ends on the same slice).
        end = end - ((end - start) @ self._view_normal) * self._view_normal
        if not self._differs(end, "Cut plane: drag a line across the segment"):
            self.cancel()
            return True
        normal = np.cross(end - start, self._view_normal)
        target = self.context.selected_segment()
        seg_id, label = target if target is not None else (None, None)
        if self._add(point=(start + end) / 2.0, normal=normal, segmentation_id=seg_id, segment_label=label):
            if target is None:
                self.context.set_status(
                    "Cut plane added without a segment: select a segment, then 'Use selected segment'"
                )
        return True

    def describe(self, plan: PlanObject) -> str:
        assert isinstance(plan, CutPlane)
        return self._segment_name(plan.segmentation_id, plan.segment_label) or "no segment"

    def _segment_name(self, seg_id: str | None, label: int | None) -> str | None:
        if seg_id is None or label is None or seg_id not in self.context.scene:
            return None
        segment = getattr(self.context.scene.get(seg_id), "segments", {}).get(label)
        return None if segment is None else segment.name

    def paint(self, painter: QPainter, frame: ViewFrame) -> None:
        if not self.points:
            return
        color, start = CutPlane.default_color, self.points[0]
        draw_marker(painter, frame, start, color, True)
        if self.hover is None:
            return
        draw_segment(painter, frame, start, self.hover, color, True)
        target = self.context.selected_segment()
        name = self._segment_name(*target) if target is not None else None
        length = float(np.linalg.norm(self.hover - start))
        text = f"cut {name}: {ruler_text(length)}" if name else f"cut (no segment): {ruler_text(length)}"
        draw_label(painter, widget_point(frame, self.hover), text, color)


PLAN_TOOLS: dict[str, type[PlanTool]] = {
    "Ruler": RulerTool,
    "Angle": AngleTool,
    "Trajectory": TrajectoryTool,
    "Cut plane": CutPlaneTool,
}

__all__ = ["PLAN_TOOLS", "AngleTool", "CutPlaneTool", "PlanTool", "RulerTool", "TrajectoryTool", "next_name"]
