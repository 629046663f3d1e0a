"""Segments to surface meshes: extract, smooth, clean, decimate, repair, check.

labels ──► crop + zero border ──► well-composed fix ──► Surface Nets (all labels at once,
shared faces) ──► windowed-sinc smoothing ──► LPS mm ──► per label: outward faces,
piece clean-up, decimation to a budget, repair, check ──► SurfaceMesh (+ provenance)
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from scipy import ndimage
from vtkmodules.vtkCommonDataModel import vtkPolyData

from surgtwin.core.errors import MeshError
from surgtwin.core.mesh.decimate import decimate, target_reduction
from surgtwin.core.mesh.nets import boundary_labels, polydata_arrays, surface_nets
from surgtwin.core.mesh.options import MeshOptions
from surgtwin.core.mesh.quality import signed_volume_mm3
from surgtwin.core.mesh.repair import clean_components, compact, repair_mesh
from surgtwin.core.mesh.smooth import windowed_sinc
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
    objects = ndimage.find_objects(labels.astype(np.uint16) if labels.dtype.itemsize > 2 else labels)
    present = [v for v in range(1, len(objects) + 1) if objects[v - 1] is not None]
    wanted = present if values is None else [int(v) for v in values]
    empty = [v for v in wanted if v not in present]
    if empty:
        log.info("labels %s have no voxels: no mesh", empty)
    wanted = [v for v in wanted if v in present]
    if not wanted:
        return {}
    progress.start("meshing: surfaces", len(wanted) + 1)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    padded, offset = _cropped_padded(labels, [objects[v - 1] for v in wanted], wanted, present)
    voxels_before = {v: int(np.count_nonzero(padded == v)) for v in wanted}
    added: dict[int, int] = dict.fromkeys(wanted, 0)
    stuck: list[int] = []
    if options.fix_topology:
        added, stuck = make_well_composed(padded, wanted)
    times["topology_s"] = time.perf_counter() - t0
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    t1 = time.perf_counter()
    shared = _surfaces(padded, spacing, wanted, options)
    times["surface_nets_and_smoothing_s"] = time.perf_counter() - t1
    progress.advance()
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    grid = _GridMap(affine, spacing, offset)
    meshes: dict[int, SurfaceMesh] = {}
    for value in wanted:
        t = time.perf_counter()
        if value in stuck:  # a multi-label knot the fix could not untie: mesh this label alone
            mask, n_added = well_composed_mask(padded[1:-1, 1:-1, 1:-1] == value)
            added[value] += n_added
            single = np.pad(mask, 1).astype(np.uint8)
            vertices, faces = _label_surface(_surfaces(single, spacing, [1], options), 1, grid)
        else:
            vertices, faces = _label_surface(shared, value, grid)
        record: dict[str, Any] = {
            "tool": "surgtwin.core.mesh.extract",
            "frame": "LPS",
            "units": "mm",
            "options": options.as_dict(),
            "shared_boundaries": value not in stuck,
            "voxels": voxels_before[value],
            "voxels_added_for_manifold": added[value],
            "label_volume_mm3": voxels_before[value] * voxel_mm3,
            "timing_shared_s": {k: round(s, 4) for k, s in times.items()},
        }
        meshes[value] = _finish(vertices, faces, value, options, record, voxel_mm3, t)
        if names and value in names:
            meshes[value].name = names[value]
        if colors and value in colors:
            meshes[value].color = colors[value]
        progress.advance()
    return meshes


def _cropped_padded(
    labels: np.ndarray, boxes: list[Any], wanted: list[int], present: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The bounding box of the wanted labels with a one-voxel zero border (so every surface
    closes), unwanted labels cleared; returns it and the (k, j, i) of its first inner voxel."""
    lo = np.min([[s.start for s in box] for box in boxes], axis=0)
    hi = np.max([[s.stop for s in box] for box in boxes], axis=0)
    crop = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    dtype = np.uint8 if max(wanted) < 256 else np.uint16
    padded = np.zeros(tuple(int(n) + 2 for n in crop.shape), dtype=dtype)
    if set(present) - set(wanted):
        padded[1:-1, 1:-1, 1:-1] = np.where(np.isin(crop, wanted), crop, 0)
    else:
        padded[1:-1, 1:-1, 1:-1] = crop
    return padded, lo


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


def _label_surface(poly: vtkPolyData, value: int, grid: _GridMap) -> tuple[np.ndarray, np.ndarray]:
    """The faces bounding ``value``, turned to face out of it, in LPS mm."""
    if poly.GetNumberOfCells() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    vertices, faces = polydata_arrays(poly)
    sides = boundary_labels(poly)
    mine = (sides[:, 0] == value) | (sides[:, 1] == value)
    faces = faces[mine]
    inward = sides[mine, 1] == value  # Surface Nets orients faces out of the label in column 0
    if grid.flips:
        inward = ~inward
    faces[inward] = faces[inward][:, ::-1]
    vertices, faces = compact(vertices, faces)
    return grid(vertices), faces


def _finish(
    vertices: np.ndarray,
    faces: np.ndarray,
    value: int,
    options: MeshOptions,
    record: dict[str, Any],
    voxel_mm3: float,
    started: float,
) -> SurfaceMesh:
    """Piece clean-up, decimation, repair and the final check of one label's surface."""
    fixed_mm3 = (record["voxels"] + record["voxels_added_for_manifold"]) * voxel_mm3
    triangles: dict[str, int] = {"extracted": int(len(faces))}
    volumes: dict[str, float] = {"voxels": record["label_volume_mm3"], "voxels_after_fix": fixed_mm3}
    volumes["smoothed"] = signed_volume_mm3(vertices, faces) if len(faces) else 0.0
    vertices, faces, pieces = clean_components(
        vertices, faces, options.min_component_mm3, options.keep_largest_component
    )
    record["components"] = pieces
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
