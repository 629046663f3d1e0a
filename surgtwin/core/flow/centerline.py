"""Vessel centrelines from a binary mask: a tree of branches with the lumen radius along each.

Method (no extra dependency): the mask is cropped to its largest piece and a distance
transform in millimetres gives the inscribed-sphere radius at every voxel. Vessel ends are
found by repeated farthest-point search (geometric length through the lumen); centrelines
are minimal-cost paths from the inlet with cost ∝ 1/radius², which keeps them in the middle
of the lumen. All paths come from one shortest-path tree, so shared parts merge by
construction and the places where paths part are the bifurcations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from surgtwin.core.flow.errors import FlowError

# Above this many lumen voxels the mask is downsampled by a whole factor (graph searches
# over a million voxels take seconds each, and a few dozen are needed).
MAX_LUMEN_VOXELS = 1_000_000
MAX_ENDS = 64
MIN_LUMEN_VOXELS = 20


@dataclass
class Branch:
    points_lps: np.ndarray  # (n, 3) centreline in patient LPS millimetres, from proximal to distal
    radius_mm: np.ndarray  # (n,) inscribed-sphere radius of the lumen at each point
    parent: int | None
    children: list[int] = field(default_factory=list)
    area_mm2: np.ndarray | None = None  # (n,) lumen area on the plane normal to the centreline

    def lumen_radius_mm(self) -> np.ndarray:
        """Radius of the circle with the lumen's cross-section area (the inscribed-sphere
        radius where no area was measured). Lesions are graded on this: on coarse voxels a
        tight waist holds a sphere of at least a voxel, so the sphere misses most of it."""
        if self.area_mm2 is None:
            return self.radius_mm
        return np.sqrt(np.asarray(self.area_mm2) / np.pi)

    def arclength_mm(self) -> np.ndarray:
        """Distance along the branch from its first point, per point."""
        steps = np.linalg.norm(np.diff(self.points_lps, axis=0), axis=1)
        return np.concatenate([[0.0], np.cumsum(steps)])


@dataclass
class VesselTree:
    branches: list[Branch]  # branch 0 starts at the inlet
    inlet_lps: np.ndarray  # (3,)
    outlets_lps: np.ndarray  # (m, 3), one per terminal branch, in the order of outlet_branches
    outlet_branches: list[int]
    bifurcations_lps: np.ndarray  # (b, 3)
    voxel_size_mm: float  # grid step the centrelines were traced on (after any downsampling)
    notes: list[str] = field(default_factory=list)  # what was done to the mask, for the user

    def length_mm(self, branch: int) -> float:
        return float(self.branches[branch].arclength_mm()[-1])

    def path_to(self, branch: int) -> list[int]:
        """Branch indices from the inlet down to ``branch``."""
        path = [branch]
        while (parent := self.branches[path[-1]].parent) is not None:
            path.append(parent)
        return path[::-1]


@dataclass(frozen=True)
class Stenosis:
    branch: int
    position_lps: np.ndarray  # (3,) narrowest point
    area_reduction: float  # 1 - (r_min / r_ref)^2, 0..1
    min_radius_mm: float
    reference_radius_mm: float
    length_mm: float  # where the narrowing exceeds half its depth


@dataclass(frozen=True)
class Aneurysm:
    branch: int
    position_lps: np.ndarray  # (3,) widest point
    dilation: float  # r_max / r_ref - 1
    max_radius_mm: float
    reference_radius_mm: float
    length_mm: float  # where the widening exceeds half its height


# --- the tree ------------------------------------------------------------------------------


def vessel_tree(
    mask_kji: np.ndarray,
    ijk_to_lps: np.ndarray,
    inlet_lps: Sequence[float] | np.ndarray | None = None,
    *,
    min_branch_mm: float = 5.0,
) -> VesselTree:
    """Centreline tree of the vessel in ``mask_kji`` (voxels[k, j, i]; ijk_to_lps maps to mm).

    The inlet is the vessel end nearest to ``inlet_lps``, or by default the widest end.
    Side branches shorter than ``min_branch_mm``, or than the radius of the lumen they
    leave, are taken for bulges of the wall and ignored. Ends stop about one radius short
    of the mask's end caps (the centre of the last inscribed sphere).
    """
    affine = np.asarray(ijk_to_lps, dtype=np.float64)
    if affine.shape != (4, 4) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise FlowError("The vessel's voxel geometry is invalid (need a non-singular 4x4 ijk-to-LPS matrix).")
    mask = np.asarray(mask_kji, dtype=bool)
    if mask.ndim != 3 or not mask.any():
        raise FlowError("The vessel segment is empty: paint or segment the vessel first.")
    notes: list[str] = []
    inlet = None if inlet_lps is None else np.asarray(inlet_lps, dtype=np.float64).reshape(3)
    mask, affine = _largest_piece_cropped(mask, affine, inlet, notes)
    mask, affine = _downsampled(mask, affine, notes)
    if int(mask.sum()) < MIN_LUMEN_VOXELS:
        raise FlowError(
            "The vessel segment is too small to trace a centreline (under 20 voxels): "
            "check that the right segment is selected."
        )
    grid = _LumenGraph(mask, affine)
    ends = grid.find_ends(min_branch_mm)
    inlet_node = grid.pick_inlet(ends, inlet)
    paths = grid.paths_from(inlet_node, [e for e in ends if e != inlet_node])
    return grid.build_tree(paths, min_branch_mm, notes)


def _largest_piece_cropped(
    mask: np.ndarray, affine: np.ndarray, inlet: np.ndarray | None, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The largest piece (or the one nearest the inlet), in its bounding box plus a background border."""
    nz = np.argwhere(mask)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    cropped = np.zeros(tuple(hi - lo + 2), dtype=bool)
    cropped[1:-1, 1:-1, 1:-1] = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    shift = np.eye(4)
    shift[:3, 3] = lo[::-1] - 1  # (i, j, k) of the crop's first voxel in the original grid
    affine = affine @ shift
    labels, count = ndimage.label(cropped, structure=np.ones((3, 3, 3), dtype=bool))
    if count > 1:
        keep = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
        if inlet is not None:  # the piece the user pointed at
            kji = np.argwhere(labels > 0)
            lps = kji[:, ::-1] @ affine[:3, :3].T + affine[:3, 3]
            keep = int(labels[tuple(kji[int(np.argmin(np.linalg.norm(lps - inlet, axis=1)))])])
        notes.append(f"The segment has {count} separate pieces; the centreline follows one of them.")
        return _largest_piece_cropped(labels == keep, affine, None, [])
    return cropped, affine


def _downsampled(mask: np.ndarray, affine: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    count = int(mask.sum())
    if count <= MAX_LUMEN_VOXELS:
        return mask, affine
    factor = int(np.ceil((count / MAX_LUMEN_VOXELS) ** (1 / 3)))
    shape = tuple(-(-n // factor) * factor for n in mask.shape)
    padded = np.zeros(shape, dtype=np.float32)
    padded[: mask.shape[0], : mask.shape[1], : mask.shape[2]] = mask
    blocks = padded.reshape(
        shape[0] // factor, factor, shape[1] // factor, factor, shape[2] // factor, factor
    )
    coarse = np.zeros(tuple(n // factor + 2 for n in shape), dtype=bool)
    coarse[1:-1, 1:-1, 1:-1] = blocks.mean(axis=(1, 3, 5)) >= 0.5  # majority vote per block
    scale = np.diag([factor, factor, factor, 1.0])
    scale[:3, 3] = (factor - 1) / 2 - factor  # block centre, minus the added border voxel
    notes.append(f"The segment is large; centrelines were traced on a grid {factor}x coarser.")
    return coarse, affine @ scale


class _LumenGraph:
    """Lumen voxels as a graph with 26-neighbour edges, plus the distance transform."""

    def __init__(self, mask: np.ndarray, affine: np.ndarray) -> None:
        self.affine = affine
        columns = np.linalg.norm(affine[:3, :3], axis=0)  # spacing along i, j, k
        self.voxel_mm = float(columns.min())
        # Distance from each lumen voxel centre to the nearest background voxel centre.
        self.distance = ndimage.distance_transform_edt(mask, sampling=tuple(columns[::-1]))
        self.spacing = columns
        self.occupancy = mask.astype(np.float32)  # interpolated for cross-section areas
        self.mean_spacing = float(columns.mean())
        self.kji = np.argwhere(mask)
        n = len(self.kji)
        self.radius = np.maximum(self.distance[mask], 0.5 * self.voxel_mm)
        lookup = np.full(mask.shape, -1, dtype=np.int64)
        lookup[mask] = np.arange(n)
        rows, cols, lengths = [], [], []
        for offset in _half_neighbourhood():
            neighbour = self.kji + offset
            # The mask has a background border, so neighbours never leave the array.
            other = lookup[neighbour[:, 0], neighbour[:, 1], neighbour[:, 2]]
            both = other >= 0
            rows.append(np.nonzero(both)[0])
            cols.append(other[both])
            lengths.append(np.full(int(both.sum()), np.linalg.norm(affine[:3, :3] @ offset[::-1])))
        row = np.concatenate(rows)
        col = np.concatenate(cols)
        length = np.concatenate(lengths)
        self.length_graph = csr_matrix((length, (row, col)), shape=(n, n))
        cost = 1.0 / self.radius**2
        self.cost_graph = csr_matrix((length * 0.5 * (cost[row] + cost[col]), (row, col)), shape=(n, n))
        self.lps = self.kji[:, ::-1] @ affine[:3, :3].T + affine[:3, 3]

    def radius_at(self, points_lps: np.ndarray) -> np.ndarray:
        """Lumen radius at LPS points: the distance map, interpolated.

        Linear interpolation cuts the ridge of the distance map on a vessel's axis: on tubes
        of 0.3-0.8 mm voxels it reads 0.4 voxel low (measured), so that is added back.
        """
        inverse = np.linalg.inv(self.affine)
        ijk = points_lps @ inverse[:3, :3].T + inverse[:3, 3]
        ridge = ndimage.map_coordinates(self.distance, ijk[:, ::-1].T, order=1, mode="nearest")
        return np.asarray(ridge + 0.4 * self.mean_spacing, dtype=np.float64)

    def cross_section_areas(self, points_lps: np.ndarray, radius_mm: np.ndarray) -> np.ndarray:
        """Lumen area (mm²) on the plane normal to the centreline at each point: the trilinearly
        interpolated mask at or above one half, sampled finely, the piece around the point only
        (a neighbouring branch cut by the same plane is not counted)."""
        inverse = np.linalg.inv(self.affine)
        tangents = np.gradient(points_lps, axis=0) if len(points_lps) > 1 else np.array([[0.0, 0.0, 1.0]])
        tangents /= np.maximum(np.linalg.norm(tangents, axis=1, keepdims=True), 1e-12)
        areas = np.zeros(len(points_lps))
        for n, (point, tangent, radius) in enumerate(zip(points_lps, tangents, radius_mm, strict=True)):
            step = max(0.25 * float(self.spacing.min()), 0.05 * float(radius))
            reach = 2.0 * float(radius) + 2.0 * float(self.spacing.max())
            for _ in range(2):  # a long thin lumen (a crescent) reaching the window's edge: widen once
                area, clipped = self._plane_area(point, tangent, inverse, step, reach)
                if not clipped:
                    break
                reach *= 2.0
            # nothing found (a point just outside a hairline lumen): the inscribed circle stands in
            areas[n] = area if area > 0 else np.pi * float(radius) ** 2
        return areas

    def _plane_area(
        self, point: np.ndarray, tangent: np.ndarray, inverse: np.ndarray, step: float, reach: float
    ) -> tuple[float, bool]:
        """Area of the lumen piece around ``point`` on its normal plane, and whether that piece
        touches the edge of the sampled window (then the window was too small)."""
        half = int(np.ceil(reach / step))
        u_axis, v_axis = plane_axes(tangent)
        offsets = np.arange(-half, half + 1) * step
        u, v = np.meshgrid(offsets, offsets, indexing="ij")
        samples = point + u[..., None] * u_axis + v[..., None] * v_axis
        ijk = samples.reshape(-1, 3) @ inverse[:3, :3].T + inverse[:3, 3]
        values = ndimage.map_coordinates(self.occupancy, ijk[:, ::-1].T, order=1, mode="constant")
        inside = values.reshape(u.shape) >= 0.5
        pieces, _ = ndimage.label(inside)
        piece = pieces[half, half]
        if piece == 0:  # the point fell just outside a thin waist: take the nearest piece
            nearest = np.where(inside, np.hypot(u, v), np.inf)
            if not np.isfinite(nearest.min()):
                return 0.0, False
            piece = pieces[np.unravel_index(int(np.argmin(nearest)), nearest.shape)]
        mine = pieces == piece
        clipped = bool(mine[0].any() or mine[-1].any() or mine[:, 0].any() or mine[:, -1].any())
        return float(mine.sum()) * step * step, clipped

    def _geodesic(self, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist, _, source = dijkstra(
            self.length_graph, directed=False, indices=sources, min_only=True, return_predecessors=True
        )
        return dist, source

    def find_ends(self, min_branch_mm: float) -> list[int]:
        """Vessel extremities: farthest-point search from the growing centreline tree."""
        centre = int(np.argmax(self.radius))
        dist, _ = self._geodesic(np.array([centre]))
        first = int(np.argmax(np.where(np.isfinite(dist), dist, -1)))
        dist, _ = self._geodesic(np.array([first]))
        second = int(np.argmax(np.where(np.isfinite(dist), dist, -1)))
        ends = [first, second]
        _, pred = dijkstra(self.cost_graph, directed=False, indices=first, return_predecessors=True)
        tree = set(_walk_back(pred, second))
        while len(ends) < MAX_ENDS:
            dist, source = self._geodesic(np.fromiter(tree, dtype=np.int64))
            dist = np.where(np.isfinite(dist), dist, -1)
            candidate = int(np.argmax(dist))
            attach_radius = float(self.radius[source[candidate]])
            # A real branch reaches well beyond the parent's wall; a bump on the wall does not.
            if dist[candidate] - attach_radius < max(min_branch_mm, attach_radius):
                break
            ends.append(candidate)
            tree.update(_walk_back(pred, candidate))
        centres = [self.end_centre(e) for e in ends]
        return list(dict.fromkeys(centres))  # two extremities may share one end

    def end_centre(self, extremity: int) -> int:
        """The centre of the vessel's end near a wall voxel found as an extremity.

        The deepest voxel whose inscribed sphere, enlarged by half, still reaches the
        extremity: for a tube that is on the axis about one radius in from the end.
        """
        reach = 1.5 * float(self.radius.max()) + 2.0 * self.voxel_mm
        dist = dijkstra(self.length_graph, directed=False, indices=extremity, limit=reach)
        candidates = np.nonzero(dist <= 1.5 * self.radius + self.voxel_mm)[0]
        score = self.radius[candidates] - 0.01 * dist[candidates]  # ties go to the nearer voxel
        return int(candidates[np.argmax(score)])

    def pick_inlet(self, ends: list[int], inlet: np.ndarray | None) -> int:
        if inlet is not None:
            return ends[int(np.argmin(np.linalg.norm(self.lps[ends] - inlet, axis=1)))]
        return ends[int(np.argmax(self.radius[ends]))]

    def paths_from(self, inlet: int, ends: list[int]) -> list[list[int]]:
        _, pred = dijkstra(self.cost_graph, directed=False, indices=inlet, return_predecessors=True)
        return [_walk_back(pred, e) for e in ends]

    def build_tree(self, paths: list[list[int]], min_branch_mm: float, notes: list[str]) -> VesselTree:
        if not paths:
            raise FlowError("The vessel segment has a single end: no centreline could be traced.")
        trimmed = [p for p in paths if len(p) >= 2]
        if not trimmed:
            raise FlowError("The vessel segment is too short to trace a centreline.")
        while True:
            branches_nodes, parents = _split(trimmed)
            short = {
                leaf_end
                for nodes, leaf_end in _leaves(branches_nodes, parents)
                # A side branch shorter than the lumen it leaves is a bulge of the wall (e.g. a sinus).
                if _polyline_length(self.lps[nodes]) < max(min_branch_mm, float(self.radius[nodes[0]]))
            }
            if not short or len(short) >= len(trimmed):
                break
            trimmed = [p for p in trimmed if p[-1] not in short]
        branches = []
        for nodes, parent in zip(branches_nodes, parents, strict=True):
            points = _smoothed(self.lps[nodes])
            radius = _smoothed_radius(self.radius_at(points))
            areas = self.cross_section_areas(points, radius)
            branches.append(Branch(points, radius, parent=parent, area_mm2=areas))
        for index, branch in enumerate(branches):
            if branch.parent is not None:
                branches[branch.parent].children.append(index)
        outlet_branches = [i for i, b in enumerate(branches) if not b.children]
        bifurcations = [b.points_lps[-1] for b in branches if b.children]
        return VesselTree(
            branches=branches,
            inlet_lps=branches[0].points_lps[0].copy(),
            outlets_lps=np.array([branches[i].points_lps[-1] for i in outlet_branches]),
            outlet_branches=outlet_branches,
            bifurcations_lps=np.array(bifurcations).reshape(-1, 3),
            voxel_size_mm=self.voxel_mm,
            notes=notes,
        )


def plane_axes(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane normal to ``normal`` (a unit vector)."""
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    first = np.cross(normal, helper)
    first /= np.linalg.norm(first)
    return first, np.cross(normal, first)


def _half_neighbourhood() -> list[np.ndarray]:
    """13 of the 26 neighbour offsets (k, j, i): one of each opposite pair, for undirected edges."""
    offsets = []
    for dk in (-1, 0, 1):
        for dj in (-1, 0, 1):
            for di in (-1, 0, 1):
                if (dk, dj, di) > (0, 0, 0):
                    offsets.append(np.array([dk, dj, di]))
    return offsets


def _walk_back(pred: np.ndarray, node: int) -> list[int]:
    path = [node]
    while pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    return path[::-1]


def _split(paths: list[list[int]]) -> tuple[list[list[int]], list[int | None]]:
    """Cut paths that share their start into branches at the nodes where they part."""
    children: dict[int, list[int]] = {}
    for path in paths:
        for a, b in zip(path[:-1], path[1:], strict=True):
            kids = children.setdefault(a, [])
            if b not in kids:
                kids.append(b)
    branches: list[list[int]] = []
    parents: list[int | None] = []
    stack: list[tuple[int, int, int | None]] = [(paths[0][0], -1, None)]  # (start, first step, parent)
    while stack:
        start, step, parent = stack.pop()
        nodes = [start] if step < 0 else [start, step]
        while len(children.get(nodes[-1], [])) == 1:
            nodes.append(children[nodes[-1]][0])
        branches.append(nodes)
        parents.append(parent)
        index = len(branches) - 1
        for kid in children.get(nodes[-1], []):
            if len(children[nodes[-1]]) > 1:
                stack.append((nodes[-1], kid, index))
    return branches, parents


def _leaves(branches: list[list[int]], parents: list[int | None]) -> list[tuple[list[int], int]]:
    has_child = {p for p in parents if p is not None}
    return [(nodes, nodes[-1]) for i, nodes in enumerate(branches) if i not in has_child and i != 0]


def _polyline_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def _smoothed(points: np.ndarray) -> np.ndarray:
    """Remove the voxel staircase; branch ends stay put so branches still meet."""
    points = points.astype(np.float64)
    if len(points) < 5:
        return points
    smooth = ndimage.gaussian_filter1d(points, 2.0, axis=0, mode="nearest")
    smooth[0], smooth[-1] = points[0], points[-1]
    return smooth


def _smoothed_radius(radius: np.ndarray) -> np.ndarray:
    return radius if len(radius) < 5 else ndimage.gaussian_filter1d(radius, 1.0, mode="nearest")


# --- narrowing and widening ---------------------------------------------------------------


def _lesion_runs(tree: VesselTree, *, narrow: bool) -> Iterator[tuple[int, np.ndarray, _Deviation]]:
    """(branch index, point of the extreme, run) for every narrowing or widening of the tree."""
    for index, branch in enumerate(tree.branches):
        for run in _deviations(branch, narrow=narrow):
            yield index, branch.points_lps[run.at].copy(), run


def find_stenoses(tree: VesselTree, min_reduction: float = 0.3) -> list[Stenosis]:
    """Narrowings whose lumen area falls by at least ``min_reduction`` (0..1) against nearby healthy lumen."""
    found: list[Stenosis] = []
    for index, position, run in _lesion_runs(tree, narrow=True):
        area_reduction = 1.0 - (run.extreme_radius / run.reference) ** 2
        if area_reduction >= min_reduction:
            sizes = (run.extreme_radius, run.reference, run.length_mm)
            found.append(Stenosis(index, position, float(area_reduction), *sizes))
    return found


def find_aneurysms(tree: VesselTree, min_dilation: float = 0.5) -> list[Aneurysm]:
    """Widenings whose radius exceeds the nearby healthy radius by at least ``min_dilation`` (0.5 = 50 %)."""
    found: list[Aneurysm] = []
    for index, position, run in _lesion_runs(tree, narrow=False):
        dilation = run.extreme_radius / run.reference - 1.0
        if dilation >= min_dilation:
            sizes = (run.extreme_radius, run.reference, run.length_mm)
            found.append(Aneurysm(index, position, float(dilation), *sizes))
    return found


@dataclass(frozen=True)
class _Deviation:
    at: int  # index of the narrowest (widest) point
    extreme_radius: float
    reference: float
    length_mm: float


# A run starts where the radius leaves this band around the local median radius.
_BAND = 0.1


def _deviations(branch: Branch, *, narrow: bool) -> list[_Deviation]:
    """Runs of points narrower (wider) than the branch's local median radius."""
    along = branch.arclength_mm()
    usable = _outside_junctions(branch)
    # narrowings graded by area (see Branch.lumen_radius_mm); widenings by the inscribed sphere,
    # which a wide lumen holds well and which a plane cutting a neighbouring branch cannot inflate
    radius = branch.lumen_radius_mm() if narrow else branch.radius_mm
    radius, along, points_index = radius[usable], along[usable], np.nonzero(usable)[0]
    if len(radius) < 5:
        return []
    typical = float(np.median(radius))
    window_mm = max(8.0 * typical, 10.0)  # wide enough that a focal lesion does not move the median
    local = np.array([np.median(radius[np.abs(along - s) <= window_mm / 2]) for s in along])
    outside = radius < (1 - _BAND) * local if narrow else radius > (1 + _BAND) * local
    labels, count = ndimage.label(outside)
    found = []
    for run in range(1, count + 1):
        members = np.nonzero(labels == run)[0]
        first, last = int(members[0]), int(members[-1])
        at = int(members[np.argmin(radius[members])] if narrow else members[np.argmax(radius[members])])
        # Healthy reference: the median over a window on each side, outside the run.
        near = (np.abs(along - along[first]) <= window_mm / 2) & (np.arange(len(radius)) < first)
        near |= (np.abs(along - along[last]) <= window_mm / 2) & (np.arange(len(radius)) > last)
        if not near.any():
            continue
        reference = float(np.median(radius[near]))
        extreme = float(radius[at])
        half = 0.5 * (reference + extreme)
        inside = radius < half if narrow else radius > half
        span = _run_around(inside, at)
        length = float(along[span[1]] - along[span[0]])
        found.append(_Deviation(int(points_index[at]), extreme, reference, length))
    return found


# Where branches meet the lumen is wider than either branch; this many junction radii are skipped.
_JUNCTION_REACH = 1.2


def _outside_junctions(branch: Branch) -> np.ndarray:
    """Points of a branch away from the bifurcations at its ends."""
    usable = np.ones(len(branch.radius_mm), dtype=bool)
    for end, joined in ((0, branch.parent is not None), (-1, bool(branch.children))):
        if joined:
            reach = _JUNCTION_REACH * branch.radius_mm[end]
            usable &= np.linalg.norm(branch.points_lps - branch.points_lps[end], axis=1) > reach
    return usable


def _run_around(flags: np.ndarray, at: int) -> tuple[int, int]:
    start = end = at
    while start > 0 and flags[start - 1]:
        start -= 1
    while end < len(flags) - 1 and flags[end + 1]:
        end += 1
    return start, end
