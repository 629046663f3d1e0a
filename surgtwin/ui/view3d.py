"""The 3D view: a pyvistaqt ``QtInteractor`` whose renderer a ``SceneRenderer`` fills, plus
volume rendering of the case's volume, one clipping plane, picking and 3D scissors.

When an interactive OpenGL widget cannot be made (``SURGTWIN_3D=snapshot``, or pyvistaqt
fails to start), the view shows an off-screen snapshot of the same renderer as an image,
refreshed on every scene change (volume rendering and clipping included; picking and
scissors need the interactive widget).

Mouse: a click (press and release without moving) in pick mode, or a shift-click in any
mode, picks the surface under it and emits ``picked``; drags still rotate (shift: pan). In
scissors mode the left button draws a lasso instead of rotating; its release cuts the
selected segment as one command.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent, QPixmap
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget
from vtkmodules.vtkCommonDataModel import vtkPlane
from vtkmodules.vtkRenderingCore import vtkCellPicker

from surgtwin.core.commands import Command
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import RenderError, SceneRenderer, capture_window, snapshot_view, write_png
from surgtwin.render.volume_rendering import VolumeRendering
from surgtwin.ui.scissors3d import Lasso, display_to_focal_plane, scissors_command, view_direction
from surgtwin.ui.view_tools import ToolContext

logger = logging.getLogger(__name__)

SNAPSHOT_SIZE = (480, 360)
CLICK_SLOP_PX = 4  # a press and release closer than this is a click, not a drag
PICK_TOLERANCE = 0.0005  # fraction of the window diagonal
# axis -> (LPS unit normal of the kept side by default, coordinate index)
CLIP_AXES: dict[str, tuple[tuple[float, float, float], int]] = {
    "axial": ((0.0, 0.0, -1.0), 2),  # keeps the inferior part
    "coronal": ((0.0, 1.0, 0.0), 1),  # keeps the posterior part: the anterior camera sees the cut
    "sagittal": ((1.0, 0.0, 0.0), 0),  # keeps the patient's left
}


class View3D(QWidget):
    picked = Signal(object)  # dict: mesh_id, segment, segmentation_id, label, lps

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view_3d")
        # One render per turn of the event loop: a command group adding ten meshes must not
        # draw ten frames (a frame of a big twin takes 100+ ms with software OpenGL).
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._render_now)
        self.scene: Scene | None = None
        self.scene_renderer: SceneRenderer | None = None
        self.context: ToolContext | None = None
        self.interactor = None
        self.volume_rendering: VolumeRendering | None = None
        self._volume_preset: str | None = None
        self._rendered_volume: tuple[str, Volume] | None = None
        self._clip_plane: vtkPlane | None = None
        self._clip_axis: tuple[str, float, bool] | None = None
        self.pick_mode = False
        self.scissors_mode = False
        self.scissors_erase_inside = True
        self._press: tuple[int, int] | None = None
        self._lasso: Lasso | None = None
        self._snapshot_label: QLabel | None = None
        self._unsubscribe = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(1, 1, 1, 1)
        if os.environ.get("SURGTWIN_3D", "").lower() != "snapshot":
            try:
                from pyvistaqt import QtInteractor

                self.interactor = QtInteractor(self)
                self._layout.addWidget(self.interactor.interactor)
            except Exception as exc:  # noqa: BLE001 - any GL start failure means: use snapshots
                logger.warning("interactive 3D view unavailable (%s); using snapshots", exc)
                self.interactor = None
        if self.interactor is None:
            self._snapshot_label = QLabel("3D view")
            self._snapshot_label.setMinimumSize(120, 120)
            self._snapshot_label.setStyleSheet("background: black; color: #aaa;")
            self._layout.addWidget(self._snapshot_label)
        else:
            self.interactor.interactor.installEventFilter(self)

    @property
    def interactive(self) -> bool:
        return self.interactor is not None

    # --- the scene shown ---------------------------------------------------------
    def set_context(self, context: ToolContext) -> None:
        """The window: selected segment, command execution and error reports (scissors)."""
        self.context = context

    def set_scene(self, scene: Scene) -> None:
        self._close_scene()
        self.scene = scene
        self._had_content = False
        renderer = self.interactor.renderer if self.interactor is not None else None
        self.scene_renderer = SceneRenderer(scene, renderer, on_change=self._changed)
        self.scene_renderer.set_clipping_plane(self._clip_plane)
        self._changed(reset_camera=True)

    def _close_scene(self) -> None:
        self._drop_volume_rendering()
        if self.scene_renderer is not None:
            self.scene_renderer.close()
            self.scene_renderer = None

    def _changed(self, reset_camera: bool = False) -> None:
        if self._in_change:
            return
        self._in_change = True
        try:
            self._sync_volume_rendering()
            if self._clip_axis is not None:
                self._apply_clip_axis()
            self._update_camera(reset_camera)
        finally:
            self._in_change = False
        self._render()

    _in_change = False

    def _update_camera(self, reset_camera: bool) -> None:
        has_content = bool(self.scene_renderer and self.scene_renderer.mesh_ids()) or (
            self.volume_rendering is not None
        )
        if self.scene_renderer is not None and has_content and (reset_camera or not self._had_content):
            self.scene_renderer.set_camera("anterior")
        self._had_content = has_content

    _had_content = False

    def _render(self) -> None:
        self._render_timer.start()

    def _render_now(self) -> None:
        if not self.isVisible():  # a hidden view (e.g. a slice-only layout) draws when shown
            self._stale = True
            return
        self._stale = False
        if self.interactor is not None:
            self.interactor.render()
        else:
            self._snapshot()

    _stale = False

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self._render()

    def _snapshot(self) -> None:
        if self._snapshot_label is None or self.scene_renderer is None:
            return
        if not self.scene_renderer.mesh_ids() and self.volume_rendering is None:
            self._snapshot_label.setText("3D view: no meshes yet (run One-click twin)")
            return
        from surgtwin.ui.slice_view import rgb_to_qimage

        rgb = snapshot_view(self.scene_renderer, SNAPSHOT_SIZE, camera="anterior")
        self._snapshot_label.setPixmap(QPixmap.fromImage(rgb_to_qimage(rgb)))

    # --- volume rendering ------------------------------------------------------------
    def set_volume_rendering(self, preset: str | None) -> bool:
        """Render the scene's current volume with ``preset`` (see ``VOLUME_PRESETS``); None: off.

        The choice follows the case: a volume opened later is rendered with it. True when a
        volume is rendered now. Raises RenderError for an unknown preset.
        """
        if preset is not None:
            from surgtwin.render.volume_rendering import VOLUME_PRESETS

            if preset not in VOLUME_PRESETS:
                raise RenderError(
                    f"unknown volume rendering preset {preset!r} (presets: {', '.join(VOLUME_PRESETS)})"
                )
        self._volume_preset = preset
        self._changed()
        return self.volume_rendering is not None

    @property
    def volume_preset(self) -> str | None:
        return self._volume_preset

    def _current_volume(self) -> tuple[str, Volume] | None:
        if self.context is not None and self.context.scene is self.scene:
            return self.context.current_volume()
        return next(iter(self.scene.volumes.items()), None) if self.scene is not None else None

    def _sync_volume_rendering(self) -> None:
        wanted = self._current_volume() if self._volume_preset is not None else None
        shown = self._rendered_volume
        if wanted is None or shown is None or wanted[0] != shown[0] or wanted[1] is not shown[1]:
            self._drop_volume_rendering()
        if wanted is None or self.scene_renderer is None:
            return
        if self.volume_rendering is None:
            self.volume_rendering = VolumeRendering(
                wanted[1], self.scene_renderer.renderer, self._volume_preset
            )
            self.volume_rendering.set_clipping_plane(self._clip_plane)
            self._rendered_volume = wanted
        elif self.volume_rendering.preset != self._volume_preset:
            self.volume_rendering.set_preset(self._volume_preset)

    def _drop_volume_rendering(self) -> None:
        if self.volume_rendering is not None:
            self.volume_rendering.close()
        self.volume_rendering = None
        self._rendered_volume = None

    # --- clipping -------------------------------------------------------------------
    def set_clipping(
        self,
        enabled: bool,
        normal: Sequence[float] = (0.0, 0.0, 1.0),
        position_mm: float | Sequence[float] | None = None,
    ) -> None:
        """Clip meshes and the volume rendering by one plane; the side ``normal`` points to stays.

        ``position_mm``: a point on the plane (x, y, z LPS), or the plane's coordinate along
        the unit normal (``normal · x = position``), or None for the centre of the content.
        """
        self._clip_axis = None
        self._set_plane(enabled, normal, position_mm)
        self._render()

    def set_clipping_axis(self, axis: str, fraction: float, flip: bool = False) -> None:
        """Clip across ``axis`` ('axial', 'coronal', 'sagittal') at ``fraction`` (0..1) of the
        content's extent along it, for a slider. Kept by default: inferior / posterior / left
        part (see ``CLIP_AXES``); ``flip`` keeps the other one."""
        if axis not in CLIP_AXES:
            raise RenderError(f"unknown clipping axis {axis!r} (axes: {', '.join(CLIP_AXES)})")
        self._clip_axis = (axis, min(max(float(fraction), 0.0), 1.0), bool(flip))
        self._apply_clip_axis()
        self._render()

    @property
    def clipping_plane(self) -> vtkPlane | None:
        return self._clip_plane

    def _apply_clip_axis(self) -> None:
        assert self._clip_axis is not None
        axis, fraction, flip = self._clip_axis
        normal, index = CLIP_AXES[axis]
        low, high = self._content_bounds()
        point = (low + high) / 2.0
        point[index] = low[index] + fraction * (high[index] - low[index])
        self._set_plane(True, -np.asarray(normal) if flip else normal, point)

    def _set_plane(
        self, enabled: bool, normal: Sequence[float], position_mm: float | Sequence[float] | None
    ) -> None:
        plane = None
        if enabled:
            unit = np.asarray(normal, dtype=np.float64)
            if unit.shape != (3,) or not np.all(np.isfinite(unit)) or np.linalg.norm(unit) < 1e-9:
                raise RenderError(f"the clipping normal must be a non-zero 3D vector, got {normal!r}")
            unit = unit / np.linalg.norm(unit)
            if position_mm is None:
                low, high = self._content_bounds()
                origin = (low + high) / 2.0
            elif np.ndim(position_mm) == 0:
                origin = unit * float(position_mm)
            else:
                origin = np.asarray(position_mm, dtype=np.float64).reshape(3)
            plane = self._clip_plane or vtkPlane()
            plane.SetNormal(*unit)
            plane.SetOrigin(*origin)
            plane.Modified()
        self._clip_plane = plane
        if self.scene_renderer is not None:
            self.scene_renderer.set_clipping_plane(plane)
        if self.volume_rendering is not None:
            self.volume_rendering.set_clipping_plane(plane)

    def _content_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS box of the case's meshes and its rendered volume (clipping ignores view hiding)."""
        corners: list[np.ndarray] = []
        if self.scene is not None:
            for mesh in self.scene.meshes.values():
                if isinstance(mesh, SurfaceMesh) and len(mesh.vertices):
                    corners += [mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)]
        found = self._current_volume()
        if found is not None:
            shape = np.array(found[1].shape_ijk) - 1
            box = np.array([[i, j, k] for i in (0, shape[0]) for j in (0, shape[1]) for k in (0, shape[2])])
            lps = found[1].index_to_lps(box)
            corners += [lps.min(axis=0), lps.max(axis=0)]
        if not corners:
            return np.full(3, -1.0), np.full(3, 1.0)
        stacked = np.vstack(corners)
        return stacked.min(axis=0), stacked.max(axis=0)

    # --- picking -------------------------------------------------------------------
    def set_pick_mode(self, enabled: bool) -> None:
        """In pick mode a plain click picks (shift-click always does)."""
        self.pick_mode = bool(enabled)

    def pick_at(self, x: float, y: float) -> dict[str, Any] | None:
        """Pick the surface at widget pixel (x right, y down); emits ``picked`` on a hit."""
        if self.interactor is None or self.scene_renderer is None or self.scene is None:
            return None
        picker = vtkCellPicker()
        picker.SetTolerance(PICK_TOLERANCE)
        picker.PickFromListOn()
        for mesh_id in self.scene_renderer.visible_mesh_ids():
            picker.AddPickList(self.scene_renderer.actor(mesh_id))
        dx, dy = self._to_display(x, y)
        if not picker.Pick(dx, dy, 0.0, self.scene_renderer.renderer):
            return None
        mesh_id = self.scene_renderer.mesh_id_of(picker.GetActor())
        if mesh_id is None:
            return None
        result = self._describe_pick(mesh_id, picker.GetPickPosition())
        self.picked.emit(result)
        return result

    def _describe_pick(self, mesh_id: str, position: Sequence[float]) -> dict[str, Any]:
        mesh: SurfaceMesh = self.scene.get(mesh_id)
        seg_id, label, name = mesh.segmentation_id, mesh.segment_label, None
        if seg_id is not None and seg_id in self.scene:
            seg = self.scene.get(seg_id)
            if isinstance(seg, Segmentation) and label in seg.segments:
                name = seg.segments[label].name
        return {
            "mesh_id": mesh_id,
            "segment": name,
            "segmentation_id": seg_id,
            "label": None if label is None else int(label),
            "lps": [float(v) for v in position],
        }

    def _to_display(self, x: float, y: float) -> tuple[float, float]:
        """Widget pixels (y down) -> VTK display pixels (y up), as the interactor maps events."""
        widget = self.interactor.interactor
        ratio = widget.devicePixelRatioF()
        return (float(x) * ratio, float(widget.height() - y - 1) * ratio)

    # --- scissors ----------------------------------------------------------------------
    def set_scissors_mode(self, enabled: bool, erase_inside: bool = True) -> None:
        """Left-drag draws a lasso that cuts the selected segment: erases it inside the lasso
        (``erase_inside``) or outside it, through the whole depth along the view direction."""
        self.scissors_mode = bool(enabled)
        self.scissors_erase_inside = bool(erase_inside)
        if not enabled and self._lasso is not None and self._lasso.active:
            self._lasso.finish()
            self._render()

    def scissors_polygon(self, display_points: Sequence[Sequence[float]]) -> Command:
        """The one command that cuts the selected segment with a lasso of widget pixels."""
        if self.context is None or self.scene_renderer is None or self.interactor is None:
            raise RenderError("3D scissors need the interactive 3D view and a window to edit in")
        renderer = self.scene_renderer.renderer
        vtk_points = [self._to_display(x, y) for x, y in display_points]
        polygon = display_to_focal_plane(renderer, vtk_points)
        return scissors_command(self.context, polygon, view_direction(renderer), self.scissors_erase_inside)

    def _finish_lasso(self) -> None:
        assert self._lasso is not None
        points = self._lasso.finish()
        self._render()
        if len(points) < 3 or self.context is None:
            return
        widget_points = [self._from_display(x, y) for x, y in points]
        try:
            command = self.scissors_polygon(widget_points)
        except Exception as exc:  # noqa: BLE001 - shown to the user; nothing changed
            self._report("3D scissors", exc)
            return
        if self.context.execute(command):
            self.context.set_status(f"3D scissors: {command.describe()}")

    def _from_display(self, x: float, y: float) -> tuple[float, float]:
        widget = self.interactor.interactor
        ratio = widget.devicePixelRatioF()
        return (x / ratio, widget.height() - 1 - y / ratio)

    # --- mouse ---------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if self.interactor is None or kind not in _MOUSE_EVENTS or not isinstance(event, QMouseEvent):
            return False
        try:
            return self._mouse(kind, event)
        except Exception as exc:  # noqa: BLE001 - Qt would swallow it: tell the user instead
            self._report("3D view", exc)
            return False

    def _report(self, action: str, exc: BaseException) -> None:
        if self.context is not None:
            self.context.report_error(action, exc)
        else:
            logger.error("%s failed", action, exc_info=exc)

    def _mouse(self, kind: QEvent.Type, event: QMouseEvent) -> bool:
        pos = event.position()
        x, y = pos.x(), pos.y()
        if self.scissors_mode:
            return self._scissors_event(kind, event, x, y)
        left = event.button() == Qt.MouseButton.LeftButton
        if kind == QEvent.Type.MouseButtonPress and left:
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self._press = (round(x), round(y)) if (self.pick_mode or shift) else None
        elif kind == QEvent.Type.MouseButtonRelease and left and self._press is not None:
            press, self._press = self._press, None
            if abs(x - press[0]) + abs(y - press[1]) <= CLICK_SLOP_PX:
                self.pick_at(x, y)
        return False  # the interactor still rotates / pans

    def _scissors_event(self, kind: QEvent.Type, event: QMouseEvent, x: float, y: float) -> bool:
        if self._lasso is None:
            self._lasso = Lasso(self.scene_renderer.renderer) if self.scene_renderer else None
        if self._lasso is None:
            return False
        dx, dy = self._to_display(x, y)
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._lasso.start(dx, dy)
        elif kind == QEvent.Type.MouseMove and self._lasso.active:
            if self._lasso.add(dx, dy):
                self._render()
        elif kind == QEvent.Type.MouseButtonRelease and self._lasso.active:
            self._lasso.add(dx, dy)
            self._finish_lasso()
        else:
            return False
        return True  # the lasso owns the left button: no rotation while cutting

    # --- pictures ----------------------------------------------------------------------
    def image(self) -> np.ndarray | None:
        """What the view shows now, as (h, w, 3) uint8 (for screenshots and tests)."""
        if self.interactor is not None:
            self.interactor.render()
            return capture_window(self.interactor.ren_win)
        if self.scene_renderer is not None and (self.scene_renderer.mesh_ids() or self.volume_rendering):
            return snapshot_view(self.scene_renderer, SNAPSHOT_SIZE, camera="anterior")
        return None

    def save_screenshot(self, path: str | Path) -> Path:
        """Write what the view shows as a PNG (raises RenderError when it shows nothing)."""
        rgb = self.image()
        if rgb is None:
            raise RenderError("the 3D view shows nothing yet: open a case and build its meshes first")
        return write_png(rgb, path)

    def close_view(self) -> None:
        self._close_scene()
        if self.interactor is not None:
            self.interactor.interactor.removeEventFilter(self)
            self.interactor.close()
            self.interactor = None


_MOUSE_EVENTS = (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseMove)
