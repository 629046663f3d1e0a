"""The live tissue-deformation preview in the 3D view: build a body off the GUI thread, step it
on a solver thread, show the deformed surface in place of the segment's mesh.

The preview is not a case edit: the scene's mesh and the history are never touched. While a
session runs, the segment's actor draws a private copy of its polydata (points moved by the
simulation, coloured by displacement or stress); :meth:`DeformSession.reset` puts the actor's
own polydata back, so the view shows the case exactly as before.

Threads: the body belongs to the solver thread (:class:`_SolverLoop`), which steps it as fast as
it goes while something moves, takes the grasp/drag/release, instrument and pin requests the GUI
left under a lock, and publishes the newest frame (surface points, normals, colours, tool force)
at most :data:`FRAME_INTERVAL_S` apart; the GUI applies only the newest one, so frames never
queue up.

Tools (:class:`TissueDragger`, the mouse in the 3D view): grasp and drag; press with a rigid
sphere or capsule (an instrument shaft lying along the surface); retract with a plane; pin the
tissue at picked points. The rigid instruments are pressed along the picked surface's normal by a
chosen depth and follow the mouse in the view plane; the solver moves them there gradually
(:data:`MAX_TOOL_MOVE_CELLS` per step) so a sudden deep press cannot tear the mesh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QMouseEvent
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkPolyData
from vtkmodules.vtkFiltersCore import vtkAppendPolyData, vtkTubeFilter
from vtkmodules.vtkFiltersSources import vtkLineSource, vtkPlaneSource, vtkSphereSource
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
from vtkmodules.vtkRenderingCore import vtkActor, vtkCellPicker, vtkPolyDataMapper

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
from surgtwin.core.export.common import write_atomic
from surgtwin.core.export.obj import obj_and_mtl
from surgtwin.core.export.ply import ply_bytes
from surgtwin.core.export.stl import stl_bytes
from surgtwin.core.mesh.surface import SurfaceMesh

logger = logging.getLogger(__name__)

STEP_S = 1.0 / 60.0  # simulated time per solver step
FRAME_INTERVAL_S = 1.0 / 30.0  # the GUI shows at most ~30 frames per second
REST_SPEED_M_S = 2e-4  # with no tool held, stepping stops once every node is slower than this
IDLE_WAIT_S = 0.05
SUPINE_GRAVITY = (0.0, 9.81, 0.0)  # m/s², LPS: a supine patient's posterior is down
COLOUR_MODES = {"displacement": "mm", "stress": "kPa"}
PICK_TOLERANCE = 0.0005
# numba threads the solver thread uses. Measured on the 2-core dev machine, 426-element box with a
# grasp: 1 thread 72-75 steps/s on a worker thread; 2 threads 24-30 (OpenMP wake-ups dominate such
# small kernels, and worse off the main thread); 1 thread also leaves a core to the GUI's drawing.
SOLVER_NUMBA_THREADS = 1
FRAME_BUDGET = 0.5  # the GUI spends at most about this share of the time drawing frames
# the tools the mouse can use in the 3D view (see TissueDragger)
TOOLS = {
    "grasp": "Grasp and drag",
    "sphere": "Press with a sphere",
    "capsule": "Press with an instrument shaft (capsule)",
    "plane": "Retract with a plane",
    "pin": "Pin the tissue (click)",
}
RIGID_TOOLS = ("sphere", "capsule", "plane")
MAX_TOOL_MOVE_CELLS = 0.25  # a rigid tool moves at most this far per solver step
# Rigid tools act on nodes: one narrower than this many cells, pressed in, pokes a single node
# past its neighbours and the contact chatters (measured on 4.45 mm cells: a 6 mm sphere 5 mm deep
# alternated between 0 and 4.5 N); the session widens such a tool.
MIN_TOOL_RADIUS_CELLS = 1.5
# Contact penalty (N/m per node) = this x E x cell. The core's default (1000) chattered between
# contact sets when stepping a 10 mm sphere pressed 2-4 mm into liver at 4.45 mm cells (a 3-step
# cycle, up to 73 N); 100 (1.8 kN/m there) settled a 4 mm press with 0.017 mm penetration.
CONTACT_STIFFNESS_FACTOR = 100.0
PLANE_DRAWN_MM = 60.0  # edge of the square drawn for the (infinite) retraction plane
EXPORT_SUFFIXES = (".ply", ".stl", ".obj")


@dataclass(frozen=True)
class SessionConfig:
    """What to simulate. ``material`` None: the preset the segment's name suggests."""

    segment: str
    material: Material | None = None
    anchors: tuple[str, ...] = ()
    max_elements: int = 1000
    gravity: bool = False


@dataclass(frozen=True)
class SimFrame:
    """One published state of the simulation, in the display's units (LPS mm, N, mm or kPa)."""

    points_mm: np.ndarray  # (P, 3) float64 deformed surface vertices
    normals: np.ndarray  # (P, 3) float32
    scalars: np.ndarray  # (P,) float32 displacement (mm) or von Mises stress (kPa)
    colour_by: str
    tool_force_n: np.ndarray | None  # (3,) force the tissue puts on the tool; None when not grasping
    max_displacement_mm: float
    steps: int  # steps taken since the session began
    steps_per_second: float
    cg_iterations: int = 0
    tool: str = ""  # the tool tool_force_n is the force on: grasp, sphere, capsule or plane
    pinned_nodes: int = 0  # nodes held by pins at picked points


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
        return replace(self, centre_m=np.asarray(centre_m, dtype=np.float64).reshape(3))

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
            raise SimulationError(f"no rigid tool called {self.kind!r}; tools: {', '.join(RIGID_TOOLS)}")


def clear_rigid_tools(body: Any) -> None:
    body.clear_sphere()
    body.clear_capsule()
    body.clear_plane()


def rigid_tool_force(body: Any, kind: str) -> np.ndarray:
    """Force (N) the tissue exerts on the rigid tool of this kind."""
    return np.asarray(body.tool_forces()["planes" if kind == "plane" else kind])


@dataclass
class _Requests:
    """What the GUI asked since the solver last looked (guarded by the loop's lock).

    ``colour_by`` and ``tool`` (the wanted rigid tool, None for none) are standing wishes; the
    rest are taken once."""

    grasp_m: np.ndarray | None = None
    target_m: np.ndarray | None = None
    release: bool = False
    colour_by: str = "displacement"
    tool: ToolPose | None = None
    pins: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (point m, radius m)
    clear_pins: bool = False


def vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unit, float32) of a triangle surface."""
    tri = points[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = len(points)
    normals = np.empty((n, 3))
    flat = faces.ravel()
    for axis in range(3):
        normals[:, axis] = np.bincount(flat, weights=np.repeat(face_n[:, axis], 3), minlength=n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.maximum(length, 1e-30)).astype(np.float32)


def warm_up(built: SegmentBody) -> None:
    """Run every kernel a drag and a frame need once (numba loads or compiles them: seconds, and
    compiling holds the GIL), here on the build task rather than on the first drag; then back to rest."""
    body = built.body
    free = np.flatnonzero(~built.fixed)
    if len(free):
        point = body.rest[free[0]]
        handle = body.grasp(point)
        body.drag(handle, point + 0.1 * body.cell_m)
        body.step(STEP_S)
        body.tool_force(handle)
        body.release(handle)
    body.von_mises_stress()
    body.reset()


class _SolverLoop(threading.Thread):
    """Steps the body while a tool holds it or it still moves; publishes frames through ``publish``."""

    def __init__(
        self,
        built: SegmentBody,
        embedding: Embedding,
        surface: tuple[np.ndarray, np.ndarray],
        callbacks: tuple[Callable[[SimFrame], None], Callable[[str], None], Callable[[BaseException], None]],
        gravity: bool,
    ) -> None:
        super().__init__(name="deform-solver", daemon=True)
        self.body = built.body
        self.embedding = embedding
        self.rest_mm, self.faces = surface
        self._publish, self._notify, self._failed = callbacks
        self.lock = threading.Lock()
        self.requests = _Requests()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.handle: int | None = None
        self.tool: ToolPose | None = None  # the rigid tool as set on the body (moving to the wish)
        self.steps = 0
        self._moving = gravity  # gravity starts the body sagging at once
        self._recent: list[float] = []
        # seconds between published frames; the GUI lengthens it when drawing a frame is slow
        self.frame_interval = FRAME_INTERVAL_S

    def request(self, **changes: Any) -> None:
        with self.lock:
            for key, value in changes.items():
                setattr(self.requests, key, value)
        self.wake.set()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    def run(self) -> None:
        try:
            import numba

            numba.set_num_threads(
                min(SOLVER_NUMBA_THREADS, numba.config.NUMBA_NUM_THREADS)
            )  # this thread only
            self._loop()
        except Exception as exc:  # noqa: BLE001 - the GUI reports it; the session ends
            logger.exception("the deformation solver stopped")
            self._failed(exc)

    def add_pin(self, point_m: np.ndarray, radius_m: float) -> None:
        with self.lock:
            self.requests.pins.append((point_m, radius_m))
        self.wake.set()

    def _take_requests(self) -> _Requests:
        with self.lock:
            taken = self.requests
            self.requests = _Requests(colour_by=taken.colour_by, tool=taken.tool)
            self.wake.clear()
        return taken

    def _take_pins(self, wishes: _Requests) -> bool:
        """Pin or unpin as asked; True when anything changed."""
        changed = False
        if wishes.clear_pins and self.body.pinned_nodes().size:
            self.body.clear_pins()
            changed = self._moving = True
        for point_m, radius_m in wishes.pins:
            try:
                self.body.pin(point_m, radius_m)
                changed = True
            except SimulationError as exc:  # a miss is told, the session goes on
                self._notify(str(exc))
        return changed

    def _follow_tool(self, wish: ToolPose | None) -> bool:
        """Move the rigid tool on the body towards the wish (at most MAX_TOOL_MOVE_CELLS a step);
        True while a tool is set."""
        if wish is None:
            if self.tool is not None:
                clear_rigid_tools(self.body)
                self.tool, self._moving = None, True
            return False
        now = self.tool
        if now is None or now.press_id != wish.press_id:
            entry = wish.entry_m if wish.entry_m is not None else wish.centre_m
            now = wish.moved_to(entry)
        else:
            now = replace(wish, centre_m=now.centre_m)
        move = wish.centre_m - now.centre_m
        length = float(np.linalg.norm(move))
        limit = MAX_TOOL_MOVE_CELLS * self.body.cell_m
        if length > limit:
            move *= limit / length
        now = now.moved_to(now.centre_m + move)
        now.apply(self.body)
        self.tool = now
        return True

    def _loop(self) -> None:
        last_frame = 0.0
        dirty = True
        shown_colour = None
        while not self.stop_event.is_set():
            wishes = self._take_requests()
            grasp_m, target_m, release, colour_by = (
                wishes.grasp_m,
                wishes.target_m,
                wishes.release,
                wishes.colour_by,
            )
            if self._take_pins(wishes):
                dirty = True
            pressing = self._follow_tool(wishes.tool)
            if colour_by != shown_colour:  # a colouring change shows even at rest
                dirty, shown_colour = True, colour_by
            if release and self.handle is not None:
                self.body.release(self.handle)
                self.handle, self._moving, dirty = None, True, True
            if grasp_m is not None:
                if self.handle is not None:
                    self.body.release(self.handle)
                self.handle = None
                try:
                    self.handle = self.body.grasp(grasp_m)
                except SimulationError as exc:  # a miss is told, the session goes on
                    self._notify(str(exc))
                self._moving = True
            if target_m is not None and self.handle is not None:
                self.body.drag(self.handle, target_m)
            if self.handle is None and not pressing and not self._moving:
                if dirty:
                    self._publish(self._frame(colour_by, 0))
                    dirty = False
                self.wake.wait(IDLE_WAIT_S)
                continue
            started = time.perf_counter()
            stats = self.body.step(STEP_S)
            self.steps += 1
            self._recent.append(time.perf_counter() - started)
            del self._recent[:-30]
            if self.handle is None and not pressing:
                self._moving = float(np.abs(self.body.velocities).max()) > REST_SPEED_M_S
            dirty = True
            now = time.perf_counter()
            if now - last_frame >= self.frame_interval:
                self._publish(self._frame(colour_by, stats.cg_iterations))
                last_frame, dirty = now, False

    def _frame(self, colour_by: str, cg_iterations: int) -> SimFrame:
        body, emb = self.body, self.embedding
        points_mm = emb.apply(body.positions) / MM
        if colour_by == "stress":
            nodal_kpa = body.nodal_average(body.von_mises_stress()) / 1000.0
            scalars = np.einsum("pk,pk->p", emb.weights, nodal_kpa[emb.node_ids])
        else:
            scalars = np.linalg.norm(points_mm - self.rest_mm, axis=1)
        force, tool = None, ""
        if self.handle is not None:
            force, tool = body.tool_force(self.handle), "grasp"
        elif self.tool is not None:
            force, tool = rigid_tool_force(body, self.tool.kind), self.tool.kind
        mean_step = float(np.mean(self._recent)) if self._recent else 0.0
        return SimFrame(
            points_mm=points_mm,
            normals=vertex_normals(points_mm, self.faces),
            scalars=np.maximum(scalars, 0.0).astype(np.float32),
            colour_by=colour_by,
            tool_force_n=force,
            max_displacement_mm=body.max_displacement_m() / MM,
            steps=self.steps,
            steps_per_second=1.0 / mean_step if mean_step > 0 else 0.0,
            cg_iterations=int(cg_iterations),
            tool=tool,
            pinned_nodes=int(body.pinned_nodes().size),
        )


class DeformSession(QObject):
    """One live simulation of one segment, shown in ``view`` (a :class:`View3D`).

    ``context`` is the window's ToolContext (scene, run_task, report_error, set_status).
    Signals: ``started`` once the body is built and stepping can begin, ``frame_shown(SimFrame)``
    after each frame is drawn, ``ended(str)`` when the session stops (the reason).
    """

    started = Signal()
    frame_shown = Signal(object)
    ended = Signal(str)
    _frame_ready = Signal()
    _solver_failed = Signal(object)
    _solver_note = Signal(str)

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
        self._loop: _SolverLoop | None = None
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
        self._frame_ready.connect(self._show_latest, Qt.ConnectionType.QueuedConnection)
        self._solver_failed.connect(self._on_solver_failed, Qt.ConnectionType.QueuedConnection)
        self._solver_note.connect(self._on_note, Qt.ConnectionType.QueuedConnection)
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
            built.body.obstacles.stiffness = CONTACT_STIFFNESS_FACTOR * tissue.youngs_pa * built.body.cell_m
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
        callbacks = (self._publish, self._solver_note.emit, self._solver_failed.emit)
        self._loop = _SolverLoop(built, embedding, (rest_mm, faces), callbacks, config.gravity)
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
            if self.view.interactor is not None:
                self.view.interactor.render()
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
        point = np.asarray(point_lps_mm, dtype=np.float64).reshape(3) * MM
        self._loop.request(grasp_m=point, target_m=point)
        return True

    def drag(self, target_lps_mm: Sequence[float]) -> None:
        """Move the grasped point towards ``target_lps_mm``."""
        if self._loop is not None:
            self._loop.request(target_m=np.asarray(target_lps_mm, dtype=np.float64).reshape(3) * MM)

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
            raise SimulationError(f"no rigid tool called {kind!r}; tools: {', '.join(RIGID_TOOLS)}")
        unit = np.asarray(direction, dtype=np.float64).reshape(3)
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
        entry = None if entry_lps_mm is None else np.asarray(entry_lps_mm, dtype=np.float64).reshape(3) * MM
        self._tool = ToolPose(
            kind,
            np.asarray(centre_lps_mm, dtype=np.float64).reshape(3) * MM,
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
            self._tool = self._tool.moved_to(np.asarray(centre_lps_mm, dtype=np.float64).reshape(3) * MM)
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
        if self.view.scene_renderer is not None:
            self.glyphs.show_tool(self.view.scene_renderer.renderer, self._tool)
            if self.view.interactor is not None:
                self.view.interactor.render()

    def pin(self, point_lps_mm: Sequence[float], radius_mm: float) -> bool:
        """Hold the tissue where it is now at a picked point: the nodes within ``radius_mm`` (or
        the nearest one, within two cells). False when no session runs."""
        if self._loop is None:
            return False
        point = np.asarray(point_lps_mm, dtype=np.float64).reshape(3)
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
        if self.view.scene_renderer is not None:
            self.glyphs.show_pins(self.view.scene_renderer.renderer, self.pin_points_mm)
            if self.view.interactor is not None:
                self.view.interactor.render()

    def export_surface(self, path: str | Path) -> Path:
        """Write the deformed surface the view shows now (LPS mm) as PLY, STL or OBJ (+ MTL),
        chosen by the file's suffix. The case is not changed. Returns the file written."""
        out = Path(path)
        if self._surface is None or self._loop is None:
            raise SurgTwinError("no simulation is running: start one, deform the tissue, then export")
        suffix = out.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            raise SurgTwinError(f"{out.name}: export the deformed surface as .ply, .stl or .obj")
        frame = self.last_frame
        points = frame.points_mm if frame is not None else self._surface.vertices
        mesh = replace(self._surface, vertices=np.array(points, dtype=np.float64))
        if not np.isfinite(mesh.vertices).all():
            raise SurgTwinError("the deformed surface has non-finite points; reset the simulation")
        if suffix == ".ply":
            return write_atomic(out, ply_bytes(mesh))
        if suffix == ".stl":
            return write_atomic(out, stl_bytes(mesh))
        obj, mtl = obj_and_mtl([mesh], out.with_suffix(".mtl").name)
        write_atomic(out.with_suffix(".mtl"), mtl)  # the materials first: an OBJ never names a missing one
        return write_atomic(out, obj)

    def set_colour_by(self, mode: str) -> None:
        if mode not in COLOUR_MODES:
            raise ValueError(f"colour by one of {', '.join(COLOUR_MODES)}, not {mode!r}")
        self.colour_by = mode
        self._range_max = 0.0
        if self._loop is not None:
            self._loop.request(colour_by=mode)
            self._loop.wake.set()

    # --- frames ------------------------------------------------------------------------------
    def _publish(self, frame: SimFrame) -> None:
        """Solver thread: keep only the newest frame; wake the GUI if it is not already due."""
        with self._latest_lock:
            due = self._latest is None
            self._latest = frame
        if due:
            self._frame_ready.emit()

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
        if self.view.interactor is not None:
            self.view.interactor.render()

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
            dot = vtkSphereSource()
            dot.SetCenter(*map(float, point))
            dot.SetRadius(1.5)
            dot.Update()
            append.AddInputData(dot.GetOutput())
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
        cap = vtkSphereSource()
        cap.SetCenter(*map(float, end))
        cap.SetRadius(radius)
        cap.SetThetaResolution(24)
        cap.SetPhiResolution(16)
        cap.Update()
        append.AddInputData(cap.GetOutput())
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
