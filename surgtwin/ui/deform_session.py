"""The live tissue-deformation preview in the 3D view: build a body off the GUI thread, step it
on a solver thread, show the deformed surface in place of the segment's mesh.

The preview is not a case edit: the scene's mesh and the history are never touched. While a
session runs, the segment's actor draws a private copy of its polydata (points moved by the
simulation, coloured by displacement or stress); :meth:`DeformSession.reset` puts the actor's
own polydata back, so the view shows the case exactly as before.

Threads: the body belongs to the solver thread (:class:`_SolverLoop`), which steps it as fast as
it goes while something moves, takes the grasp/drag/release requests the GUI left under a lock,
and publishes the newest frame (surface points, normals, colours, tool force) at most
:data:`FRAME_INTERVAL_S` apart; the GUI applies only the newest one, so frames never queue up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QMouseEvent
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkPolyData
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
from vtkmodules.vtkRenderingCore import vtkCellPicker

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


@dataclass
class _Requests:
    """What the GUI asked since the solver last looked (guarded by the loop's lock)."""

    grasp_m: np.ndarray | None = None
    target_m: np.ndarray | None = None
    release: bool = False
    colour_by: str = "displacement"


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

    def _take_requests(self) -> tuple[np.ndarray | None, np.ndarray | None, bool, str]:
        with self.lock:
            r = self.requests
            taken = (r.grasp_m, r.target_m, r.release, r.colour_by)
            r.grasp_m, r.target_m, r.release = None, None, False
            self.wake.clear()
        return taken

    def _loop(self) -> None:
        last_frame = 0.0
        dirty = True
        shown_colour = None
        while not self.stop_event.is_set():
            grasp_m, target_m, release, colour_by = self._take_requests()
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
            if self.handle is None and not self._moving:
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
            if self.handle is None:
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
        force = body.tool_force(self.handle) if self.handle is not None else None
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
        self.context.set_status(f"Drag tissue: {text}")

    def _on_solver_failed(self, exc: BaseException) -> None:
        self.reset("the solver stopped")
        self.context.report_error("Simulation", exc)


class TissueDragger(QObject):
    """Event filter on the 3D view's GL widget: in drag mode a left press on the simulated
    segment grasps it and the drag moves the grasped point in the camera's view plane (at the
    grasp's depth) instead of rotating the camera. A press anywhere else rotates as usual."""

    def __init__(self, view: Any, session: DeformSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.session = session
        self.enabled = False
        self._depth: float | None = None  # display z of the grasped point while dragging
        self._offset = np.zeros(3)
        self.grasp_point: np.ndarray | None = None
        if view.interactor is not None:
            view.interactor.interactor.installEventFilter(self)

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = bool(enabled)
        if not enabled and self._depth is not None:
            self.release()

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
            if kind == QEvent.Type.MouseButtonRelease and self._depth is not None:
                self.release()
                return True
        except Exception as exc:  # noqa: BLE001 - Qt would swallow it: tell the user instead
            self._depth = None
            self.session.context.report_error("Drag tissue", exc)
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

    def press(self, x: float, y: float) -> bool:
        """Widget pixel (y down): grasp the simulated surface there; False on a miss."""
        actor = self.session.actor
        if actor is None or not self.session.running or self.view.scene_renderer is None:
            return False
        renderer = self.view.scene_renderer.renderer
        picker = vtkCellPicker()
        picker.SetTolerance(PICK_TOLERANCE)
        picker.PickFromListOn()
        picker.AddPickList(actor)
        if not picker.Pick(*self._display(x, y), 0.0, renderer) or picker.GetActor() is not actor:
            return False
        point = np.array(picker.GetPickPosition(), dtype=np.float64)
        renderer.SetWorldPoint(*point, 1.0)
        renderer.WorldToDisplay()
        self._depth = float(renderer.GetDisplayPoint()[2])
        self._offset = point - self._to_world(x, y, self._depth)
        self.grasp_point = point
        self.session.grasp(point)
        return True

    def move(self, x: float, y: float) -> None:
        if self._depth is not None:
            self.session.drag(self._to_world(x, y, self._depth) + self._offset)

    def release(self) -> None:
        self._depth = None
        self.session.release()
