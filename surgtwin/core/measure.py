"""Measurements on a case, as JSON-ready dicts: segment volumes, surface areas, intensity
statistics, and distances between LPS points and from a point to a segment's surface.

Units: millilitres, square millimetres, millimetres; intensities in the volume's units
(e.g. HU). Positions are patient LPS millimetres.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from surgtwin.core.errors import MeshError, SegmentationError
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.segmentation.io import same_grid
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

# A point counts as inside a closed surface when its winding number is above this.
INSIDE_WINDING = 0.5
# Triangles handled per vectorised step (bounds memory at ~100 MB for huge meshes).
_CHUNK = 200_000
UNITS = {"volume": "mL", "area": "mm^2", "distance": "mm", "position": "LPS mm"}


# --- intensities ----------------------------------------------------------------------
def intensity_statistics(volume: Volume, mask: np.ndarray) -> dict[str, Any]:
    """Statistics of the volume's values where ``mask`` (on the volume's grid) is true."""
    if mask.shape != volume.voxels.shape:
        raise SegmentationError(f"mask shape {mask.shape} is not the volume's {volume.voxels.shape}")
    values = volume.voxels[mask].astype(np.float64)
    stats: dict[str, Any] = {"units": volume.units or "arbitrary", "voxel_count": int(values.size)}
    if values.size == 0:
        return stats | dict.fromkeys(("mean", "std", "min", "max", "median", "p5", "p95"))
    p5, median, p95 = np.percentile(values, [5, 50, 95])
    return stats | {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "median": float(median),
        "p5": float(p5),
        "p95": float(p95),
    }


# --- meshes -----------------------------------------------------------------------------
def is_closed(mesh: SurfaceMesh) -> bool:
    """Every edge shared by exactly two triangles, in opposite directions (closed and oriented)."""
    edges = mesh.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    directed, counts = np.unique(edges, axis=0, return_counts=True)
    if np.any(counts != 1):
        return False
    undirected = np.sort(directed, axis=1)
    _, pair_counts = np.unique(undirected, axis=0, return_counts=True)
    return bool(np.all(pair_counts == 2))


def mesh_measurements(mesh: SurfaceMesh) -> dict[str, Any]:
    closed = is_closed(mesh)
    return {
        "triangles": mesh.triangle_count,
        "closed": closed,
        # the enclosed volume means nothing for an open surface
        "volume_ml": mesh.volume_ml() if closed else None,
        "surface_area_mm2": mesh.area_mm2(),
    }


def _closest_points(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point to ``p`` on each triangle (a, b, c): Ericson, Real-Time Collision
    Detection 5.1.5, vectorised; regions are applied from last to first so the first wins."""
    ab, ac, ap, bp, cp = b - a, c - a, p - a, p - b, p - c
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        out = a + ab * (vb / denom)[:, None] + ac * (vc / denom)[:, None]  # inside the face
        regions = [
            (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),
            (vb <= 0) & (d2 >= 0) & (d6 <= 0),
            (d6 >= 0) & (d5 <= d6),
            (vc <= 0) & (d1 >= 0) & (d3 <= 0),
            (d3 >= 0) & (d4 <= d3),
            (d1 <= 0) & (d2 <= 0),
        ]
        points = [
            b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)))[:, None],
            a + ac * (d2 / (d2 - d6))[:, None],
            c,
            a + ab * (d1 / (d1 - d3))[:, None],
            b,
            a,
        ]
    for region, point in zip(regions, points, strict=True):
        out = np.where(region[:, None], point, out)
    return out


def _winding_number(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Sum of signed solid angles / 4 pi (van Oosterom & Strackee): 1 inside, 0 outside."""
    ra, rb, rc = a - p, b - p, c - p
    la, lb, lc = (np.linalg.norm(r, axis=1) for r in (ra, rb, rc))
    det = np.einsum("ij,ij->i", ra, np.cross(rb, rc))
    dots = (
        la * lb * lc
        + np.einsum("ij,ij->i", ra, rb) * lc
        + np.einsum("ij,ij->i", rb, rc) * la
        + np.einsum("ij,ij->i", rc, ra) * lb
    )
    return float(np.arctan2(det, dots).sum() * 2.0 / (4.0 * np.pi))


def distance_to_surface(point_lps: Sequence[float] | np.ndarray, mesh: SurfaceMesh) -> dict[str, Any]:
    """Signed distance (mm) from a point to a closed surface: negative inside, positive outside."""
    p = _point(point_lps)
    if mesh.triangle_count == 0:
        raise MeshError(f"mesh {mesh.name!r} has no triangles to measure against")
    best, best_d2, winding = np.zeros(3), np.inf, 0.0
    for start in range(0, mesh.triangle_count, _CHUNK):
        tri = mesh.vertices[mesh.faces[start : start + _CHUNK]]
        a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
        closest = _closest_points(p, a, b, c)
        d2 = np.einsum("ij,ij->i", closest - p, closest - p)
        if np.all(np.isnan(d2)):
            continue  # only degenerate triangles in this chunk
        i = int(np.nanargmin(d2))
        if d2[i] < best_d2:
            best, best_d2 = closest[i], float(d2[i])
        winding += _winding_number(p, a, b, c)
    inside = winding > INSIDE_WINDING
    distance = float(np.sqrt(best_d2))
    return {
        "segment": mesh.name,
        "point_lps_mm": p.tolist(),
        "distance_mm": -distance if inside else distance,
        "inside": bool(inside),
        "closest_point_lps_mm": [float(v) for v in best],
    }


def distance_between_points(
    a_lps: Sequence[float] | np.ndarray, b_lps: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    a, b = _point(a_lps), _point(b_lps)
    return {"from_lps_mm": a.tolist(), "to_lps_mm": b.tolist(), "distance_mm": float(np.linalg.norm(b - a))}


def _point(value: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(value, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise SegmentationError(f"a point needs three finite LPS coordinates in mm, got {list(p)}")
    return p


# --- segments ---------------------------------------------------------------------------
def segment_measurements(
    segmentation: Segmentation,
    volume: Volume | None = None,
    meshes: Sequence[SurfaceMesh] = (),
    segments: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Per segment: voxel volume, mesh volume and area (when a mesh is given), intensities."""
    if volume is not None and not same_grid(
        segmentation.labels.shape, segmentation.ijk_to_lps, volume.voxels.shape, volume.ijk_to_lps
    ):
        raise SegmentationError(
            "the segmentation is not on the volume's grid; intensities cannot be measured"
        )
    labels = (
        [segmentation.label_of(n) for n in segments]
        if segments is not None
        else sorted(segmentation.segments)
    )
    counts = np.bincount(segmentation.labels.ravel(), minlength=max(labels, default=0) + 1)
    results = []
    for label in labels:
        segment = segmentation.segments[label]
        mesh = next((m for m in meshes if m.segment_label == label), None) or next(
            (m for m in meshes if m.name == segment.name), None
        )
        count = int(counts[label])
        results.append(
            {
                "label": label,
                "name": segment.name,
                "voxel_count": count,
                "volume_ml": count * segmentation.voxel_volume_mm3 / 1000.0,
                "mesh": mesh_measurements(mesh) if mesh is not None else None,
                "intensity": intensity_statistics(volume, segmentation.labels == label)
                if volume is not None
                else None,
            }
        )
    return results


def measure_case(
    segmentation: Segmentation, volume: Volume | None = None, meshes: Sequence[SurfaceMesh] = ()
) -> dict[str, Any]:
    """Everything ``surgtwin measure`` prints, as one JSON-ready dict."""
    return {
        "frame": "LPS",
        "units": UNITS | {"intensity": (volume.units or "arbitrary") if volume is not None else None},
        "volume": None if volume is None else {"name": volume.name, "modality": volume.modality},
        "voxel_size_mm": [float(s) for s in segmentation.spacing],
        "segments": segment_measurements(segmentation, volume, meshes),
    }
