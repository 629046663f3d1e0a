"""The mouse in the 3D view for the live deformation preview (:class:`TissueDragger`): grasp and
drag the tissue, press with a rigid sphere or capsule (an instrument shaft lying along the
surface), retract with a plane, pin the tissue at picked points.

The rigid instruments are pressed along the picked surface's normal by a chosen depth and follow
the mouse in the view plane; the session's solver moves them there gradually.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QMouseEvent
from vtkmodules.vtkRenderingCore import vtkCellPicker

from surgtwin.ui.deform_tools import TOOLS

if TYPE_CHECKING:  # deform_session re-exports this module's dragger
    from surgtwin.ui.deform_session import DeformSession

PICK_TOLERANCE = 0.0005


class TissueDragger(QObject):
    """Event filter on the 3D view's GL widget: with tools on, a left press on the simulated
    segment uses the chosen ``tool`` (see :data:`TOOLS`) instead of rotating the camera; a press
    anywhere else rotates as usual.

    - grasp: the point is grasped and follows the mouse in the camera's view plane (at the
      grasp's depth);
    - sphere / capsule / plane: the instrument is pressed ``press_depth_mm`` into the surface
      along its normal (the capsule's shaft lies along the surface, across the screen; the plane
      is the surface's tangent plane pushed in), follows the mouse in the view plane, and is
      lifted on release unless ``keep_tool``;
    - pin: a click holds the tissue there (nodes within ``pin_radius_mm``)."""

    def __init__(self, view: Any, session: DeformSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.session = session
        self.enabled = False
        self.tool = "grasp"
        self.tool_radius_mm = 8.0
        self.press_depth_mm = 5.0
        self.capsule_length_mm = 40.0
        self.pin_radius_mm = 4.0
        self.keep_tool = False
        self._depth: float | None = None  # display z of the picked point while dragging
        self._offset = np.zeros(3)
        self._tool_origin = np.zeros(3)  # the pressed instrument's centre at the press (mm)
        self._press_world = np.zeros(3)  # the mouse at the press, in the view plane (mm)
        self._swallow_release = False  # a pin click: its release is ours too
        self.grasp_point: np.ndarray | None = None
        self.pick_normal: np.ndarray | None = None
        if view.interactor is not None:
            view.interactor.interactor.installEventFilter(self)

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = bool(enabled)
        if not enabled and self._depth is not None:
            self.release()

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {', '.join(TOOLS)}, not {tool!r}")
        if self._depth is not None:
            self.release()
        self.tool = tool
        self.session.lift_tool()  # a kept instrument goes when another tool is chosen

    @property
    def dragging(self) -> bool:
        return self._depth is not None

    def detach(self) -> None:
        if self.view.interactor is not None:
            self.view.interactor.interactor.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if not self.enabled or not isinstance(event, QMouseEvent):
            return False
        kind = event.type()
        pos = event.position()
        try:
            if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
                return self.press(pos.x(), pos.y())
            if kind == QEvent.Type.MouseMove and self._depth is not None:
                self.move(pos.x(), pos.y())
                return True
            if kind == QEvent.Type.MouseButtonRelease and (self._depth is not None or self._swallow_release):
                self.release()
                return True
        except Exception as exc:  # noqa: BLE001 - Qt would swallow it: tell the user instead
            self._depth = None
            self._swallow_release = False
            self.session.context.report_error("Simulation tool", exc)
        return False

    def _display(self, x: float, y: float) -> tuple[float, float]:
        widget = self.view.interactor.interactor
        ratio = widget.devicePixelRatioF()
        return float(x) * ratio, float(widget.height() - y - 1) * ratio

    def _to_world(self, x: float, y: float, depth: float) -> np.ndarray:
        renderer = self.view.scene_renderer.renderer
        dx, dy = self._display(x, y)
        renderer.SetDisplayPoint(dx, dy, depth)
        renderer.DisplayToWorld()
        world = np.array(renderer.GetWorldPoint(), dtype=np.float64)
        return world[:3] / world[3]

    def pick(self, x: float, y: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The simulated surface under widget pixel (x, y down): the point (LPS mm) and the unit
        surface normal facing the camera; None on a miss."""
        actor = self.session.actor
        if actor is None or not self.session.running or self.view.scene_renderer is None:
            return None
        renderer = self.view.scene_renderer.renderer
        picker = vtkCellPicker()
        picker.SetTolerance(PICK_TOLERANCE)
        picker.PickFromListOn()
        picker.AddPickList(actor)
        if not picker.Pick(*self._display(x, y), 0.0, renderer) or picker.GetActor() is not actor:
            return None
        point = np.array(picker.GetPickPosition(), dtype=np.float64)
        normal = np.array(picker.GetPickNormal(), dtype=np.float64)
        towards_eye = -np.array(renderer.GetActiveCamera().GetDirectionOfProjection(), dtype=np.float64)
        length = float(np.linalg.norm(normal))
        normal = towards_eye if length == 0.0 else normal / length
        if normal @ towards_eye < 0.0:  # the visible side faces the camera
            normal = -normal
        return point, normal

    def press(self, x: float, y: float) -> bool:
        """Widget pixel (y down): use the tool on the simulated surface there; False on a miss."""
        picked = self.pick(x, y)
        if picked is None:
            return False
        point, normal = picked
        self.pick_normal = normal
        if self.tool == "pin":
            self.session.pin(point, self.pin_radius_mm)
            self._swallow_release = True
            return True
        renderer = self.view.scene_renderer.renderer
        renderer.SetWorldPoint(*point, 1.0)
        renderer.WorldToDisplay()
        self._depth = float(renderer.GetDisplayPoint()[2])
        self._press_world = self._to_world(x, y, self._depth)
        self._offset = point - self._press_world
        self.grasp_point = point
        if self.tool == "grasp":
            self.session.grasp(point)
        else:
            self._press_instrument(point, normal)
        return True

    def _press_instrument(self, point: np.ndarray, normal: np.ndarray) -> None:
        radius, depth = max(self.tool_radius_mm, self.session.narrowest_tool_mm), self.press_depth_mm
        if self.tool == "plane":  # the tangent plane, pushed in; it keeps the tissue beyond it
            centre, direction, entry = point - depth * normal, -normal, point
        else:
            centre = point + (radius - depth) * normal  # the tip `depth` below the surface
            entry = point + radius * normal  # touching
            direction = self._across_screen(normal)
        self._tool_origin = centre
        self.session.press_tool(self.tool, centre, direction, radius, self.capsule_length_mm, entry)

    def _across_screen(self, normal: np.ndarray) -> np.ndarray:
        """The screen's horizontal, laid into the surface's tangent plane (the shaft's direction)."""
        camera = self.view.scene_renderer.renderer.GetActiveCamera()
        forward = np.array(camera.GetDirectionOfProjection(), dtype=np.float64)
        up = np.array(camera.GetViewUp(), dtype=np.float64)
        for guess in (np.cross(forward, up), up, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])):
            along = guess - (guess @ normal) * normal
            length = float(np.linalg.norm(along))
            if length > 1e-3:
                return along / length
        return np.array([0.0, 0.0, 1.0])

    def move(self, x: float, y: float) -> None:
        if self._depth is None:
            return
        world = self._to_world(x, y, self._depth)
        if self.tool == "grasp":
            self.session.drag(world + self._offset)
        else:
            self.session.move_tool(self._tool_origin + world - self._press_world)

    def release(self) -> None:
        if self._swallow_release:
            self._swallow_release = False
            return
        self._depth = None
        if self.tool == "grasp":
            self.session.release()
        elif not self.keep_tool:
            self.session.lift_tool()
