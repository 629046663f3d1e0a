"""The scene's surface meshes as VTK actors (a "displayable manager"), kept in step with
the scene through its observer events, so the 3D view follows commands, undo and peers.

Colour and visibility come from the mesh's segment (``segmentation_id`` +
``segment_label``) while that segment exists, else from the mesh itself. Opacity and a
view-only "hide" are display settings of this view, not case data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL implementations)
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPlane, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkPolyDataNormals
from vtkmodules.vtkRenderingCore import (
    vtkAbstractMapper,
    vtkActor,
    vtkLightKit,
    vtkPolyDataMapper,
    vtkRenderer,
)

from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.scene import Scene, SceneEvent
from surgtwin.core.segmentation.colors import Color
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.render.errors import RenderError

logger = logging.getLogger(__name__)

BACKGROUND: Color = (0.08, 0.09, 0.11)
# name -> (direction from the focal point to the camera, view-up), in LPS.
CAMERA_PRESETS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),  # facing the patient: their right on screen left
    "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),  # from the patient's left: anterior on screen left
    "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),  # from the head, anterior up
    "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),  # from the feet, anterior up (as axial CT)
}


def mesh_to_polydata(mesh: SurfaceMesh) -> vtkPolyData:
    """A VTK copy of the mesh (LPS mm) with smooth point normals for shading."""
    poly = vtkPolyData()
    points = vtkPoints()
    points.SetData(numpy_to_vtk(mesh.vertices, deep=True))
    poly.SetPoints(points)
    cells = vtkCellArray()
    offsets = np.arange(0, 3 * len(mesh.faces) + 1, 3, dtype=np.int64)
    cells.SetData(
        numpy_to_vtkIdTypeArray(offsets, deep=True),
        numpy_to_vtkIdTypeArray(mesh.faces.ravel().astype(np.int64), deep=True),
    )
    poly.SetPolys(cells)
    normals = vtkPolyDataNormals()
    normals.SetInputData(poly)
    normals.SplittingOff()
    normals.ConsistencyOff()  # faces are already outward (SurfaceMesh contract)
    normals.AutoOrientNormalsOff()
    normals.ComputePointNormalsOn()
    normals.Update()
    out = vtkPolyData()
    out.DeepCopy(normals.GetOutput())
    return out


class SceneRenderer:
    """Keeps one actor per scene mesh in ``renderer`` (given, e.g. a Qt widget's, or new).

    ``on_change`` is called after the actors changed (a Qt view passes its ``update``).
    Call :meth:`close` to stop observing the scene and remove the actors.
    """

    def __init__(
        self,
        scene: Scene,
        renderer: vtkRenderer | None = None,
        on_change: Callable[[], None] | None = None,
        background: Color = BACKGROUND,
        light_kit: bool = True,
    ) -> None:
        self.scene = scene
        self.renderer = renderer if renderer is not None else vtkRenderer()
        self.renderer.SetBackground(*background)
        if light_kit:
            kit = vtkLightKit()
            kit.AddLightsToRenderer(self.renderer)
        self.on_change = on_change
        self._actors: dict[str, vtkActor] = {}
        self._opacity: dict[object, float] = {}  # (segmentation_id, label) or mesh id -> 0..1
        self._view_hidden: set[str] = set()
        self._clipping_plane: vtkPlane | None = None
        for object_id in scene.ids("mesh"):
            self._add(object_id)
        self._unsubscribe: Callable[[], None] | None = scene.subscribe(self._on_event)

    # --- queries --------------------------------------------------------------
    def actor(self, mesh_id: str) -> vtkActor:
        try:
            return self._actors[mesh_id]
        except KeyError:
            raise RenderError(f"no mesh {mesh_id!r} is shown in this view") from None

    def mesh_ids(self) -> list[str]:
        return list(self._actors)

    def visible_mesh_ids(self) -> list[str]:
        return [oid for oid, actor in self._actors.items() if actor.GetVisibility()]

    def mesh_id_of(self, actor: object) -> str | None:
        """The scene id of the mesh drawn by ``actor`` (None for any other prop)."""
        return next((oid for oid, shown in self._actors.items() if shown is actor), None)

    @property
    def clipping_plane(self) -> vtkPlane | None:
        return self._clipping_plane

    def _segment_key(self, mesh: SurfaceMesh) -> tuple[str, int] | None:
        seg_id, label = mesh.segmentation_id, mesh.segment_label
        if seg_id is None or label is None or seg_id not in self.scene:
            return None
        seg = self.scene.get(seg_id)
        if not isinstance(seg, Segmentation) or label not in seg.segments:
            return None
        return (seg_id, int(label))

    def display_of(self, mesh_id: str) -> tuple[Color, bool, float]:
        """(colour, visible, opacity) the mesh is drawn with."""
        mesh: SurfaceMesh = self.scene.get(mesh_id)
        key = self._segment_key(mesh)
        color, visible, case_opacity = mesh.color, True, 1.0
        if key is not None:
            segment = self.scene.get(key[0]).segments[key[1]]
            color, visible, case_opacity = segment.color, segment.visible, segment.opacity
        # A view setting (e.g. see-through skin) wins over the segment's own opacity.
        opacity = self._opacity.get(key, self._opacity.get(mesh_id, case_opacity))
        visible = visible and mesh_id not in self._view_hidden and opacity > 0.0
        return (color, visible, opacity)

    # --- display settings of this view ------------------------------------------
    def set_segment_opacity(self, segmentation_id: str, label: int, opacity: float) -> None:
        self._opacity[(segmentation_id, int(label))] = _checked_opacity(opacity)
        self._refresh_all()

    def set_mesh_opacity(self, mesh_id: str, opacity: float) -> None:
        self._opacity[mesh_id] = _checked_opacity(opacity)
        self._refresh_all()

    def set_mesh_hidden(self, mesh_id: str, hidden: bool = True) -> None:
        """Hide a mesh in this view only (segment visibility is case data: use a command)."""
        (self._view_hidden.add if hidden else self._view_hidden.discard)(mesh_id)
        self._refresh_all()

    def set_clipping_plane(self, plane: vtkPlane | None) -> None:
        """Clip every mesh (now and later ones) by ``plane``: the side its normal points to stays."""
        self._clipping_plane = plane
        for actor in self._actors.values():
            set_mapper_clipping(actor.GetMapper(), plane)

    def set_camera(self, preset: str = "anterior", zoom: float = 1.0) -> None:
        """Look at the visible meshes from a named side (see :data:`CAMERA_PRESETS`)."""
        try:
            direction, up = CAMERA_PRESETS[preset]
        except KeyError:
            known = ", ".join(CAMERA_PRESETS)
            raise RenderError(f"unknown camera {preset!r} (cameras: {known})") from None
        camera = self.renderer.GetActiveCamera()
        bounds = self.renderer.ComputeVisiblePropBounds()
        if bounds[0] > bounds[1]:  # nothing visible
            bounds = (-1.0, 1.0, -1.0, 1.0, -1.0, 1.0)
        centre = np.array(
            [(bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2, (bounds[4] + bounds[5]) / 2]
        )
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(centre + np.array(direction) * 1000.0))
        camera.SetViewUp(*up)
        self.renderer.ResetCamera(bounds)
        camera.Zoom(zoom)
        self.renderer.ResetCameraClippingRange()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for object_id in list(self._actors):
            self._remove(object_id)

    # --- scene events ---------------------------------------------------------------
    def _on_event(self, event: SceneEvent) -> None:
        oid = event.object_id
        if oid is None:
            return
        if event.kind == "added" and isinstance(self.scene.get(oid), SurfaceMesh):
            self._add(oid)
        elif event.kind == "removed" and oid in self._actors:
            self._remove(oid)
        elif event.kind == "changed" and oid in self._actors:
            self._actors[oid].GetMapper().SetInputData(mesh_to_polydata(self.scene.get(oid)))
            self._refresh(oid)
        else:  # a segmentation came, went or changed: its meshes' colour and visibility
            self._refresh_all()
        if self.on_change is not None:
            self.on_change()

    def _add(self, mesh_id: str) -> None:
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(mesh_to_polydata(self.scene.get(mesh_id)))
        mapper.ScalarVisibilityOff()
        set_mapper_clipping(mapper, self._clipping_plane)
        actor = vtkActor()
        actor.SetMapper(mapper)
        prop = actor.GetProperty()
        prop.SetInterpolationToGouraud()
        prop.SetAmbient(0.15)
        prop.SetDiffuse(0.85)
        prop.SetSpecular(0.15)
        prop.SetSpecularPower(20.0)
        self._actors[mesh_id] = actor
        self.renderer.AddActor(actor)
        self._refresh(mesh_id)

    def _remove(self, mesh_id: str) -> None:
        self.renderer.RemoveActor(self._actors.pop(mesh_id))

    def _refresh(self, mesh_id: str) -> None:
        color, visible, opacity = self.display_of(mesh_id)
        actor = self._actors[mesh_id]
        actor.GetProperty().SetColor(*color)
        actor.GetProperty().SetOpacity(opacity)
        actor.SetVisibility(visible)

    def _refresh_all(self) -> None:
        for mesh_id in self._actors:
            self._refresh(mesh_id)


def set_mapper_clipping(mapper: vtkAbstractMapper, plane: vtkPlane | None) -> None:
    """Make ``plane`` the mapper's only clipping plane (None: no clipping); surfaces and volumes."""
    mapper.RemoveAllClippingPlanes()
    if plane is not None:
        mapper.AddClippingPlane(plane)


def _checked_opacity(opacity: float) -> float:
    value = float(opacity)
    if not 0.0 <= value <= 1.0:
        raise RenderError(f"opacity must be in 0..1, got {opacity!r}")
    return value
