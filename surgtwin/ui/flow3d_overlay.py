"""The 3D flow preview in the 3D view: vessel surfaces coloured by wall shear stress, pressure or
speed, and streamlines from the inlet coloured by speed. A preview, never a case edit.

Surface colouring works as the deformation preview does (:mod:`surgtwin.ui.deform_session`): the
vessel segment's own actor draws a private copy of its polydata carrying the values, and
:meth:`Flow3DOverlay.clear_surfaces` puts the actor's own polydata back, so the view shows the
case exactly as before (and the segment's visibility, opacity and clipping keep applying).
Streamlines are an overlay actor of their own; while they show, the coloured vessels are drawn
see-through so the lines inside can be seen.

Values on a surface (:func:`sample_surface`, run on the worker with the 3D run): wall shear stress
from the core (:func:`surgtwin.core.flow.case3d.wall_shear_pa`, outward mesh normals); pressure and
speed from the fluid cell nearest the point half a cell inside the wall: the mesh and the
lattice's staircase wall differ by up to about a cell, and a nearest fluid cell always has a value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from scipy.spatial import cKDTree
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkLookupTable, vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkPolyLine
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from surgtwin.core.deform.setup import surface_mesh_id
from surgtwin.core.flow import case3d
from surgtwin.core.flow.case import FlowCase
from surgtwin.core.flow.case3d import Flow3D
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.fields import Streamline
from surgtwin.core.flow.lumen import fluid_volume_mm3
from surgtwin.core.flow.reduced import PA_PER_MMHG
from surgtwin.core.progress import Progress
from surgtwin.ui.deform_solver import vertex_normals

# what the surface can be coloured by: (title, unit); "none" shows the segment's own colour
SURFACE_MODES: dict[str, tuple[str, str]] = {
    "wss": ("wall shear stress", "Pa"),
    "pressure": ("pressure", "mmHg"),
    "speed": ("speed near the wall", "m/s"),
}
MODE_LABELS = {"none": "none", "wss": "WSS", "pressure": "pressure", "speed": "speed"}
STREAMLINE_COUNT = 150
STREAMLINE_WIDTH_PX = 2.0
SEE_THROUGH_OPACITY = 0.35  # the vessel surface while streamlines show inside it
RANGE_PERCENTILES = (1.0, 99.0)  # colour range: a few cells at the cut ends do not set the scale
# Below this many fluid cells the run uses one numba thread: per step the kernels are then so short
# that waking the second thread costs more than it brings (measured on the shared 2-core machine,
# 4k cells: 10 ms a step on 2 threads, 1 ms on 1), and a run takes seconds anyway.
SMALL_LATTICE_CELLS = 10_000


@dataclass(frozen=True)
class SurfaceSample:
    """Flow values at the vertices of one vessel mesh."""

    vertex_count: int
    wss_pa: np.ndarray
    pressure_mmhg: np.ndarray
    speed_m_s: np.ndarray

    def values(self, mode: str) -> np.ndarray:
        return {"wss": self.wss_pa, "pressure": self.pressure_mmhg, "speed": self.speed_m_s}[mode]


@dataclass
class Flow3DResult:
    """A finished 3D run and everything the panel shows of it (computed on the worker)."""

    flow: Flow3D
    summary: dict[str, Any]
    ends: list[dict[str, Any]]
    stenosis_drops_pa: list[float]
    branch_pressures_pa: list[np.ndarray]
    streamlines: list[Streamline]
    surfaces: dict[str, SurfaceSample] = field(default_factory=dict)  # mesh id -> values
    notes: list[str] = field(default_factory=list)  # what could not be derived, and why


@dataclass(frozen=True)
class SurfaceSnapshot:
    """A vessel mesh as it was when the run started (copied on the GUI thread)."""

    mesh_id: str
    vertices_lps: np.ndarray
    normals_lps: np.ndarray


def vessel_mesh_ids(scene: Any, names: Sequence[str]) -> list[str]:
    """The surface meshes of the named segments (segments without one are skipped)."""
    wanted = set(names)
    ids = []
    for seg_id, segmentation in scene.segmentations.items():
        for label, segment in segmentation.segments.items():
            if segment.name in wanted:
                mesh_id = surface_mesh_id(scene, seg_id, label)
                if mesh_id is not None:
                    ids.append(mesh_id)
    return ids


def snapshot_surfaces(scene: Any, mesh_ids: Sequence[str]) -> list[SurfaceSnapshot]:
    shots = []
    for mesh_id in mesh_ids:
        mesh = scene.get(mesh_id)
        vertices = np.array(mesh.vertices, dtype=np.float64)
        normals = vertex_normals(vertices, np.asarray(mesh.faces, dtype=np.int64)).astype(np.float64)
        shots.append(SurfaceSnapshot(mesh_id, vertices, normals))
    return shots


class NearWallSampler:
    """Pressure and speed of the fluid cell nearest to points half a cell inside a wall."""

    def __init__(self, flow: Flow3D) -> None:
        self.flow = flow
        self._cells = np.argwhere(flow.grid.fluid)
        self._tree = cKDTree(self._cells)

    def cells(self, vertices_lps: np.ndarray, normals_lps: np.ndarray) -> np.ndarray:
        inside = vertices_lps - 0.5 * self.flow.grid.cell_mm * normals_lps
        _, nearest = self._tree.query(self.flow.grid.index(inside))
        return self._cells[nearest]

    def sample(self, vertices_lps: np.ndarray, normals_lps: np.ndarray) -> SurfaceSample:
        at = tuple(self.cells(vertices_lps, normals_lps).T)
        lbm = self.flow.lbm
        wss = case3d.wall_shear_pa(self.flow, vertices_lps, normals_lps)
        return SurfaceSample(
            len(vertices_lps),
            wss,
            lbm.pressure_pa[at].astype(np.float64) / PA_PER_MMHG,
            np.linalg.norm(lbm.velocity_m_s[at].astype(np.float64), axis=1),
        )


def sample_surface(flow: Flow3D, vertices_lps: np.ndarray, normals_lps: np.ndarray) -> SurfaceSample:
    """WSS (Pa), pressure (mmHg) and speed (m/s) at each vertex of a vessel surface (outward normals)."""
    return NearWallSampler(flow).sample(vertices_lps, normals_lps)


def run_3d(
    case: FlowCase,
    mask_kji: np.ndarray,
    ijk_to_lps: np.ndarray,
    surfaces: Sequence[SurfaceSnapshot],
    progress: Progress,
    **options: Any,
) -> Flow3DResult:
    """The worker's part: the 3D run, its rows, the surfaces' values and the inlet's streamlines.
    ``options`` go to :func:`surgtwin.core.flow.case3d.run_case_3d`."""
    cell_mm = options.get("cell_mm") or case3d.choose_cell_mm(
        case, mask_kji, ijk_to_lps, options.get("max_cells", case3d.DEFAULT_MAX_CELLS)
    )
    estimated_cells = fluid_volume_mm3(mask_kji, ijk_to_lps) / cell_mm**3
    with numba_threads(1 if estimated_cells < SMALL_LATTICE_CELLS else None):
        flow = case3d.run_case_3d(
            case, mask_kji, ijk_to_lps, **{**options, "cell_mm": cell_mm}, progress=progress
        )
    # the fields are the result: a surface or the streamlines failing is a note, not a lost run
    progress.start("wall shear stress and streamlines", len(surfaces) + 1)
    sampler = NearWallSampler(flow)
    samples, notes = {}, []
    for shot in surfaces:
        try:
            samples[shot.mesh_id] = sampler.sample(shot.vertices_lps, shot.normals_lps)
        except FlowError as exc:
            notes.append(f"mesh {shot.mesh_id}: {exc}")
        progress.advance()
    try:
        lines = case3d.inlet_streamlines(flow, STREAMLINE_COUNT)
    except FlowError as exc:
        lines = []
        notes.append(f"no streamlines: {exc}")
    progress.advance()
    cell_mm = flow.grid.cell_mm
    notes += [n for s in case.stenoses if (n := case3d.unresolved_note(case, s, cell_mm)) is not None]
    return Flow3DResult(
        flow,
        case3d.summary(flow),
        case3d.end_rows(flow),
        case3d.stenosis_drops_pa(flow, case),
        case3d.branch_pressures_3d_pa(flow, case),
        lines,
        samples,
        notes,
    )


@contextmanager
def numba_threads(count: int | None) -> Iterator[None]:
    """numba's thread count on this thread (it is per thread) for the block; None: unchanged.
    Restored afterwards: worker threads are pooled and run other tasks later."""
    if count is None:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def value_range(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    """The colour range over ``arrays``: 1st to 99th percentile of the finite values."""
    values = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, RANGE_PERCENTILES))
    return low, max(high, low + 1e-9)


@dataclass
class _Swap:
    """A case actor drawing a coloured copy of its polydata."""

    actor: vtkActor
    own_input: vtkPolyData
    preview: vtkPolyData


class Flow3DOverlay:
    """What the 3D flow adds to a View3D (``view.scene_renderer``, ``view.interactor``)."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.mode = "none"
        self.surface_range: tuple[float, float] | None = None
        self.streamline_range: tuple[float, float] | None = None
        self.streamline_actor: vtkActor | None = None
        self.surface_bar: vtkScalarBarActor | None = None
        self.streamline_bar: vtkScalarBarActor | None = None
        self._swaps: dict[str, _Swap] = {}
        self._faded: dict[str, vtkActor] = {}
        self._renderer: Any = None
        self._surface_lut = rainbow()
        self._streamline_lut = rainbow()

    @property
    def coloured_mesh_ids(self) -> list[str]:
        return list(self._swaps)

    # --- surfaces ------------------------------------------------------------------------
    def colour_surfaces(self, mode: str, values_by_mesh: dict[str, np.ndarray]) -> list[str]:
        """Colour each mesh's actor by its per-vertex values; returns the mesh ids coloured (a mesh
        the view does not show, or shows with another vertex count, is skipped)."""
        self.clear_surfaces(redraw=False)
        if mode != "none" and mode not in SURFACE_MODES:
            raise ValueError(f"colour by one of none, {', '.join(SURFACE_MODES)}, not {mode!r}")
        self.mode = mode
        renderer = self._scene_renderer()
        if mode == "none" or renderer is None:
            self._redraw()
            return []
        shown = {}
        for mesh_id, values in values_by_mesh.items():
            if mesh_id not in renderer.mesh_ids():
                continue
            actor = renderer.actor(mesh_id)
            own = actor.GetMapper().GetInput()
            if own is None or own.GetNumberOfPoints() != len(values):
                continue
            shown[mesh_id] = (actor, own, values)
        if not shown:
            self._redraw()
            return []
        low, high = value_range([v for _, _, v in shown.values()])
        self.surface_range = (low, high)
        for mesh_id, (actor, own, values) in shown.items():
            preview = vtkPolyData()
            preview.ShallowCopy(own)  # shares points and cells; only the scalars are its own
            scalars = numpy_to_vtk(np.nan_to_num(values, nan=low).astype(np.float32), deep=True)
            scalars.SetName(mode)
            preview.GetPointData().SetScalars(scalars)
            mapper = actor.GetMapper()
            mapper.SetInputData(preview)
            mapper.SetLookupTable(self._surface_lut)
            mapper.SetScalarModeToUsePointData()
            mapper.SetColorModeToMapScalars()
            mapper.SetScalarRange(low, high)
            mapper.ScalarVisibilityOn()
            self._swaps[mesh_id] = _Swap(actor, own, preview)
        self.surface_bar = _scalar_bar(
            self._surface_lut, f"{MODE_LABELS[mode]}\n({SURFACE_MODES[mode][1]})", right=True
        )
        self._add(self.surface_bar)
        self._fade(self.streamline_actor is not None)
        self._redraw()
        return list(shown)

    def clear_surfaces(self, redraw: bool = True) -> None:
        """Each coloured actor draws its own polydata again, in the segment's colour."""
        self._fade(False)
        for swap in self._swaps.values():
            mapper = swap.actor.GetMapper()
            if mapper.GetInput() is swap.preview:  # else the scene replaced it: that one stays
                mapper.SetInputData(swap.own_input)
            mapper.ScalarVisibilityOff()
        self._swaps = {}
        self._drop("surface_bar")
        self.mode, self.surface_range = "none", None
        if redraw:
            self._redraw()

    # --- streamlines -----------------------------------------------------------------------
    def show_streamlines(self, lines: Sequence[Streamline]) -> int:
        """Draw the streamlines (two points or more) coloured by speed; returns how many."""
        self.clear_streamlines(redraw=False)
        drawn = [line for line in lines if len(line.points_lps) > 1]
        renderer = self._scene_renderer()
        if not drawn or renderer is None:
            self._redraw()
            return 0
        speed = np.concatenate([line.speed_m_s for line in drawn])
        self.streamline_range = (float(speed.min()), max(float(speed.max()), float(speed.min()) + 1e-9))
        self.streamline_actor = polyline_actor(
            [line.points_lps for line in drawn], speed, self._streamline_lut, self.streamline_range
        )
        self._add(self.streamline_actor)
        self.streamline_bar = _scalar_bar(self._streamline_lut, "streamlines\n(m/s)", right=False)
        self._add(self.streamline_bar)
        self._fade(True)
        self._redraw()
        return len(drawn)

    def clear_streamlines(self, redraw: bool = True) -> None:
        self._drop("streamline_actor")
        self._drop("streamline_bar")
        self._fade(False)
        self.streamline_range = None
        if redraw:
            self._redraw()

    def clear(self) -> None:
        self.clear_streamlines(redraw=False)
        self.clear_surfaces(redraw=False)
        self._renderer = None
        self._redraw()

    def legend(self) -> str:
        parts = []
        if self.surface_range is not None and self.mode in SURFACE_MODES:
            title, unit = SURFACE_MODES[self.mode]
            parts.append(
                f"surface {title}: blue {self.surface_range[0]:.3g} → red {self.surface_range[1]:.3g} {unit}"
            )
        if self.streamline_range is not None:
            low, high = self.streamline_range
            parts.append(f"streamlines: blue {low:.3g} → red {high:.3g} m/s")
        return "; ".join(parts)

    # --- plumbing --------------------------------------------------------------------------
    def _scene_renderer(self) -> Any:
        return getattr(self.view, "scene_renderer", None)

    def _fade(self, on: bool) -> None:
        """See-through coloured vessels while streamlines show (the view's own opacity back after)."""
        renderer = self._scene_renderer()
        for mesh_id, actor in self._faded.items():
            if renderer is not None and mesh_id in renderer.mesh_ids():
                actor.GetProperty().SetOpacity(renderer.display_of(mesh_id)[2])
        self._faded = {}
        if not on or renderer is None:
            return
        for mesh_id, swap in self._swaps.items():
            prop = swap.actor.GetProperty()
            if prop.GetOpacity() > SEE_THROUGH_OPACITY:
                prop.SetOpacity(SEE_THROUGH_OPACITY)
                self._faded[mesh_id] = swap.actor

    def _add(self, prop: Any) -> None:
        renderer = self._scene_renderer()
        self._renderer = renderer.renderer
        self._renderer.AddViewProp(prop)

    def _drop(self, name: str) -> None:
        prop = getattr(self, name)
        if prop is not None and self._renderer is not None:
            self._renderer.RemoveViewProp(prop)
        setattr(self, name, None)

    def _redraw(self) -> None:
        interactor = getattr(self.view, "interactor", None)
        if interactor is not None and self.view.isVisible():
            interactor.render()


def rainbow() -> vtkLookupTable:
    lut = vtkLookupTable()
    lut.SetHueRange(0.667, 0.0)  # blue low, red high (as the centreline and the deformation preview)
    lut.Build()
    return lut


def _scalar_bar(lut: vtkLookupTable, title: str, right: bool) -> vtkScalarBarActor:
    bar = vtkScalarBarActor()
    bar.SetLookupTable(lut)
    bar.SetTitle(title)
    bar.SetNumberOfLabels(3)
    bar.SetMaximumWidthInPixels(70)
    bar.SetMaximumHeightInPixels(220)
    bar.UnconstrainedFontSizeOn()  # else the title shrinks to the bar's width: unreadable
    bar.GetTitleTextProperty().SetFontSize(12)
    bar.GetLabelTextProperty().SetFontSize(11)
    bar.GetPositionCoordinate().SetValue(0.87 if right else 0.05, 0.1)
    bar.SetWidth(0.1)
    bar.SetHeight(0.6)
    bar.SetPickable(False)
    return bar


def polyline_actor(
    lines: Sequence[np.ndarray],
    values: np.ndarray,
    lut: vtkLookupTable,
    value_range: tuple[float, float],
    width_px: float = STREAMLINE_WIDTH_PX,
) -> vtkActor:
    """One polyline per point list, its points coloured by ``values`` (concatenated)."""
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.concatenate(lines).astype(np.float64), deep=True))
    cells = vtkCellArray()
    start = 0
    for line in lines:
        polyline = vtkPolyLine()
        ids = polyline.GetPointIds()
        ids.SetNumberOfIds(len(line))
        for n in range(len(line)):
            ids.SetId(n, start + n)
        cells.InsertNextCell(polyline)
        start += len(line)
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetLines(cells)
    scalars = numpy_to_vtk(values.astype(np.float64), deep=True)
    scalars.SetName("values")
    poly.GetPointData().SetScalars(scalars)
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(poly)
    mapper.SetLookupTable(lut)
    mapper.SetScalarRange(*value_range)
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.SetPickable(False)  # an overlay: picks go to the case's meshes
    prop = actor.GetProperty()
    prop.SetLineWidth(width_px)
    prop.SetRenderLinesAsTubes(True)
    return actor
