"""The vessel lumen as a lattice for the 3D flow: an isotropic grid, cut flat at its ends.

- :func:`resample_lumen` puts the segment's mask on cubic cells of the chosen size, in the
  image's own axis directions (no rotation, so a straight vessel along an image axis stays
  straight on the lattice). The mask is smoothed by half a voxel before thresholding so a
  finer lattice gets smooth walls, not the image's staircase.
- :func:`cut_ends` cuts each vessel end (from the centreline tree) with a plane normal to the
  centreline, one end radius short of where the centreline stops (itself about a radius short
  of where the segment stops), and marks the layer of fluid
  cells against the cut as an open boundary: the inlet with the given inflow, outlets with
  their share of the flow, except the outlet with the largest flow, which holds the reference
  pressure (0). A staircased oblique plane is fine: each boundary cell extrapolates from its
  neighbour one step inwards along the lattice axis closest to the plane's normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from surgtwin.core.flow.centerline import VesselTree
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.lbm import OpenBoundary
from surgtwin.core.flow.lbm_kernels import VELOCITIES

EXTENSION_RADII = 4.0  # straight flow extensions at every end, in end radii
MAX_GRID_CELLS = 60_000_000  # the result fields cover the box (16 bytes a cell); populations, fluid only


@dataclass
class LumenGrid:
    fluid: np.ndarray  # (n0, n1, n2) bool
    grid_to_lps: np.ndarray  # 4x4: (index along axis 0, 1, 2, 1) -> LPS mm
    cell_mm: float

    def lps(self, cells: np.ndarray) -> np.ndarray:
        """LPS millimetres of cell centres given as (n, 3) indices."""
        cells = np.asarray(cells, dtype=np.float64).reshape(-1, 3)
        return cells @ self.grid_to_lps[:3, :3].T + self.grid_to_lps[:3, 3]

    def index(self, points_lps: np.ndarray) -> np.ndarray:
        """Continuous grid indices of LPS points (n, 3)."""
        inverse = np.linalg.inv(self.grid_to_lps)
        points = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
        return points @ inverse[:3, :3].T + inverse[:3, 3]


def fluid_volume_mm3(mask_kji: np.ndarray, ijk_to_lps: np.ndarray) -> float:
    return float(np.count_nonzero(mask_kji)) * abs(float(np.linalg.det(np.asarray(ijk_to_lps)[:3, :3])))


def resample_lumen(
    mask_kji: np.ndarray,
    ijk_to_lps: np.ndarray,
    cell_mm: float,
    include_lps: np.ndarray | None = None,
    include_mm: float = 0.0,
) -> LumenGrid:
    """The mask on cubic cells of ``cell_mm`` along the image's axis directions; the box also
    holds every point of ``include_lps`` with ``include_mm`` around it (room for the ends'
    flow extensions)."""
    if not cell_mm > 0:
        raise FlowError("The 3D cell size must be positive (mm).")
    margin = 2
    mask = np.asarray(mask_kji, dtype=bool)
    found = np.argwhere(mask)
    if found.size == 0:
        raise FlowError("The vessel segment is empty: paint or segment the vessel first.")
    kji_to_lps = np.asarray(ijk_to_lps, dtype=np.float64)[:, [2, 1, 0, 3]]
    spacing = np.linalg.norm(kji_to_lps[:3, :3], axis=0)
    lo, hi = found.min(axis=0) - 1, found.max(axis=0) + 1
    if include_lps is not None and len(include_lps):
        to_index = np.linalg.inv(kji_to_lps)
        points = (
            np.asarray(include_lps, dtype=np.float64).reshape(-1, 3) @ to_index[:3, :3].T + to_index[:3, 3]
        )
        pad = include_mm / spacing
        lo = np.minimum(lo, np.floor(points.min(axis=0) - pad).astype(int))
        hi = np.maximum(hi, np.ceil(points.max(axis=0) + pad).astype(int))
    shape = np.ceil((hi - lo) * spacing / cell_mm).astype(int) + 1 + 2 * margin
    if int(np.prod(shape)) > MAX_GRID_CELLS:
        raise FlowError(
            f"A {cell_mm:.2f} mm lattice over this vessel would need {int(np.prod(shape)):,} cells: "
            "choose larger cells or fewer vessel segments."
        )
    directions = kji_to_lps[:3, :3] / spacing
    grid_to_lps = np.eye(4)
    grid_to_lps[:3, :3] = directions * cell_mm
    grid_to_lps[:3, 3] = (
        kji_to_lps[:3, :3] @ lo + kji_to_lps[:3, 3] - directions @ np.full(3, margin * cell_mm)
    )
    to_mask = np.linalg.inv(kji_to_lps) @ grid_to_lps  # grid index -> mask index
    crop = tuple(slice(max(a, 0), b + 1) for a, b in zip(lo, hi, strict=True))
    start = np.array([s.start for s in crop], dtype=np.float64)
    smooth = ndimage.gaussian_filter(mask[crop].astype(np.float32), sigma=0.5)
    sampled = ndimage.affine_transform(
        smooth, to_mask[:3, :3], offset=to_mask[:3, 3] - start, output_shape=tuple(shape), order=1, cval=0.0
    )
    return LumenGrid(sampled > 0.5, grid_to_lps, float(cell_mm))


@dataclass
class VesselEnd:
    """One open end of the lattice: where it is, which way is out, and its boundary cells."""

    name: str  # "inlet", "outlet 1", ...
    branch: int
    centre_lps: np.ndarray  # (3,) centre of the cut
    outward: np.ndarray  # (3,) unit normal pointing out of the vessel
    radius_mm: float
    cells: np.ndarray  # (n, 3) grid indices of the boundary layer
    step: tuple[int, int, int]  # lattice axis step pointing out (boundary cell -> cut cell)
    inward: np.ndarray  # (n, 3) per cell: the step to the fluid cell it extrapolates from
    area_mm2: float  # cross-section of the boundary layer normal to ``outward``
    flow_m3_s: float | None  # prescribed (into the vessel at the inlet, out at outlets); None: pressure


@dataclass
class LumenDomain:
    grid: LumenGrid
    ends: list[VesselEnd]

    def boundaries(self) -> list[OpenBoundary]:
        """The ends as lattice boundaries: parabolic velocity profiles carrying their flow, or a
        pressure outlet."""
        result = []
        for end in self.ends:
            velocity = None if end.flow_m3_s is None else _parabolic_velocity(self.grid, end)
            result.append(OpenBoundary(end.cells, end.inward, velocity))
        return result


def _parabolic_velocity(grid: LumenGrid, end: VesselEnd) -> np.ndarray:
    """Velocity (m/s, components along the grid axes) per boundary cell: a parabola over the cut
    carrying exactly the end's flow.

    The velocity points along the lattice step, not the plane's normal: then no mass crosses the
    side faces of the staircase the layer makes across an oblique vessel, so the flux is the
    sum over the innermost cell of each lattice column; the flow turns along the vessel within
    a cell or two.
    """
    if end.flow_m3_s is None:
        raise FlowError(f"The {end.name} holds the pressure: it has no prescribed flow.")
    points = grid.lps(end.cells)
    centre = points.mean(axis=0)
    offset = points - centre
    lateral = offset - np.outer(offset @ end.outward, end.outward)
    radius = np.sqrt(end.area_mm2 / np.pi)
    shape = np.clip(1.0 - np.sum(lateral**2, axis=1) / radius**2, 0.05, None)
    cell_m2 = (grid.cell_mm * 1e-3) ** 2
    # An oblique cut's layer is one to two cells deep along the step: each lattice column
    # passes on only what its innermost cell carries, so the flux sums over those.
    axis = int(np.flatnonzero(end.step)[0])
    depth = end.cells[:, axis] * int(np.sum(end.step))
    columns = np.delete(end.cells, axis, axis=1)
    order = np.lexsort((depth, columns[:, 1], columns[:, 0]))  # innermost first in each column
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(np.diff(columns[order], axis=0) != 0, axis=1)
    innermost = order[first]
    speed = shape * end.flow_m3_s / (cell_m2 * shape[innermost].sum())
    out = np.asarray(end.step, dtype=np.float64)
    return np.outer(speed, -out if end.name == "inlet" else out)


def end_normals(tree: VesselTree) -> list[tuple[str, int, np.ndarray, np.ndarray, float]]:
    """(name, branch, end point, outward unit normal, radius) for the inlet and each outlet.

    Each end is read on the whole inlet-to-outlet path, so a branch shorter than the stretch
    the direction is averaged over borrows its parent's points.
    """

    def path(outlet_branch: int) -> tuple[np.ndarray, np.ndarray]:
        branches = [tree.branches[b] for b in tree.path_to(outlet_branch)]
        return (
            np.concatenate([b.points_lps for b in branches]),
            np.concatenate([b.radius_mm for b in branches]),
        )

    first_outlet = tree.outlet_branches[0] if tree.outlet_branches else 0
    ends = [("inlet", 0, *_end_frame(*path(first_outlet), at_start=True))]
    for n, b in enumerate(tree.outlet_branches, start=1):
        ends.append((f"outlet {n}", b, *_end_frame(*path(b), at_start=False)))
    return ends


def _end_frame(
    points: np.ndarray, radius: np.ndarray, at_start: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    """Where to cut an end, which way is out, and the lumen's radius there.

    The direction is the centreline's mean direction over the stretch from four radii to one
    radius before the end (the very end hooks towards wherever the mask stops, e.g. an image
    edge crossing the vessel obliquely); the cut lies one radius before the end, so its whole
    cross-section is still inside the segment.
    """
    if at_start:
        points, radius = points[::-1], radius[::-1]
    r_end = float(np.median(radius[-5:]))
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    total = float(along[-1])
    far = min(4.0 * r_end, total)
    near = min(r_end, 0.5 * far)
    start = np.array([np.interp(total - far, along, points[:, i]) for i in range(3)])
    stop = np.array([np.interp(total - near, along, points[:, i]) for i in range(3)])
    tangent = stop - start
    norm = float(np.linalg.norm(tangent))
    if norm == 0:
        raise FlowError("A vessel end is too short to tell its direction; check the segment.")
    return stop, tangent / norm, r_end


def cut_ends(grid: LumenGrid, tree: VesselTree, flows_m3_s: dict[str, float | None]) -> LumenDomain:
    """Cut every end of ``tree`` flat, extend it by a straight tube, and mark the boundary layer at
    the tube's far end.

    The extension (EXTENSION_RADII end radii long, the cut's own cross-section) keeps the open
    boundary away from the anatomy: a stenosis near an image edge keeps its jet and pressure
    recovery, and the parabolic profile settles before it reaches the vessel. Readings at an
    end are taken at the cut, on the vessel. ``grid`` must hold
    :func:`extension_tips`. ``flows_m3_s`` maps end names ("inlet",
    "outlet 1", ...) to their flow; the one outlet given None holds the reference pressure.
    """
    fluid = grid.fluid.copy()
    frames = end_normals(tree)
    for _name, _branch, centre, outward, radius in frames:
        fluid[_cap_region(grid, centre, outward, radius)] = False
    beyond_of: dict[str, np.ndarray] = {}
    for name, _branch, centre, outward, radius in frames:
        tube_radius = _cut_radius(grid, fluid, centre, outward, radius)
        length = EXTENSION_RADII * radius
        fluid |= _cap_region(grid, centre, outward, tube_radius, reach=length, lateral=tube_radius)
        beyond_of[name] = _cap_region(grid, centre + length * outward, outward, tube_radius)
    fluid = _largest_piece(fluid)
    ends: list[VesselEnd] = []
    boundary_any = np.zeros_like(fluid)
    directions = grid.grid_to_lps[:3, :3] / grid.cell_mm
    for name, branch, centre, outward, radius in frames:
        axis = int(np.argmax(np.abs(directions.T @ outward)))
        sign = 1 if float(directions[:, axis] @ outward) > 0 else -1
        step = [0, 0, 0]
        step[axis] = sign
        layer = fluid & _touches(beyond_of[name]) & ~boundary_any
        cells, inward = _with_inner_cells(fluid & ~layer, np.argwhere(layer), np.asarray(step))
        if len(cells) < 3:
            raise FlowError(
                f"The vessel's {name} is too narrow for {grid.cell_mm:.2f} mm cells ({len(cells)} cells "
                "across its cut): choose smaller cells."
            )
        boundary_any[tuple(cells.T)] = True
        cos = abs(float(directions[:, axis] @ outward))
        area = len(cells) * grid.cell_mm**2 / cos
        flow = flows_m3_s.get(name)
        ends.append(VesselEnd(name, branch, centre, outward, radius, cells, tuple(step), inward, area, flow))  # type: ignore[arg-type]
    pressure_ends = [e for e in ends if e.flow_m3_s is None]
    if len(pressure_ends) != 1 or pressure_ends[0].name == "inlet":
        raise FlowError("Exactly one outlet must hold the reference pressure.")
    return LumenDomain(LumenGrid(fluid, grid.grid_to_lps, grid.cell_mm), ends)


def extension_tips(tree: VesselTree) -> tuple[np.ndarray, float]:
    """The far ends of the flow extensions (LPS mm) and how much room they need around them."""
    frames = end_normals(tree)
    tips = np.array([centre + EXTENSION_RADII * radius * outward for _, _, centre, outward, radius in frames])
    return tips, 2.0 * max(frame[4] for frame in frames) + 2.0


def _cut_radius(
    grid: LumenGrid, fluid: np.ndarray, centre: np.ndarray, outward: np.ndarray, radius: float
) -> float:
    """Radius of the circle with the lumen's cross-section area just inside the cut: fluid volume
    of a slab four cells thick / its thickness (a thin slab aliases with the lattice planes)."""
    thickness = 4.0 * grid.cell_mm
    slab = _cap_region(
        grid, centre - thickness * outward, outward, radius, reach=thickness, lateral=1.6 * radius
    )
    area = float(np.count_nonzero(fluid & slab)) * grid.cell_mm**3 / thickness
    return max(float(np.sqrt(area / np.pi)), 1.5 * grid.cell_mm) if area > 0 else radius


def _touches(region: np.ndarray) -> np.ndarray:
    """Cells with a D3Q19 neighbour in ``region``: every cell that would pull from it."""
    out = np.zeros_like(region)
    for offset in VELOCITIES[1:]:
        out |= np.roll(region, tuple(-int(v) for v in offset), axis=(0, 1, 2))  # out[c] = region[c + offset]
    return out


def _with_inner_cells(
    interior: np.ndarray, cells: np.ndarray, step: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The boundary cells that have an ``interior`` cell 1 to 3 steps inwards, and those steps."""
    keep = np.zeros(len(cells), dtype=bool)
    inward = np.zeros((len(cells), 3), dtype=np.int64)
    for m in (1, 2, 3):
        candidate = cells - m * step
        inside = np.all((candidate >= 0) & (candidate < interior.shape), axis=1)
        found = ~keep & inside
        found[found] = interior[tuple(candidate[found].T)]
        inward[found] = -m * step
        keep |= found
    return cells[keep], inward[keep]


def _cap_region(
    grid: LumenGrid,
    centre: np.ndarray,
    outward: np.ndarray,
    radius: float,
    *,
    reach: float | None = None,
    lateral: float | None = None,
) -> np.ndarray:
    """Cells beyond the plane through ``centre`` (normal ``outward``), at most ``reach`` beyond it
    (default 3 radii and 3 cells) and within ``lateral`` of the axis (default 1.6 radii + 2 cells)."""
    reach = 3.0 * radius + 3.0 * grid.cell_mm if reach is None else reach
    lateral = 1.6 * radius + 2.0 * grid.cell_mm if lateral is None else lateral
    c = grid.index(centre)[0]
    span = int(np.ceil(max(reach, lateral) / grid.cell_mm)) + 1
    lo = np.maximum(np.floor(c).astype(int) - span, 0)
    hi = np.minimum(np.floor(c).astype(int) + span + 1, grid.fluid.shape)
    region = np.zeros(grid.fluid.shape, dtype=bool)
    if np.any(hi <= lo):
        return region
    idx = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij"), -1)
    offset = grid.lps(idx.reshape(-1, 3)) - centre
    along = offset @ outward
    distance = np.linalg.norm(offset - np.outer(along, outward), axis=1)
    inside = (along > 0) & (along <= reach) & (distance <= lateral)
    region[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = inside.reshape(idx.shape[:3])
    return region


def _largest_piece(fluid: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(fluid)
    if count == 0:
        raise FlowError("Nothing of the vessel is left on the lattice: choose smaller cells.")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))
