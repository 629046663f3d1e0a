"""The solver thread of the live deformation preview (:class:`SolverLoop`) and the frames it
publishes (:class:`SimFrame`).

The body belongs to the solver thread, which steps it as fast as it goes while something moves,
takes the grasp/drag/release, instrument and pin requests the GUI left under a lock, and
publishes the newest frame (surface points, normals, colours, tool force) at most
:data:`FRAME_INTERVAL_S` apart; the GUI applies only the newest one, so frames never queue up.
Rigid instruments follow the GUI's wish gradually (:data:`MAX_TOOL_MOVE_CELLS` per step) so a
sudden deep press cannot tear the mesh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from surgtwin.core.deform.embedding import Embedding
from surgtwin.core.deform.errors import SimulationError
from surgtwin.core.deform.mesh import MM
from surgtwin.core.deform.setup import SegmentBody
from surgtwin.ui.deform_tools import ToolPose, clear_rigid_tools, rigid_tool_force

logger = logging.getLogger(__name__)

STEP_S = 1.0 / 60.0  # simulated time per solver step
FRAME_INTERVAL_S = 1.0 / 30.0  # the GUI shows at most ~30 frames per second
REST_SPEED_M_S = 2e-4  # with no tool held, stepping stops once every node is slower than this
IDLE_WAIT_S = 0.05
# numba threads the solver thread uses. Measured on the 2-core dev machine, 426-element box with a
# grasp: 1 thread 72-75 steps/s on a worker thread; 2 threads 24-30 (OpenMP wake-ups dominate such
# small kernels, and worse off the main thread); 1 thread also leaves a core to the GUI's drawing.
SOLVER_NUMBA_THREADS = 1
MAX_TOOL_MOVE_CELLS = 0.25  # a rigid tool moves at most this far per solver step


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
    """Area-weighted vertex normals (unit, float32) of a triangle surface.

    Not the core's export ``vertex_normals``: that one sums with ``np.add.at``, about 2.5x slower
    (41k vertices: 158 ms against 65 ms) and this runs for every frame on the solver thread."""
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


class SolverLoop(threading.Thread):
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
