"""Measurements of planning objects against anatomy: trajectory clearances, cut volumes.

* :func:`trajectory_clearances` — for each segment (voxels) and/or surface mesh, the
  closest distance from the path (the line segment entry -> target) and where along
  the path it is closest; 0 when the path goes through the structure.
* :func:`cut_volumes` — the volumes (mL) of one segment on either side of a cut plane.
* :func:`split_mask` — the voxels of a segment on the positive side (used by the split
  command in :mod:`surgtwin.core.plan.commands`).

Accuracy: voxel distances are measured to the nearest boundary voxel's centre, less half
the smallest voxel spacing (the voxel's face), so they are right to about half a voxel;
mesh distances are exact to within ``step_mm / 2`` (the path is sampled) and exact for
crossings. Units: mm, mL; positions in patient LPS mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from surgtwin.core.measure import _closest_points
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.plan.objects import CutPlane, PlanError, Trajectory
from surgtwin.core.segmentation.model import Segmentation

_CHUNK = 1_000_000  # points per vectorised step


# --- helpers ---------------------------------------------------------------------------
def _lps_of(ijk_to_lps: np.ndarray, kji: np.ndarray) -> np.ndarray:
    """LPS mm of voxel indices given as (k, j, i) rows."""
    ijk = kji[:, ::-1].astype(np.float64)
    return np.asarray(ijk @ ijk_to_lps[:3, :3].T + ijk_to_lps[:3, 3])


def _closest_on_path(points: np.ndarray, a: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point: the parameter t in [0, 1] of its closest path point, and the distance."""
    t = np.clip((points - a) @ d / float(d @ d), 0.0, 1.0)
    gap = points - (a + t[:, None] * d)
    return t, np.sqrt(np.einsum("ij,ij->i", gap, gap))


def _path_labels(trajectory: Trajectory, segmentation: Segmentation) -> tuple[np.ndarray, np.ndarray]:
    """The label under each sample along the path (nearest voxel; 0 outside the grid) and
    the samples' distances from the entry (mm); samples every quarter of the smallest voxel."""
    step = float(segmentation.spacing.min()) / 4.0
    count = max(2, int(np.ceil(trajectory.length_mm / step)) + 1)
    along = np.linspace(0.0, trajectory.length_mm, count)
    points = np.asarray(trajectory.entry) + along[:, None] * trajectory.direction
    lps_to_ijk = np.linalg.inv(segmentation.ijk_to_lps)
    ijk = np.rint(points @ lps_to_ijk[:3, :3].T + lps_to_ijk[:3, 3]).astype(np.int64)
    shape_ijk = np.array(segmentation.labels.shape[::-1])
    inside = np.all((ijk >= 0) & (ijk < shape_ijk), axis=1)
    labels = np.zeros(count, dtype=np.int64)
    i, j, k = ijk[inside].T
    labels[inside] = segmentation.labels[k, j, i]
    return labels, along


def _result(
    name: str,
    source: str,
    distance: float,
    along_mm: float,
    trajectory: Trajectory,
    closest: np.ndarray | None,
    crosses: bool,
    label: int | None = None,
) -> dict[str, Any]:
    return {
        "segment": name,
        "label": label,
        "source": source,
        "distance_mm": float(distance),
        "crosses": bool(crosses),
        "along_path_mm": float(along_mm),
        "path_point_lps_mm": list(trajectory.point_at(along_mm)),
        "closest_point_lps_mm": None if closest is None else [float(v) for v in closest],
    }


# --- trajectories ----------------------------------------------------------------------
def segment_clearances(
    trajectory: Trajectory, segmentation: Segmentation, segments: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Per segment (all, or those named): the closest distance from the path to its voxels."""
    labels = (
        [segmentation.label_of(n) for n in segments] if segments is not None else list(segmentation.segments)
    )
    on_path, along = _path_labels(trajectory, segmentation)
    a = np.asarray(trajectory.entry, dtype=np.float64)
    d = np.asarray(trajectory.target, dtype=np.float64) - a
    half_voxel = float(segmentation.spacing.min()) / 2.0
    boxes = ndimage.find_objects(segmentation.labels, max_label=max(labels, default=0))
    results = []
    for label in labels:
        name = segmentation.segments[label].name
        hits = np.flatnonzero(on_path == label)
        if hits.size:  # the path goes through it: report where it first enters
            entry_mm = float(along[hits[0]])
            results.append(
                _result(
                    name,
                    "voxels",
                    0.0,
                    entry_mm,
                    trajectory,
                    np.asarray(trajectory.point_at(entry_mm)),
                    True,
                    label,
                )
            )
            continue
        box = boxes[label - 1] if label - 1 < len(boxes) else None
        if box is None:  # an empty segment
            results.append(
                {
                    **_result(name, "voxels", np.inf, 0.0, trajectory, None, False, label),
                    "distance_mm": None,
                    "along_path_mm": None,
                    "path_point_lps_mm": None,
                }
            )
            continue
        # Pad by one voxel so erosion sees the background around the segment.
        padded = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        mask = segmentation.labels[padded] == label
        boundary = mask & ~ndimage.binary_erosion(mask)
        kji = np.argwhere(boundary) + np.array([s.start for s in padded])
        best = (np.inf, 0.0, np.zeros(3))
        for start in range(0, len(kji), _CHUNK):
            points = _lps_of(segmentation.ijk_to_lps, kji[start : start + _CHUNK])
            t, dist = _closest_on_path(points, a, d)
            i = int(np.argmin(dist))
            if dist[i] < best[0]:
                best = (float(dist[i]), float(t[i]), points[i])
        distance = max(best[0] - half_voxel, 0.0)
        results.append(
            _result(
                name, "voxels", distance, best[1] * trajectory.length_mm, trajectory, best[2], False, label
            )
        )
    return results


def _crossing(trajectory: Trajectory, tri: np.ndarray) -> float | None:
    """Distance from the entry (mm) of the path's first crossing of these triangles, or None
    (Moller-Trumbore, vectorised)."""
    a = np.asarray(trajectory.entry, dtype=np.float64)
    d = np.asarray(trajectory.target, dtype=np.float64) - a
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    h = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
        s = a - tri[:, 0]
        u = inv * np.einsum("ij,ij->i", s, h)
        q = np.cross(s, e1)
        v = inv * (q @ d)
        t = inv * np.einsum("ij,ij->i", e2, q)
        ok = (np.abs(det) > 1e-12) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= 0) & (t <= 1)
    return float(t[ok].min() * trajectory.length_mm) if np.any(ok) else None


def mesh_clearance(trajectory: Trajectory, mesh: SurfaceMesh, step_mm: float = 0.25) -> dict[str, Any]:
    """The closest distance from the path to a surface mesh (0 when the path crosses it)."""
    if mesh.triangle_count == 0:
        raise PlanError(f"mesh {mesh.name!r} has no triangles to measure the trajectory against")
    if not step_mm > 0:
        raise PlanError(f"the sampling step must be positive, got {step_mm!r} mm")
    a = np.asarray(trajectory.entry, dtype=np.float64)
    d = np.asarray(trajectory.target, dtype=np.float64) - a
    tri = mesh.vertices[mesh.faces]
    crossing = _crossing(trajectory, tri)
    if crossing is not None:
        return _result(
            mesh.name,
            "mesh",
            0.0,
            crossing,
            trajectory,
            np.asarray(trajectory.point_at(crossing)),
            True,
            mesh.segment_label,
        )
    # Only triangles with a vertex within (closest vertex + longest edge) can hold the
    # closest point: every point of a triangle is within its longest edge of each vertex.
    _, vertex_gap = _closest_on_path(mesh.vertices, a, d)
    edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max()
    near = vertex_gap[mesh.faces].min(axis=1) <= vertex_gap.min() + edges
    tri = tri[near]
    count = max(2, int(np.ceil(trajectory.length_mm / step_mm)) + 1)
    along = np.linspace(0.0, trajectory.length_mm, count)
    best = (np.inf, 0.0, np.zeros(3))
    for position in along:
        p = a + d * (position / trajectory.length_mm)
        closest = _closest_points(p, tri[:, 0], tri[:, 1], tri[:, 2])
        gap = np.einsum("ij,ij->i", closest - p, closest - p)
        if np.all(np.isnan(gap)):
            continue
        i = int(np.nanargmin(gap))
        if gap[i] < best[0]:
            best = (float(gap[i]), float(position), closest[i])
    return _result(
        mesh.name, "mesh", np.sqrt(best[0]), best[1], trajectory, best[2], False, mesh.segment_label
    )


def trajectory_clearances(
    trajectory: Trajectory,
    segmentation: Segmentation | None = None,
    meshes: Sequence[SurfaceMesh] = (),
    *,
    segments: Sequence[str] | None = None,
    step_mm: float = 0.25,
) -> dict[str, Any]:
    """Length of the path and, per segment and per mesh, the closest distance to it.

    Each clearance: ``segment``, ``label``, ``source`` ("voxels" or "mesh"),
    ``distance_mm`` (0 when the path crosses it; None for an empty segment), ``crosses``,
    ``along_path_mm`` (from the entry), ``path_point_lps_mm`` and ``closest_point_lps_mm``.
    Segments are sorted nearest first.
    """
    clearances: list[dict[str, Any]] = []
    if segmentation is not None:
        clearances += segment_clearances(trajectory, segmentation, segments)
    for mesh in meshes:
        if segments is None or mesh.name in segments:
            clearances.append(mesh_clearance(trajectory, mesh, step_mm))
    clearances.sort(key=lambda c: np.inf if c["distance_mm"] is None else c["distance_mm"])
    return {
        "name": trajectory.name,
        "entry_lps_mm": list(trajectory.entry),
        "target_lps_mm": list(trajectory.target),
        "length_mm": trajectory.length_mm,
        "clearances": clearances,
    }


# --- cut planes ------------------------------------------------------------------------
def _segment_label(plane: CutPlane, segmentation: Segmentation, label: int | None) -> int:
    label = plane.segment_label if label is None else label
    if label is None:
        raise PlanError(f"cut plane {plane.name!r} is not applied to a segment; choose one")
    if label not in segmentation.segments:
        known = ", ".join(f"{k} ({s.name})" for k, s in segmentation.segments.items()) or "none"
        raise PlanError(
            f"cut plane {plane.name!r}: {segmentation.name!r} has no segment with label {label} "
            f"(segments: {known})"
        )
    return label


def _segment_voxels(segmentation: Segmentation, label: int) -> np.ndarray:
    return np.argwhere(segmentation.labels == label)


def cut_volumes(plane: CutPlane, segmentation: Segmentation, label: int | None = None) -> dict[str, Any]:
    """Volumes (mL) of a segment on either side of the plane.

    Voxels the plane passes through are shared in proportion to their distance from it
    (a linear ramp across the voxel's extent along the normal), so a plane through the
    middle of a symmetric shape splits it evenly whatever the grid.
    """
    label = _segment_label(plane, segmentation, label)
    kji = _segment_voxels(segmentation, label)
    n = plane.unit_normal
    extent = float(np.abs(segmentation.ijk_to_lps[:3, :3].T @ n).sum())  # voxel's width along n
    positive = 0.0
    for start in range(0, len(kji), _CHUNK):
        s = plane.signed_distance(_lps_of(segmentation.ijk_to_lps, kji[start : start + _CHUNK]))
        positive += float(np.clip(0.5 + s / extent, 0.0, 1.0).sum())
    voxel_ml = segmentation.voxel_volume_mm3 / 1000.0
    total = len(kji) * voxel_ml
    return {
        "segment": segmentation.segments[label].name,
        "label": label,
        "positive_ml": positive * voxel_ml,  # the side the normal points to
        "negative_ml": total - positive * voxel_ml,
        "total_ml": total,
        "positive_fraction": positive / len(kji) if len(kji) else None,
    }


def split_mask(plane: CutPlane, segmentation: Segmentation, label: int | None = None) -> np.ndarray:
    """The voxels of the segment whose centres lie on the positive side (whole-grid mask)."""
    label = _segment_label(plane, segmentation, label)
    kji = _segment_voxels(segmentation, label)
    mask = np.zeros(segmentation.labels.shape, dtype=bool)
    positive = kji[plane.signed_distance(_lps_of(segmentation.ijk_to_lps, kji)) > 0]
    mask[tuple(positive.T)] = True
    return mask


__all__ = ["cut_volumes", "mesh_clearance", "segment_clearances", "split_mask", "trajectory_clearances"]
