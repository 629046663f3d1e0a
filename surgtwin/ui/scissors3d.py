"""Scissors in the 3D view: a lasso drawn over the render window becomes one label edit.

The lasso's display points are put on the camera's focal plane in LPS millimetres and swept
along the camera's direction of projection by the core's ``scissors`` tool. With a
perspective camera the true cut is a cone; the prism follows it exactly at the focal plane
and closely near the view's centre, which is where users cut.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor2D, vtkPolyDataMapper2D, vtkRenderer

from surgtwin.core.commands import Command
from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools.scissors import scissors
from surgtwin.ui.view_tools import ToolContext

LASSO_COLOR = (1.0, 0.85, 0.1)
MIN_STEP_PX = 3.0  # a new lasso point only after the mouse moved this far


def display_to_focal_plane(renderer: vtkRenderer, display_points: Sequence[Sequence[float]]) -> np.ndarray:
    """VTK display pixels (origin bottom left) -> (N, 3) world (LPS mm) points on the focal plane."""
    focal = renderer.GetActiveCamera().GetFocalPoint()
    renderer.SetWorldPoint(*focal, 1.0)
    renderer.WorldToDisplay()
    depth = renderer.GetDisplayPoint()[2]
    out = []
    for x, y in display_points:
        renderer.SetDisplayPoint(float(x), float(y), depth)
        renderer.DisplayToWorld()
        wx, wy, wz, w = renderer.GetWorldPoint()
        out.append((wx / w, wy / w, wz / w))
    return np.asarray(out, dtype=np.float64)


def view_direction(renderer: vtkRenderer) -> np.ndarray:
    return np.asarray(renderer.GetActiveCamera().GetDirectionOfProjection(), dtype=np.float64)


def scissors_command(
    context: ToolContext, polygon_lps: np.ndarray, direction_lps: np.ndarray, erase_inside: bool = True
) -> Command:
    """The label edit cutting the selected segment (raises SegmentationError when none is)."""
    selected = context.selected_segment()
    if selected is None:
        raise SegmentationError("no segment is selected: choose the segment to cut in the Segments panel")
    seg_id, label = selected
    segmentation = context.scene.get(seg_id)
    if not isinstance(segmentation, Segmentation):
        raise SegmentationError(f"{seg_id!r} is not a segmentation")
    operation = "remove_inside" if erase_inside else "keep_inside"
    return scissors(segmentation, label, polygon_lps, direction_lps, operation)


class Lasso:
    """The polygon being drawn, shown as a closed yellow line over the 3D view."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self.renderer = renderer
        self.points: list[tuple[float, float]] = []  # VTK display pixels
        self._poly = vtkPolyData()
        mapper = vtkPolyDataMapper2D()
        mapper.SetInputData(self._poly)
        self.actor = vtkActor2D()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetColor(*LASSO_COLOR)
        self.actor.GetProperty().SetLineWidth(2.0)
        self.actor.PickableOff()

    @property
    def active(self) -> bool:
        return bool(self.points)

    def start(self, x: float, y: float) -> None:
        self.points = [(x, y)]
        self.renderer.AddViewProp(self.actor)
        self._update()

    def add(self, x: float, y: float) -> bool:
        last = self.points[-1]
        if np.hypot(x - last[0], y - last[1]) < MIN_STEP_PX:
            return False
        self.points.append((x, y))
        self._update()
        return True

    def finish(self) -> list[tuple[float, float]]:
        points, self.points = self.points, []
        self.renderer.RemoveViewProp(self.actor)
        return points

    def _update(self) -> None:
        points = vtkPoints()
        for x, y in self.points:
            points.InsertNextPoint(x, y, 0.0)
        lines = vtkCellArray()
        lines.InsertNextCell(len(self.points) + 1)
        for index in [*range(len(self.points)), 0]:  # closed: back to the first point
            lines.InsertCellPoint(index)
        self._poly.SetPoints(points)
        self._poly.SetLines(lines)
        self._poly.Modified()
