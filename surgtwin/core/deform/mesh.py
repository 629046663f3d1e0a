"""Simulation meshes: sparse hexahedral voxel grids of a segment, in metres on the patient axes.

A segment's mesh is the set of cubic cells of a grid aligned with the patient LPS axes whose
volume is at least half inside the segment (:data:`KEEP_FRACTION`), measured by sampling the
label mask on a regular sub-grid of each cell; only the largest face-connected piece is kept,
so the simulated body is one solid. Neighbouring cells share their nodes. The grid is anchored
at multiples of the cell size in LPS, so meshes of different segments at one cell size line up.
No third-party mesher is involved (licence-free, and robust for any label map).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from surgtwin.core.deform.errors import SimulationError

KEEP_FRACTION = 0.5  # a cell is kept when at least this fraction of its volume is in the segment
MM = 1e-3  # metres per millimetre

# VTK_HEXAHEDRON corner order, as (x, y, z) offsets in cells.
HEX_CORNERS = np.array(
    [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)], dtype=np.int64
)
# The six faces of a hexahedron, counter-clockwise seen from outside (outward normals).
HEX_FACES = np.array(
    [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)], dtype=np.int64
)

# Implicit steps per second (dt 1/60 s, CG to 1e-3) the solver reached against element count:
# benchmarks/deform_speed.py on the 2-core development machine, one thread, 2026-11-28, block
# Jacobi below 2,000 elements and the two-level preconditioner above, as "auto" picks
# (docs/benchmarks.md). Re-measure and replace the numbers on other hardware.
RATE_TABLE: tuple[tuple[int, float], ...] = (
    (1_000, 217.8),
    (4_913, 40.8),
    (19_683, 6.4),
    (50_653, 1.6),
)


@dataclass
class HexMesh:
    """Hexahedral mesh: ``nodes`` (N, 3) float64 rest positions in metres (patient LPS axes);
    ``elements`` (E, 8) int64 in VTK_HEXAHEDRON corner order; ``cell_m`` the cell edge in metres
    (for rectangular cells, the smallest edge)."""

    nodes: np.ndarray
    elements: np.ndarray
    cell_m: float

    def __post_init__(self) -> None:
        self.nodes = np.ascontiguousarray(self.nodes, dtype=np.float64)
        self.elements = np.ascontiguousarray(self.elements, dtype=np.int64)
        if self.nodes.ndim != 2 or self.nodes.shape[1] != 3:
            raise SimulationError("mesh nodes must be an (N, 3) array")
        if self.elements.ndim != 2 or self.elements.shape[1] != 8:
            raise SimulationError("mesh elements must be an (E, 8) array of node indices")
        if self.elements.size and (self.elements.min() < 0 or self.elements.max() >= len(self.nodes)):
            raise SimulationError("mesh elements refer to nodes that do not exist")
        self.cell_m = float(self.cell_m)

    @property
    def node_count(self) -> int:
        return int(len(self.nodes))

    @property
    def element_count(self) -> int:
        return int(len(self.elements))

    def cell_extents_m(self) -> np.ndarray:
        """(E, 3) edge lengths of each (axis-aligned) cell: corner 6 minus corner 0."""
        return self.nodes[self.elements[:, 6]] - self.nodes[self.elements[:, 0]]

    def volume_m3(self) -> float:
        return float(np.prod(self.cell_extents_m(), axis=1).sum())


# --- building -----------------------------------------------------------------------------------
def box_mesh(
    size_m: tuple[float, float, float],
    cells: tuple[int, int, int],
    origin_m: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> HexMesh:
    """A solid box of ``cells`` (nx, ny, nz) hexahedra spanning ``size_m`` from ``origin_m``.

    Cells may be rectangular (size/cells per axis); ``cell_m`` is then the smallest edge.
    """
    size = np.asarray(size_m, dtype=np.float64)
    counts = np.asarray(cells, dtype=np.int64)
    if size.shape != (3,) or counts.shape != (3,) or np.any(size <= 0) or np.any(counts < 1):
        raise SimulationError(f"a box needs three positive sizes and cell counts, got {size_m} and {cells}")
    cell_ijk = np.argwhere(np.ones(tuple(int(c) for c in counts), dtype=bool))
    step = size / counts
    return _grid_mesh(cell_ijk, np.asarray(origin_m, dtype=np.float64), step)


def hex_mesh_from_mask(mask_kji: np.ndarray, ijk_to_lps: np.ndarray, cell_mm: float) -> HexMesh:
    """The hexahedral mesh of a segment: ``mask_kji`` (bool, [k, j, i]) on the grid ``ijk_to_lps``
    (4×4, mm), cubic cells of ``cell_mm`` on the LPS axes (see the module docstring for the rule)."""
    origin_mm, cell_ijk = kept_cells(mask_kji, ijk_to_lps, cell_mm)
    if len(cell_ijk) == 0:
        raise SimulationError(
            f"no {cell_mm:g} mm cell is at least half inside the segment; it is too thin or small "
            "for this cell size (pick a smaller cell size or a larger element budget)"
        )
    return _grid_mesh(cell_ijk, origin_mm * MM, np.full(3, cell_mm * MM))


def _grid_mesh(cell_ijk: np.ndarray, origin_m: np.ndarray, step_m: np.ndarray) -> HexMesh:
    """Hexahedra at integer cell positions ``cell_ijk`` (E, 3) (x, y, z), sharing their nodes."""
    corners = cell_ijk[:, None, :] + HEX_CORNERS[None, :, :]  # (E, 8, 3) node grid positions
    span = corners.reshape(-1, 3).max(axis=0) + 1
    keys = (corners[..., 0] * span[1] + corners[..., 1]) * span[2] + corners[..., 2]
    unique_keys, inverse = np.unique(keys.ravel(), return_inverse=True)
    node_ijk = np.stack(
        [unique_keys // (span[1] * span[2]), (unique_keys // span[2]) % span[1], unique_keys % span[2]],
        axis=1,
    )
    nodes = origin_m[None, :] + node_ijk * step_m[None, :]
    elements = inverse.reshape(-1, 8).astype(np.int64)
    return HexMesh(nodes, elements, float(step_m.min()))


def kept_cells(mask_kji: np.ndarray, ijk_to_lps: np.ndarray, cell_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The grid origin (3,) in LPS mm and the integer (x, y, z) positions (E, 3) of the cells kept
    for ``mask_kji`` at ``cell_mm``: at least :data:`KEEP_FRACTION` inside, largest piece only."""
    mask = np.asarray(mask_kji, dtype=bool)
    affine = np.asarray(ijk_to_lps, dtype=np.float64)
    if mask.ndim != 3:
        raise SimulationError("a segment mask must be a 3D array [k, j, i]")
    if affine.shape != (4, 4) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise SimulationError("ijk_to_lps must be an invertible 4x4 matrix")
    if not (isinstance(cell_mm, int | float) and math.isfinite(cell_mm) and cell_mm > 0):
        raise SimulationError(f"the cell size must be a positive number of millimetres, got {cell_mm!r}")
    kji = np.argwhere(mask)
    if len(kji) == 0:
        raise SimulationError("the segment is empty: there is nothing to mesh")
    h = float(cell_mm)
    linear, shift = affine[:3, :3], affine[:3, 3]
    centres = kji[:, ::-1] @ linear.T + shift  # voxel centres, LPS mm
    half_voxel = 0.5 * np.abs(linear).sum(axis=1)  # half extent of a voxel along each LPS axis
    origin = np.floor((centres.min(axis=0) - half_voxel) / h) * h
    shape = np.ceil((centres.max(axis=0) + half_voxel - origin) / h).astype(np.int64) + 1

    # Candidate cells: those near a voxel of the segment (a cell overlapping a voxel lies within
    # the voxel's half extent of its centre's cell).
    near = np.zeros(tuple(int(s) for s in shape), dtype=bool)
    centre_cells = np.clip(np.floor((centres - origin) / h).astype(np.int64), 0, shape - 1)
    near[centre_cells[:, 0], centre_cells[:, 1], centre_cells[:, 2]] = True
    reach = int(math.ceil(float(half_voxel.max()) / h))
    near = ndimage.maximum_filter(near, size=2 * reach + 1, mode="constant", cval=False)
    candidates = np.argwhere(near)

    fraction = _inside_fraction(mask, affine, origin, h, candidates)
    kept = np.zeros_like(near)
    chosen = candidates[fraction >= KEEP_FRACTION]
    kept[chosen[:, 0], chosen[:, 1], chosen[:, 2]] = True
    return origin, np.argwhere(_largest_piece(kept))


def _inside_fraction(
    mask: np.ndarray, affine: np.ndarray, origin: np.ndarray, h: float, cells: np.ndarray
) -> np.ndarray:
    """Fraction of each cell's sub-sample points that fall in a voxel of ``mask`` (nearest voxel)."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    per_axis = int(min(8, max(2, math.ceil(h / float(spacing.min())) + 1)))  # finer than a voxel
    offsets_1d = (np.arange(per_axis) + 0.5) / per_axis * h
    offsets = np.stack(np.meshgrid(offsets_1d, offsets_1d, offsets_1d, indexing="ij"), -1).reshape(-1, 3)
    to_ijk = np.linalg.inv(affine)
    shape_ijk = np.array(mask.shape[::-1])
    fraction = np.empty(len(cells))
    chunk = max(1, 2_000_000 // len(offsets))
    for start in range(0, len(cells), chunk):
        corner = origin + cells[start : start + chunk] * h  # (C, 3)
        points = corner[:, None, :] + offsets[None, :, :]  # (C, S, 3) LPS mm
        ijk = np.rint(points @ to_ijk[:3, :3].T + to_ijk[:3, 3]).astype(np.int64)
        inside_grid = np.all((ijk >= 0) & (ijk < shape_ijk), axis=-1)
        hit = np.zeros(inside_grid.shape, dtype=bool)
        i, j, k = ijk[inside_grid].T
        hit[inside_grid] = mask[k, j, i]
        fraction[start : start + chunk] = hit.mean(axis=1)
    return fraction


def _largest_piece(kept: np.ndarray) -> np.ndarray:
    """The largest face-connected (6-neighbour) component of ``kept``."""
    labels, count = ndimage.label(kept)
    if count <= 1:
        return kept
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


# --- sizing -------------------------------------------------------------------------------------
def cell_size_for_budget(mask_kji: np.ndarray, ijk_to_lps: np.ndarray, max_elements: int) -> float:
    """The smallest cell size (mm, to within 1 %) whose mesh of the segment has at most
    ``max_elements`` elements (and at least one)."""
    if isinstance(max_elements, bool) or not isinstance(max_elements, int | np.integer) or max_elements < 1:
        raise SimulationError(
            f"the element budget must be a whole number of at least 1, got {max_elements!r}"
        )
    mask = np.asarray(mask_kji, dtype=bool)
    voxels = int(np.count_nonzero(mask))
    if voxels == 0:
        raise SimulationError("the segment is empty: there is nothing to mesh")
    volume_mm3 = voxels * abs(float(np.linalg.det(np.asarray(ijk_to_lps, dtype=np.float64)[:3, :3])))

    def count(h: float) -> int:
        return len(kept_cells(mask, ijk_to_lps, h)[1])

    h = (volume_mm3 / int(max_elements)) ** (1.0 / 3.0)
    fits: float | None = None  # smallest size known to fit
    too_fine: float | None = None  # largest size known to give too many elements
    too_coarse: float | None = None  # smallest size known to keep no cell at all
    for _ in range(60):  # bracket the answer between too_fine and fits
        n = count(h)
        if 1 <= n <= max_elements:
            fits = h if fits is None else min(fits, h)
            if too_fine is not None:
                break
            h /= 1.05
        elif n > max_elements:
            too_fine = h if too_fine is None else max(too_fine, h)
            if fits is not None:
                break
            h *= max(1.01, (n / max_elements) ** (1.0 / 3.0))
            if too_coarse is not None and h >= too_coarse:
                h = math.sqrt(too_fine * too_coarse)
        else:
            too_coarse = h if too_coarse is None else min(too_coarse, h)
            h = h / 1.5 if too_fine is None else math.sqrt(too_fine * too_coarse)
    if fits is None:
        raise SimulationError(
            f"no cell size gives between 1 and {max_elements} elements for this segment "
            "(it is too thin or too small to mesh at this budget)"
        )
    if too_fine is None:
        return fits
    while fits / too_fine > 1.01:  # bisect on a log scale
        middle = math.sqrt(fits * too_fine)
        n = count(middle)
        if 1 <= n <= max_elements:
            fits = middle
        else:
            too_fine = middle
    return fits


def elements_for_rate(rate_hz: float, table: tuple[tuple[int, float], ...] = RATE_TABLE) -> int:
    """The element count at which the solver runs ``rate_hz`` steps per second, interpolated
    log-log in ``table`` ((elements, steps per second), ascending elements), extrapolated at
    the ends by the outermost segment's slope."""
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | float) or not math.isfinite(rate_hz):
        raise SimulationError(f"the simulation rate must be a number of steps per second, got {rate_hz!r}")
    if rate_hz <= 0:
        raise SimulationError(f"the simulation rate must be above 0 Hz, got {rate_hz:g} Hz")
    if len(table) < 2:
        raise SimulationError("a rate table needs at least two (elements, steps per second) rows")
    log_n = np.log([float(n) for n, _ in table])
    log_rate = np.log([float(r) for _, r in table])  # falls as the element count grows
    target = math.log(rate_hz)
    a = int(np.clip(np.searchsorted(-log_rate, -target) - 1, 0, len(table) - 2))
    slope = (log_n[a + 1] - log_n[a]) / (log_rate[a + 1] - log_rate[a])
    return max(1, int(round(math.exp(log_n[a] + slope * (target - log_rate[a])))))


# --- queries ------------------------------------------------------------------------------------
def boundary_faces(mesh: HexMesh) -> np.ndarray:
    """(F, 4) node indices of the quads that belong to one element only, counter-clockwise seen
    from outside."""
    faces = mesh.elements[:, HEX_FACES].reshape(-1, 4)
    key = np.sort(faces, axis=1)
    _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
    return faces[np.sort(first[counts == 1])]


def surface_nodes(mesh: HexMesh) -> np.ndarray:
    """(N,) bool: the nodes on the boundary faces."""
    on_surface = np.zeros(mesh.node_count, dtype=bool)
    on_surface[boundary_faces(mesh).ravel()] = True
    return on_surface


def nodes_touching(
    mesh: HexMesh, other_mask_kji: np.ndarray, ijk_to_lps: np.ndarray, distance_mm: float
) -> np.ndarray:
    """(N,) bool: nodes within ``distance_mm`` of the other segment (e.g. bone), measured to the
    centres of its voxels, or inside one of its voxels."""
    other = np.asarray(other_mask_kji, dtype=bool)
    affine = np.asarray(ijk_to_lps, dtype=np.float64)
    if other.ndim != 3 or affine.shape != (4, 4):
        raise SimulationError("the anchor segment needs a 3D mask and a 4x4 ijk_to_lps")
    if not math.isfinite(distance_mm) or distance_mm < 0:
        raise SimulationError(f"the contact distance must be 0 mm or more, got {distance_mm!r}")
    touching = np.zeros(mesh.node_count, dtype=bool)
    if not other.any():
        return touching
    nodes_mm = mesh.nodes / MM
    # a node inside the other segment touches it at any distance
    ijk = np.rint((nodes_mm - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T).astype(np.int64)
    in_grid = np.all((ijk >= 0) & (ijk < np.array(other.shape[::-1])), axis=1)
    touching[in_grid] = other[ijk[in_grid, 2], ijk[in_grid, 1], ijk[in_grid, 0]]
    # outside it, the nearest voxel is on its boundary
    rim = other & ~ndimage.binary_erosion(other)
    rim_mm = np.argwhere(rim)[:, ::-1] @ affine[:3, :3].T + affine[:3, 3]
    distance, _ = cKDTree(rim_mm).query(nodes_mm, distance_upper_bound=float(distance_mm) * (1 + 1e-9))
    return touching | np.isfinite(distance)
