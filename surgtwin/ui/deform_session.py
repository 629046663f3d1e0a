"""The live tissue-deformation preview in the 3D view: build a body off the GUI thread, step it
on a solver thread, show the deformed surface in place of the segment's mesh.

The preview is not a case edit: the scene's mesh and the history are never touched. While a
session runs, the segment's actor draws a private copy of its polydata (points moved by the
simulation, coloured by displacement or stress); :meth:`DeformSession.reset` puts the actor's
own polydata back, so the view shows the case exactly as before.

The pieces: :mod:`~surgtwin.ui.deform_solver` steps the body on its own thread and publishes
frames (the GUI applies only the newest one, so frames never queue up);
:mod:`~surgtwin.ui.deform_tools` the tools, the rigid instruments' poses and glyphs;
:mod:`~surgtwin.ui.tissue_dragger` the mouse in the 3D view; :mod:`~surgtwin.ui.deform_export`
writes the deformed surface. Their public names are importable from here too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkPolyData
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor

from surgtwin.core.deform.embedding import Embedding
from surgtwin.core.deform.errors import SimulationError
from surgtwin.core.deform.materials import Material, material_for_segment
from surgtwin.core.deform.mesh import MM
from surgtwin.core.deform.setup import (
    SegmentBody,
    build_segment_body,
    embed_surface,
    find_segment,
    surface_mesh_id,
)
from surgtwin.core.errors import CancelledError, SurgTwinError
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.ui.deform_export import EXPORT_SUFFIXES, write_deformed_surface
from surgtwin.ui.deform_solver import (
    FRAME_INTERVAL_S,
    IDLE_WAIT_S,
    MAX_TOOL_MOVE_CELLS,
    REST_SPEED_M_S,
    SOLVER_NUMBA_THREADS,
    STEP_S,
    SimFrame,
    SolverLoop,
    vertex_normals,
    warm_up,
)
from surgtwin.ui.deform_tools import (
    MIN_TOOL_RADIUS_CELLS,
    PLANE_DRAWN_MM,
    RIGID_TOOLS,
    TOOLS,
    ToolGlyphs,
    ToolPose,
    as_point,
    clear_rigid_tools,
    rigid_tool_force,
    unknown_rigid_tool,
)
from surgtwin.ui.gui_inbox import Inbox
from surgtwin.ui.tissue_dragger import PICK_TOLERANCE, TissueDragger

__all__ = [
    "COLOUR_MODES",
    "EXPORT_SUFFIXES",
    "FRAME_BUDGET",
    "FRAME_INTERVAL_S",
    "IDLE_WAIT_S",
    "MAX_TOOL_MOVE_CELLS",
    "MIN_TOOL_RADIUS_CELLS",
    "PICK_TOLERANCE",
    "PLANE_DRAWN_MM",
    "REST_SPEED_M_S",
    "RIGID_TOOLS",
    "SOLVER_NUMBA_THREADS",
    "STEP_S",
    "SUPINE_GRAVITY",
    "TOOLS",
    "DeformSession",
    "SessionConfig",
    "SimFrame",
    "TissueDragger",
    "ToolGlyphs",
    "ToolPose",
    "clear_rigid_tools",
    "rigid_tool_force",
    "vertex_normals",
    "warm_up",
]

SUPINE_GRAVITY = (0.0, 9.81, 0.0)  # m/s², LPS: a supine patient's posterior is down
COLOUR_MODES = {"displacement": "mm", "stress": "kPa"}
FRAME_BUDGET = 0.5  # the GUI spends at most about this share of the time drawing frames


@dataclass(frozen=True)
class SessionConfig:
    """What to simulate. ``material`` None: the preset the segment's name suggests."""

    segment: str
    material: Material | None = None
    anchors: tuple[str, ...] = ()
    max_elements: int = 1000
    gravity: bool = False


class DeformSession(QObject):
    """One live simulation of one segment, shown in ``view`` (a :class:`View3D`).

    ``context`` is the window's ToolContext (scene, run_task, report_error, set_status).
    Signals: ``started`` once the body is built and stepping can begin, ``frame_shown(SimFrame)``
    after each frame is drawn, ``ended(str)`` when the session stops (the reason).
    """

    started = Signal()
    frame_shown = Signal(object)
    ended = Signal(str)

    def __init__(self, view: Any, context: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.context = context
        self.config: SessionConfig | None = None
        self.built: SegmentBody | None = None
        self.mesh_id: str | None = None
        self.last_frame: SimFrame | None = None
        self.colour_by = "displacement"
        self.building = False
        self.draw_seconds = 0.0  # how long the last frame took to draw (GUI thread)
        self._loop: SolverLoop | None = None
        self._latest: SimFrame | None = None
        self._latest_lock = threading.Lock()
        self._generation = 0  # a build finished after a reset or a newer start is dropped
        self._actor: Any = None
        self._own_input: vtkPolyData | None = None
        self._preview: vtkPolyData | None = None
        self._scalar_bar: vtkScalarBarActor | None = None
        self._lut = vtkLookupTable()
        self._lut.SetHueRange(0.667, 0.0)  # blue (0) to red (max)
        self._lut.Build()
        self._range_max = 0.0
        self._tool: ToolPose | None = None  # the rigid tool the GUI last asked for
        self._presses = 0
        self.pin_points_mm: list[np.ndarray] = []  # where the user pinned, for drawing
        self._surface: SurfaceMesh | None = None  # rest vertices, faces, name and colour
        self.glyphs = ToolGlyphs()
        # the solver thread reaches the GUI only through this inbox (see gui_inbox)
        self._inbox = Inbox(frame_ready=self._show_latest, failed=self._on_solver_failed, note=self._on_note)
        self.destroyed.connect(self._inbox.close)
        self.notes: list[str] = []

    # --- state -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def actor(self) -> Any:
        return self._actor

    @property
    def steps(self) -> int:
        return self._loop.steps if self._loop is not None else 0

    # --- start and stop ----------------------------------------------------------------
    def start(self, config: SessionConfig) -> bool:
        """Build the body for ``config`` off the GUI thread, then start stepping.

        False (with the reason reported) when it cannot start: no such segment, no surface
        mesh shown for it, no material, an anchor not touching it, or the window busy."""
        self.reset()
        try:
            scene = self.context.scene
            target = find_segment(scene, config.segment)
            anchors = [find_segment(scene, name) for name in config.anchors if name != config.segment]
            mesh_id = surface_mesh_id(scene, target.segmentation_id, target.label)
            if mesh_id is None or self.view.scene_renderer is None:
                raise SurgTwinError(
                    f"segment {config.segment!r} has no surface mesh in the 3D view: build its mesh first "
                    "(One-click twin, or edit the segment)"
                )
            self.view.scene_renderer.actor(mesh_id)  # raises when the view does not show it
            tissue = config.material or material_for_segment(config.segment)
            if tissue is None:
                raise SurgTwinError(
                    f"no material preset matches segment {config.segment!r}: choose a material in the panel"
                )
            if not anchors:  # a free body only drifts away under a drag or gravity
                raise SurgTwinError(
                    f"nothing holds {config.segment!r}: tick an anchor segment that touches it (e.g. bone)"
                )
            surface = scene.get(mesh_id)
            rest_mm = np.array(surface.vertices, dtype=np.float64)
            faces = np.array(surface.faces, dtype=np.int64)
        except Exception as exc:  # noqa: BLE001 - told to the user; nothing started
            self.context.report_error("Simulation", exc)
            return False
        gravity = SUPINE_GRAVITY if config.gravity else (0.0, 0.0, 0.0)
        self._generation += 1
        generation = self._generation

        def work(progress: Any) -> tuple[SegmentBody, Embedding] | Exception:
            try:
                return build(progress)
            except CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported by done() on the GUI thread
                return exc

        def build(progress: Any) -> tuple[SegmentBody, Embedding]:
            built = build_segment_body(
                target,
                tissue,
                max_elements=config.max_elements,
                anchors=anchors,
                gravity=gravity,
                progress=progress,
            )
            embedding = embed_surface(built.mesh, rest_mm)
            warm_up(built)
            return built, embedding

        def done(result: tuple[SegmentBody, Embedding] | Exception) -> None:
            self.building = False
            if generation != self._generation or self.context.scene is not scene:
                return  # reset, restarted or another case opened meanwhile
            if isinstance(result, Exception):
                self.context.report_error("Simulation", result)
                self.ended.emit("could not build the simulation")
                return
            self._begin(config, mesh_id, result[0], result[1], rest_mm, faces)

        self.config = config
        self.building = self.context.run_task("Build simulation", work, done)
        if not self.building:
            self.context.set_status("Wait for the running task to finish, then start the simulation")
        return self.building

    def _begin(
        self,
        config: SessionConfig,
        mesh_id: str,
        built: SegmentBody,
        embedding: Embedding,
        rest_mm: np.ndarray,
        faces: np.ndarray,
    ) -> None:
        renderer = self.view.scene_renderer
        try:
            actor = renderer.actor(mesh_id)
        except Exception as exc:  # noqa: BLE001 - the mesh went away while the body was built
            self.context.report_error("Simulation", exc)
            self.ended.emit("the mesh went away")
            return
        self.built, self.mesh_id, self._actor = built, mesh_id, actor
        case_mesh = self.context.scene.meshes.get(mesh_id)
        self._surface = SurfaceMesh(
            rest_mm,
            faces,
            name=f"{config.segment} deformed",
            color=case_mesh.color if case_mesh is not None else (0.8, 0.8, 0.8),
        )
        mapper = actor.GetMapper()
        self._own_input = mapper.GetInput()
        if self._own_input.GetNumberOfPoints() != len(rest_mm):
            self._actor = None
            self.context.report_error(
                "Simulation", SurgTwinError("the 3D view shows another version of the mesh")
            )
            self.ended.emit("the mesh changed")
            return
        self._preview = vtkPolyData()
        self._preview.DeepCopy(self._own_input)
        mapper.SetInputData(self._preview)
        mapper.SetLookupTable(self._lut)
        mapper.SetScalarModeToUsePointData()
        mapper.SetColorModeToMapScalars()
        self._scalar_bar = vtkScalarBarActor()
        self._scalar_bar.SetLookupTable(self._lut)
        self._scalar_bar.SetNumberOfLabels(3)
        self._scalar_bar.SetMaximumWidthInPixels(70)
        self._scalar_bar.SetMaximumHeightInPixels(220)
        renderer.renderer.AddViewProp(self._scalar_bar)
        self._range_max = 0.0
        inbox = self._inbox
        callbacks = (
            self._publish,
            lambda text: inbox.post("note", text),
            lambda exc: inbox.post("failed", exc),
        )
        self._loop = SolverLoop(built, embedding, (rest_mm, faces), callbacks, config.gravity)
        self._loop.request(colour_by=self.colour_by)
        self._loop.start()
        self.started.emit()
        self.context.set_status(
            f"Simulating {config.segment}: {built.mesh.element_count} elements, "
            f"{int(built.fixed.sum())} anchored nodes ({built.cell_mm:.1f} mm cells)"
        )

    def reset(self, reason: str = "reset") -> None:
        """Stop the solver and show the segment's own mesh again, in its own colour."""
        self._generation += 1
        was_running = self._loop is not None or self._actor is not None or self.building
        self.building = False
        self._stop_loop()
        if self._actor is not None:
            mapper = self._actor.GetMapper()
            if mapper.GetInput() is self._preview:  # else the scene replaced it: that one stays
                mapper.SetInputData(self._own_input)
            mapper.ScalarVisibilityOff()
            if self._scalar_bar is not None and self.view.scene_renderer is not None:
                self.view.scene_renderer.renderer.RemoveViewProp(self._scalar_bar)
            self._render()
        self._actor = self._own_input = self._preview = self._scalar_bar = None
        self.built = None
        self._tool, self._surface = None, None
        self.pin_points_mm = []
        self.glyphs.detach()
        self.last_frame = None
        with self._latest_lock:
            self._latest = None
        if was_running:
            self.ended.emit(reason)

    def _stop_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()
            loop.join(timeout=5.0)

    # --- tools (GUI thread) ----------------------------------------------------------------
    def grasp(self, point_lps_mm: Sequence[float]) -> bool:
        """Grasp the tissue at a surface point (LPS mm); False when no session runs."""
        if self._loop is None:
            return False
        point = as_point(point_lps_mm) * MM
        self._loop.request(grasp_m=point, target_m=point)
        return True

    def drag(self, target_lps_mm: Sequence[float]) -> None:
        """Move the grasped point towards ``target_lps_mm``."""
        if self._loop is not None:
            self._loop.request(target_m=as_point(target_lps_mm) * MM)

    def release(self) -> None:
        if self._loop is not None:  # also drops a grasp the solver has not taken up yet
            self._loop.request(release=True, grasp_m=None, target_m=None)

    def press_tool(
        self,
        kind: str,
        centre_lps_mm: Sequence[float],
        direction: Sequence[float],
        radius_mm: float,
        length_mm: float = 0.0,
        entry_lps_mm: Sequence[float] | None = None,
    ) -> bool:
        """Press a rigid instrument into the tissue (see :class:`ToolPose`; LPS mm here): a new
        press, started at ``entry_lps_mm`` (default: at its centre) and moved in gradually.
        False when no session runs."""
        if self._loop is None or self.built is None:
            return False
        if kind not in RIGID_TOOLS:
            raise unknown_rigid_tool(kind)
        unit = as_point(direction)
        norm = float(np.linalg.norm(unit))
        if norm == 0.0 or (kind != "plane" and not radius_mm > 0.0):
            raise SimulationError("an instrument needs a direction and a radius > 0")
        narrowest = self.narrowest_tool_mm
        if kind != "plane" and radius_mm < narrowest:
            self.context.set_status(
                f"Instrument radius raised to {narrowest:.1f} mm: the simulation cells are "
                f"{self.built.cell_mm:.1f} mm (use a finer mesh for a narrower instrument)"
            )
            radius_mm = narrowest
        self._presses += 1
        entry = None if entry_lps_mm is None else as_point(entry_lps_mm) * MM
        self._tool = ToolPose(
            kind,
            as_point(centre_lps_mm) * MM,
            unit / norm,
            float(radius_mm) * MM,
            float(length_mm) * MM,
            self._presses,
            entry,
        )
        self._send_tool()
        return True

    @property
    def narrowest_tool_mm(self) -> float:
        """The smallest instrument radius the running simulation's cells resolve (0 if none runs)."""
        return MIN_TOOL_RADIUS_CELLS * self.built.cell_mm if self.built is not None else 0.0

    def move_tool(self, centre_lps_mm: Sequence[float]) -> None:
        """Move the pressed instrument (its centre, LPS mm); the solver follows gradually."""
        if self._tool is not None and self._loop is not None:
            self._tool = self._tool.moved_to(as_point(centre_lps_mm) * MM)
            self._send_tool()

    def lift_tool(self) -> None:
        """Take the rigid instrument away."""
        self._tool = None
        self._send_tool()

    @property
    def tool(self) -> ToolPose | None:
        """The rigid instrument asked for (metres), None when none is pressed."""
        return self._tool

    def _send_tool(self) -> None:
        if self._loop is not None:
            self._loop.request(tool=self._tool)
        self._draw_glyphs(lambda renderer: self.glyphs.show_tool(renderer, self._tool))

    def pin(self, point_lps_mm: Sequence[float], radius_mm: float) -> bool:
        """Hold the tissue where it is now at a picked point: the nodes within ``radius_mm`` (or
        the nearest one, within two cells). False when no session runs."""
        if self._loop is None:
            return False
        point = as_point(point_lps_mm)
        self._loop.add_pin(point * MM, float(radius_mm) * MM)
        self.pin_points_mm.append(point)
        self._show_pins()
        return True

    def clear_pins(self) -> None:
        if self._loop is not None:
            self._loop.request(clear_pins=True)
        self.pin_points_mm = []
        self._show_pins()

    def _show_pins(self) -> None:
        self._draw_glyphs(lambda renderer: self.glyphs.show_pins(renderer, self.pin_points_mm))

    def _draw_glyphs(self, draw: Callable[[Any], None]) -> None:
        """Redraw tool glyphs with ``draw(renderer)`` where the view has a scene."""
        if self.view.scene_renderer is not None:
            draw(self.view.scene_renderer.renderer)
            self._render()

    def _render(self) -> None:
        if self.view.interactor is not None:
            self.view.interactor.render()

    def export_surface(self, path: str | Path) -> Path:
        """Write the deformed surface the view shows now (LPS mm) as PLY, STL or OBJ (+ MTL),
        chosen by the file's suffix. The case is not changed. Returns the file written."""
        if self._surface is None or self._loop is None:
            raise SurgTwinError("no simulation is running: start one, deform the tissue, then export")
        frame = self.last_frame
        points_mm = frame.points_mm if frame is not None else self._surface.vertices
        return write_deformed_surface(self._surface, points_mm, path)

    def set_colour_by(self, mode: str) -> None:
        if mode not in COLOUR_MODES:
            raise ValueError(f"colour by one of {', '.join(COLOUR_MODES)}, not {mode!r}")
        self.colour_by = mode
        self._range_max = 0.0
        if self._loop is not None:
            self._loop.request(colour_by=mode)  # request() wakes the solver

    # --- frames ------------------------------------------------------------------------------
    def _publish(self, frame: SimFrame) -> None:
        """Solver thread: keep only the newest frame; wake the GUI if it is not already due."""
        with self._latest_lock:
            due = self._latest is None
            self._latest = frame
        if due:
            self._inbox.post("frame_ready")

    def _show_latest(self) -> None:
        with self._latest_lock:
            frame, self._latest = self._latest, None
        if frame is None or self._loop is None or self._actor is None:
            return
        mapper = self._actor.GetMapper()
        if mapper.GetInput() is not self._preview:  # the case's mesh changed under the preview
            self.reset("the segment's mesh changed")
            return
        drawing = time.perf_counter()
        self._apply(frame)
        self.draw_seconds = time.perf_counter() - drawing
        # a slow software-GL frame holds the GIL: space frames so the solver keeps its share
        self._loop.frame_interval = max(FRAME_INTERVAL_S, self.draw_seconds / FRAME_BUDGET)
        self.last_frame = frame
        self.frame_shown.emit(frame)

    def _apply(self, frame: SimFrame) -> None:
        preview = self._preview
        preview.GetPoints().SetData(numpy_to_vtk(frame.points_mm, deep=True))
        normals = numpy_to_vtk(frame.normals, deep=True)
        normals.SetName("Normals")
        preview.GetPointData().SetNormals(normals)
        scalars = numpy_to_vtk(frame.scalars, deep=True)
        scalars.SetName(frame.colour_by)
        preview.GetPointData().SetScalars(scalars)
        preview.Modified()
        self._range_max = max(self._range_max, float(frame.scalars.max(initial=0.0)), 1e-3)
        mapper = self._actor.GetMapper()
        mapper.SetScalarRange(0.0, self._range_max)
        mapper.ScalarVisibilityOn()
        if self._scalar_bar is not None:
            self._scalar_bar.SetTitle(COLOUR_MODES[frame.colour_by])
        self._render()

    def legend(self) -> str:
        """The colour scale in words, e.g. 'displacement: blue 0 mm → red 12.3 mm'."""
        unit = COLOUR_MODES[self.colour_by]
        return f"{self.colour_by}: blue 0 {unit} → red {self._range_max:.3g} {unit}"

    def _on_note(self, text: str) -> None:
        self.notes.append(text)
        self.context.set_status(f"Simulation tool: {text}")

    def _on_solver_failed(self, exc: BaseException) -> None:
        self.reset("the solver stopped")
        self.context.report_error("Simulation", exc)
