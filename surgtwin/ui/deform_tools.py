"""The tools of the live deformation preview: their names, where a rigid instrument is
(:class:`ToolPose`, set on the body by the solver thread) and how the 3D view draws the
instrument and the pins (:class:`ToolGlyphs`).

Rigid instruments: a sphere, a capsule (an instrument shaft lying along the surface) and a
retraction plane. The mouse (:class:`~surgtwin.ui.tissue_dragger.TissueDragger`) presses them
along the picked surface's normal and moves them in the view plane; the solver moves them there
gradually so a sudden deep press cannot tear the mesh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkPolyData
from vtkmodules.vtkFiltersCore import vtkAppendPolyData, vtkTubeFilter
from vtkmodules.vtkFiltersSources import vtkLineSource, vtkPlaneSource, vtkSphereSource
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from surgtwin.core.deform.errors import SimulationError
from surgtwin.core.deform.mesh import MM

# the tools the mouse can use in the 3D view (see TissueDragger)
TOOLS = {
    "grasp": "Grasp and drag",
    "sphere": "Press with a sphere",
    "capsule": "Press with an instrument shaft (capsule)",
    "plane": "Retract with a plane",
    "pin": "Pin the tissue (click)",
}
RIGID_TOOLS = ("sphere", "capsule", "plane")
# Rigid tools act on nodes: one narrower than this many cells, pressed in, pokes a single node
# past its neighbours and the contact chatters (measured on 4.45 mm cells: a 6 mm sphere 5 mm deep
# alternated between 0 and 4.5 N); the session widens such a tool.
MIN_TOOL_RADIUS_CELLS = 1.5
PLANE_DRAWN_MM = 60.0  # edge of the square drawn for the (infinite) retraction plane
PIN_DRAWN_MM = 1.5  # radius of the dot drawn at a pinned point


def as_point(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Three coordinates as a float64 (3,) array."""
    return np.asarray(values, dtype=np.float64).reshape(3)


def unknown_rigid_tool(kind: str) -> SimulationError:
    return SimulationError(f"no rigid tool called {kind!r}; tools: {', '.join(RIGID_TOOLS)}")


@dataclass(frozen=True)
class ToolPose:
    """Where a rigid instrument is, in metres. ``kind`` sphere: ``centre_m``, ``radius_m``;
    capsule: also the unit shaft ``direction`` and the shaft ``length_m`` (end to end of its
    axis); plane: a point ``centre_m`` on it and its unit normal ``direction``, pointing into the
    tissue it keeps. ``press_id`` tells a new press from a move of the same tool; a new press
    starts at ``entry_m`` (where the tool first touches) and is moved in gradually."""

    kind: str
    centre_m: np.ndarray
    direction: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    radius_m: float = 0.0
    length_m: float = 0.0
    press_id: int = 0
    entry_m: np.ndarray | None = None

    def moved_to(self, centre_m: np.ndarray) -> ToolPose:
        return replace(self, centre_m=as_point(centre_m))

    def apply(self, body: Any) -> None:
        """Set this instrument on the body (replacing any rigid tool)."""
        clear_rigid_tools(body)
        if self.kind == "sphere":
            body.set_sphere(self.centre_m, self.radius_m)
        elif self.kind == "capsule":
            half = 0.5 * self.length_m * self.direction
            body.set_capsule(self.centre_m - half, self.centre_m + half, self.radius_m)
        elif self.kind == "plane":
            body.set_plane(self.centre_m, self.direction)
        else:
            raise unknown_rigid_tool(self.kind)


def clear_rigid_tools(body: Any) -> None:
    body.clear_sphere()
    body.clear_capsule()
    body.clear_plane()


def rigid_tool_force(body: Any, kind: str) -> np.ndarray:
    """Force (N) the tissue exerts on the rigid tool of this kind."""
    return np.asarray(body.tool_forces()["planes" if kind == "plane" else kind])


class ToolGlyphs:
    """What the 3D view draws of the tools: the rigid instrument (grey, the plane see-through)
    and the pinned points (small red dots). Drawn where the GUI asked the tool to be."""

    def __init__(self) -> None:
        self.tool_actor: vtkActor | None = None
        self.pins_actor: vtkActor | None = None
        self._renderer: Any = None

    def show_tool(self, renderer: Any, pose: ToolPose | None) -> None:
        self._drop("tool_actor")
        if pose is None:
            return
        actor = _actor_for(_tool_polydata(pose))
        actor.GetProperty().SetColor(0.75, 0.78, 0.82)
        if pose.kind == "plane":
            actor.GetProperty().SetOpacity(0.35)
        self._add(renderer, actor)
        self.tool_actor = actor

    def show_pins(self, renderer: Any, points_mm: Sequence[np.ndarray]) -> None:
        self._drop("pins_actor")
        if not points_mm:
            return
        append = vtkAppendPolyData()
        for point in points_mm:
            append.AddInputData(_sphere_polydata(point, PIN_DRAWN_MM))
        append.Update()
        actor = _actor_for(append.GetOutput())
        actor.GetProperty().SetColor(0.85, 0.1, 0.1)
        self._add(renderer, actor)
        self.pins_actor = actor

    def detach(self) -> None:
        self._drop("tool_actor")
        self._drop("pins_actor")
        self._renderer = None

    def _add(self, renderer: Any, actor: vtkActor) -> None:
        self._renderer = renderer
        renderer.AddActor(actor)

    def _drop(self, name: str) -> None:
        actor = getattr(self, name)
        if actor is not None and self._renderer is not None:
            self._renderer.RemoveActor(actor)
        setattr(self, name, None)


def _actor_for(poly: vtkPolyData) -> vtkActor:
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(poly)
    mapper.ScalarVisibilityOff()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.PickableOff()  # picks go through to the tissue
    return actor


def _sphere_polydata(
    centre_mm: np.ndarray, radius_mm: float, resolution: tuple[int, int] | None = None
) -> vtkPolyData:
    """A sphere's surface; ``resolution`` (theta, phi), None: VTK's coarse default."""
    sphere = vtkSphereSource()
    sphere.SetCenter(*map(float, centre_mm))
    sphere.SetRadius(radius_mm)
    if resolution is not None:
        sphere.SetThetaResolution(resolution[0])
        sphere.SetPhiResolution(resolution[1])
    sphere.Update()
    return sphere.GetOutput()


def _tool_polydata(pose: ToolPose) -> vtkPolyData:
    """The instrument's surface in LPS mm."""
    centre = pose.centre_m / MM
    radius = pose.radius_m / MM
    if pose.kind == "plane":
        plane = vtkPlaneSource()
        half = 0.5 * PLANE_DRAWN_MM
        plane.SetOrigin(-half, -half, 0.0)
        plane.SetPoint1(half, -half, 0.0)
        plane.SetPoint2(-half, half, 0.0)
        plane.SetCenter(*map(float, centre))
        plane.SetNormal(*map(float, pose.direction))
        plane.Update()
        return plane.GetOutput()
    ends = (
        [centre]
        if pose.kind == "sphere"
        else [centre + s * 0.5 * pose.length_m / MM * pose.direction for s in (-1, 1)]
    )
    append = vtkAppendPolyData()
    for end in ends:
        append.AddInputData(_sphere_polydata(end, radius, resolution=(24, 16)))
    if len(ends) == 2:
        line = vtkLineSource()
        line.SetPoint1(*map(float, ends[0]))
        line.SetPoint2(*map(float, ends[1]))
        tube = vtkTubeFilter()
        tube.SetInputConnection(line.GetOutputPort())
        tube.SetRadius(radius)
        tube.SetNumberOfSides(24)
        tube.Update()
        append.AddInputData(tube.GetOutput())
    append.Update()
    return append.GetOutput()
