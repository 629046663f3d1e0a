"""Segments to surface meshes: extract, smooth, clean, decimate, repair, check.

labels ──► crop + zero border ──► well-composed fix ──► Surface Nets (all labels at once,
shared faces) ──► windowed-sinc smoothing ──► LPS mm ──► per label: outward faces,
piece clean-up, decimation to a budget, repair, check ──► SurfaceMesh (+ provenance)
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkPolyData

from surgtwin.core.errors import MeshError
from surgtwin.core.mesh.decimate import decimate, target_reduction
from surgtwin.core.mesh.nets import boundary_labels, polydata_arrays, surface_nets
from surgtwin.core.mesh.options import MeshOptions
from surgtwin.core.mesh.quality import signed_volume_mm3
from surgtwin.core.mesh.repair import clean_components, compact, repair_mesh
from surgtwin.core.mesh.resolution import (
    SegmentSize,
    bounding_boxes,
    coarsening_factor,
    downsample_majority,
    segment_sizes,
)
from surgtwin.core.mesh.smooth import restore_volume, windowed_sinc
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.mesh.topology import make_well_composed, well_composed_mask
from surgtwin.core.progress import Progress, ensure_progress
from surgtwin.core.segmentation.colors import Color
from surgtwin.core.segmentation.model import Segmentation

log = logging.getLogger(__name__)


def extract_meshes(
    segmentation: Segmentation,
    labels: list[int] | None = None,
    options: MeshOptions | None = None,
    progress: Progress | None = None,
) -> dict[int, SurfaceMesh]:
    """One closed, outward-oriented surface (LPS mm) per segment of ``segmentation``.

    ``labels`` defaults to every segment; a segment with no voxels gets no mesh.
    """
    wanted = sorted(segmentation.segments) if labels is None else list(labels)
    unknown = [v for v in wanted if v not in segmentation.segments]
    if unknown:
        known = ", ".join(f"{k} ({s.name})" for k, s in sorted(segmentation.segments.items()))
        raise MeshError(f"no segment with label {unknown} in {segmentation.name!r}; segments: {known}")
    names = {v: segmentation.segments[v].name for v in wanted}
    colors = {v: segmentation.segments[v].color for v in wanted}
    # segmentation_id is left to the caller: the scene knows its objects' ids
    return mesh_label_map(
        segmentation.labels, segmentation.ijk_to_lps, wanted, options, progress, names, colors
    )


def mesh_label_map(
    labels: np.ndarray,
    ijk_to_lps: np.ndarray,
    values: list[int] | None = None,
    options: MeshOptions | None = None,
    progress: Progress | None = None,
    names: dict[int, str] | None = None,
    colors: dict[int, Color] | None = None,
) -> dict[int, SurfaceMesh]:
    """The pipeline on a bare label map ``labels[k, j, i]`` with its 4x4 ``ijk_to_lps``."""
    options = options or MeshOptions()
    progress = ensure_progress(progress)
    affine = np.asarray(ijk_to_lps, dtype=np.float64)
    if labels.ndim != 3 or affine.shape != (4, 4) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise MeshError("meshing needs a 3D label map and an invertible 4x4 ijk_to_lps")
    if not np.issubdtype(labels.dtype, np.integer):
        raise MeshError(f"a label map holds integers, not {labels.dtype}")
    t0 = time.perf_counter()
    objects = bounding_boxes(labels)
    present = [v for v in range(1, len(objects) + 1) if objects[v - 1] is not None]
    wanted = present if values is None else [int(v) for v in values]
    empty = [v for v in wanted if v not in present]
    if empty:
        log.info("labels %s have no voxels: no mesh", empty)
    wanted = [v for v in wanted if v in present]
    if not wanted:
        return {}
    progress.start("meshing: surfaces", len(wanted) + 1)
    voxels = {v: int(np.count_nonzero(labels[objects[v - 1]] == v)) for v in wanted}
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    factors = dict.fromkeys(wanted, 1)
    sizes: dict[int, SegmentSize] = {}
    if options.triangle_budget is not None and options.max_coarsening > 1:
        sizes = segment_sizes(labels, wanted, voxels, spacing)
        factors = {
            v: coarsening_factor(sizes[v], options.triangle_budget, spacing, options.max_coarsening)
            for v in wanted
        }
    times: dict[str, float] = {"plan_s": time.perf_counter() - t0}
    groups: dict[int, list[int]] = {}
    for v in wanted:
        groups.setdefault(factors[v], []).append(v)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))

    def finish(value: int, surface: _LabelSurface) -> SurfaceMesh:
        record: dict[str, Any] = {
            "tool": "surgtwin.core.mesh.extract",
            "frame": "LPS",
            "units": "mm",
            "options": options.as_dict(),
            "grid_factor": factors[value],
            "shared_boundaries": surface.shared and len(groups) == 1,
            "voxels": voxels[value],
            "voxels_added_for_manifold": surface.added_voxels,
            "label_volume_mm3": voxels[value] * voxel_mm3,
        }
        unshared = [] if surface.shared else ["meshed alone (topology fix)"]
        if len(groups) > 1:
            unshared.append(
                f"segments meshed at different grid factors ({', '.join(map(str, sorted(groups)))})"
            )
        record["unshared_because"] = unshared
        if value in sizes:
            record["size_estimate"] = sizes[value].as_dict()
        return _finish(surface, value, options, record, voxel_mm3, time.perf_counter())

    # Two workers: a group's extraction (VTK, numpy: mostly without the GIL) overlaps the
    # decimation of the previous group's segments (fast_simplification holds the GIL).
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="surgtwin-mesh")
    try:
        ordered = sorted(groups.items(), reverse=True)  # coarsest (largest segments) first
        extracted = [
            pool.submit(
                _mesh_group,
                labels,
                [objects[v - 1] for v in g],
                g,
                present,
                f,
                affine,
                spacing,
                options,
                times,
            )
            for f, g in ordered
        ]
        finishing: dict[int, Future[SurfaceMesh]] = {}
        for future in extracted:
            for value, surface in _result(future, progress).items():
                finishing[value] = pool.submit(finish, value, surface)
        progress.advance()
        meshes: dict[int, SurfaceMesh] = {}
        for value in wanted:
            meshes[value] = _result(finishing[value], progress)
            if names and value in names:
                meshes[value].name = names[value]
            if colors and value in colors:
                meshes[value].color = colors[value]
            progress.advance()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    shared_times = {k: round(s, 4) for k, s in times.items()}
    for mesh in meshes.values():
        mesh.provenance["timing_shared_s"] = shared_times
    return meshes


def _result(future: Future[Any], progress: Progress) -> Any:
    """Wait for a worker, checking for cancellation meanwhile."""
    while True:
        try:
            return future.result(timeout=0.05)
        except FuturesTimeout:
            progress.check()


class _LabelSurface:
    """One label's faces from its group's extraction, with what the finish step needs."""

    def __init__(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        shared: bool,
        added_voxels: int,
        fixed_mm3: float,
        factor: int,
    ) -> None:
        self.vertices, self.faces = vertices, faces
        self.shared, self.added_voxels, self.fixed_mm3, self.factor = shared, added_voxels, fixed_mm3, factor


def _mesh_group(
    labels: np.ndarray,
    boxes: list[Any],
    group: list[int],
    present: list[int],
    factor: int,
    affine: np.ndarray,
    spacing: np.ndarray,
    options: MeshOptions,
    times: dict[str, float],
) -> dict[int, _LabelSurface]:
    """Crop (and coarsen), fix topology, extract and smooth the labels of one grid factor."""
    tag = f"x{factor}" if factor > 1 else ""
    t0 = time.perf_counter()
    lo, hi = _bounds(boxes)
    crop = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    if factor > 1:
        padded = np.pad(downsample_majority(crop, group, factor), 1)
    else:
        padded = _padded(crop, group, present)
    coarse_voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3]))) * factor**3
    times[f"crop{tag}_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    added: dict[int, int] = dict.fromkeys(group, 0)
    stuck: list[int] = []
    if options.fix_topology:
        added, stuck = make_well_composed(padded, group)
    times[f"topology{tag}_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    grid_spacing = spacing * factor
    shared = _surfaces(padded, grid_spacing, group, options)
    times[f"surface_nets_and_smoothing{tag}_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    grid = _GridMap(affine, spacing, lo + (factor - 1) / 2.0)
    arrays = _arrays(shared)
    out: dict[int, _LabelSurface] = {}
    for value in group:
        if value in stuck:  # a multi-label knot the fix could not untie: mesh this label alone
            mask, n_added = well_composed_mask(padded[1:-1, 1:-1, 1:-1] == value)
            added[value] += n_added
            single = np.pad(mask, 1).astype(np.uint8)
            fixed_voxels = int(np.count_nonzero(mask))
            vertices, faces = _label_surface(_surfaces(single, grid_spacing, [1], options), 1, grid)
        else:
            fixed_voxels = int(np.count_nonzero(padded == value)) if factor > 1 else -1
            vertices, faces = _label_surface(arrays, value, grid)
        out[value] = _LabelSurface(
            vertices,
            faces,
            shared=value not in stuck,
            added_voxels=added[value] * factor**3,
            fixed_mm3=fixed_voxels * coarse_voxel_mm3 if fixed_voxels >= 0 else -1.0,
            factor=factor,
        )
    times[f"split{tag}_s"] = time.perf_counter() - t0
    return out


def _bounds(boxes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    lo = np.min([[s.start for s in box] for box in boxes], axis=0)
    hi = np.max([[s.stop for s in box] for box in boxes], axis=0)
    return lo, hi


def _padded(crop: np.ndarray, wanted: list[int], present: list[int]) -> np.ndarray:
    """``crop`` with a one-voxel zero border (so every surface closes), unwanted labels cleared."""
    dtype = np.uint8 if max(wanted) < 256 else np.uint16
    padded = np.zeros(tuple(int(n) + 2 for n in crop.shape), dtype=dtype)
    if set(present) - set(wanted):
        padded[1:-1, 1:-1, 1:-1] = np.where(np.isin(crop, wanted), crop, 0)
    else:
        padded[1:-1, 1:-1, 1:-1] = crop
    return padded


def _surfaces(
    padded: np.ndarray, spacing: np.ndarray, values: list[int], options: MeshOptions
) -> vtkPolyData:
    constrained = options.smoothing_iterations if options.smoothing == "surface_nets" else 0
    poly = surface_nets(padded, spacing, values, constrained_iterations=constrained)
    if options.smoothing == "windowed_sinc":
        poly = windowed_sinc(poly, options.smoothing_iterations, options.smoothing_passband)
    return poly


class _GridMap:
    """Surface Nets works in ``ijk * spacing`` of the cropped grid (so smoothing sees true
    millimetres); this maps those points through the full ijk_to_lps (oblique grids too)."""

    def __init__(self, affine: np.ndarray, spacing: np.ndarray, offset_kji: np.ndarray) -> None:
        self.linear = affine[:3, :3] / spacing  # columns: unit voxel directions
        self.translation = affine[:3, :3] @ np.asarray(offset_kji[::-1], dtype=np.float64) + affine[:3, 3]
        self.flips = bool(np.linalg.det(affine[:3, :3]) < 0)  # a mirror turns normals inward

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return points @ self.linear.T + self.translation


def _label_surface(
    poly: vtkPolyData | tuple[np.ndarray, np.ndarray, np.ndarray], value: int, grid: _GridMap
) -> tuple[np.ndarray, np.ndarray]:
    """The faces bounding ``value``, turned to face out of it, in LPS mm. ``poly`` is the
    Surface Nets output or its (vertices, faces, boundary labels) arrays."""
    arrays = _arrays(poly) if isinstance(poly, vtkPolyData) else poly
    vertices, faces, sides = arrays
    if not len(faces):
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    mine = (sides[:, 0] == value) | (sides[:, 1] == value)
    faces = faces[mine]
    inward = sides[mine, 1] == value  # Surface Nets orients faces out of the label in column 0
    if grid.flips:
        inward = ~inward
    faces[inward] = faces[inward][:, ::-1]
    vertices, faces = compact(vertices, faces)
    return grid(vertices), faces


def _arrays(poly: vtkPolyData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if poly.GetNumberOfCells() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
    vertices, faces = polydata_arrays(poly)
    return vertices, faces, boundary_labels(poly)


# Smoothing may change a full-grid surface's volume by this fraction before it is restored.
SMOOTHING_VOLUME_TOLERANCE = 0.02


def _finish(
    surface: _LabelSurface,
    value: int,
    options: MeshOptions,
    record: dict[str, Any],
    voxel_mm3: float,
    started: float,
) -> SurfaceMesh:
    """Volume restore (coarse grids), piece clean-up, decimation, repair and the final check."""
    vertices, faces = surface.vertices, surface.faces
    fixed_mm3 = surface.fixed_mm3
    if fixed_mm3 < 0:
        fixed_mm3 = (record["voxels"] + record["voxels_added_for_manifold"]) * voxel_mm3
    triangles: dict[str, int] = {"extracted": int(len(faces))}
    volumes: dict[str, float] = {"voxels": record["label_volume_mm3"], "voxels_after_fix": fixed_mm3}
    smoothed = signed_volume_mm3(vertices, faces) if len(faces) else 0.0
    drifted = abs(smoothed - volumes["voxels"]) > SMOOTHING_VOLUME_TOLERANCE * volumes["voxels"]
    # Coarse grids always; full-grid surfaces only when smoothing thinned them beyond the
    # tolerance (sheets one voxel thick): otherwise vertices stay put, so boundaries shared
    # with touching segments stay identical.
    if len(faces) and (surface.factor > 1 or drifted):
        vertices, offset, volumes["smoothed"] = restore_volume(vertices, faces, volumes["voxels"])
        for _ in range(3):  # the step is first-order: thin curved sheets need a few more
            if abs(signed_volume_mm3(vertices, faces) - volumes["voxels"]) <= 0.002 * volumes["voxels"]:
                break
            vertices, step, _ = restore_volume(vertices, faces, volumes["voxels"])
            offset += step
        record["volume_restore_offset_mm"] = round(offset, 4)
        record["unshared_because"].append("volume restored (vertices moved)")
    else:
        volumes["smoothed"] = smoothed
    if options.min_component_mm3 > 0 or options.keep_largest_component:
        vertices, faces, pieces = clean_components(
            vertices, faces, options.min_component_mm3, options.keep_largest_component
        )
    else:
        pieces = None  # nothing to drop: counted in the final check
    triangles["after_cleanup"] = int(len(faces))
    volumes["after_cleanup"] = signed_volume_mm3(vertices, faces) if len(faces) else 0.0
    reduction = target_reduction(len(faces), options.triangle_budget, options.reduction)
    vertices, faces, record["decimation"], quality = decimate(
        vertices,
        faces,
        reduction,
        options.decimation_aggressiveness,
        options.max_decimation_volume_change_percent,
    )
    record["repairs"] = []
    if quality is None:  # undecimated: check (and if need be repair) the extracted surface
        vertices, faces, record["repairs"], quality = repair_mesh(vertices, faces)
    if record["decimation"].get("result") == "decimated":
        record["unshared_because"].append("decimated")
    if record["repairs"]:
        record["unshared_because"].append("repaired")
    # true only while this surface's vertices are still those of the one multi-label mesh
    # that every meshed segment was cut from: touching segments share them exactly
    record["shared_boundaries"] = not record["unshared_because"]
    budget = options.triangle_budget
    if budget is not None:
        record["over_budget"] = quality.faces > budget
        if record["over_budget"]:
            log.warning(
                "label %d: %d triangles, over the budget of %d (decimation: %s)",
                value,
                quality.faces,
                budget,
                record["decimation"].get("result"),
            )
    if pieces is None:
        pieces = {
            "pieces": quality.components,
            "kept": quality.components,
            "dropped": 0,
            "dropped_volume_mm3": 0.0,
        }
    record["components"] = pieces
    triangles["final"] = quality.faces
    volumes["final"] = quality.volume_mm3
    record["triangles"] = triangles
    record["volume_mm3"] = {k: round(v, 3) for k, v in volumes.items()}
    record["volume_change_percent"] = {
        "smoothing": _percent(volumes["smoothed"], fixed_mm3),
        "decimation": _percent(volumes["final"], volumes["after_cleanup"]),
        "final_vs_label": _percent(volumes["final"], volumes["voxels"]),
    }
    record["quality"] = quality.as_dict()
    record["seconds"] = round(time.perf_counter() - started, 4)
    if len(faces) and not quality.ok:
        log.warning("label %d: mesh is not a clean closed surface after repair: %s", value, quality)
    return SurfaceMesh(vertices, faces, segment_label=value, provenance=record)


def _percent(value: float, reference: float) -> float:
    return round(100.0 * (value - reference) / reference, 3) if reference else 0.0
