"""Paint and erase with a spherical brush; one stroke (a list of centres) is one edit."""

from __future__ import annotations

from typing import Any

import numpy as np

from surgtwin.core.segmentation.commands import EditLabels
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools.edit import Mode, apply_mask
from surgtwin.core.segmentation.tools.grid import lps_to_kji, positive_mm


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    length2 = float(ab @ ab)
    t = np.zeros(len(points)) if length2 == 0 else np.clip((points - a) @ ab / length2, 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def stroke_mask(
    segmentation: Segmentation, centers_lps: Any, radius_mm: float
) -> tuple[np.ndarray, tuple[int, int, int]] | None:
    """Voxels whose centre lies within ``radius_mm`` of the stroke (the spheres at the
    centres and the capsules joining consecutive ones, so a fast stroke leaves no gaps);
    returned as a sub-box mask and its first voxel (k, j, i), or None if it misses the grid."""
    radius = positive_mm(radius_mm, "brush radius")
    centers_kji = lps_to_kji(segmentation, centers_lps)
    centers = np.asarray(centers_lps, dtype=np.float64).reshape(-1, 3)
    shape = np.asarray(segmentation.labels.shape)
    # Half-extent of a radius-r ball along each array axis: r * |row of the inverse matrix|.
    inv = np.linalg.inv(segmentation.ijk_to_lps[:3, :3])[::-1]
    reach = radius * np.linalg.norm(inv, axis=1)
    low = np.maximum(np.floor(centers_kji.min(axis=0) - reach).astype(np.int64), 0)
    high = np.minimum(np.ceil(centers_kji.max(axis=0) + reach).astype(np.int64) + 1, shape)
    if np.any(high <= low):
        return None
    grids = np.meshgrid(*(np.arange(lo, hi) for lo, hi in zip(low, high, strict=True)), indexing="ij")
    ijk = np.stack([grids[2].ravel(), grids[1].ravel(), grids[0].ravel()], axis=1).astype(np.float64)
    points = ijk @ segmentation.ijk_to_lps[:3, :3].T + segmentation.ijk_to_lps[:3, 3]
    inside = np.zeros(len(points), dtype=bool)
    pairs = list(zip(centers[:-1], centers[1:], strict=True)) or [(centers[0], centers[0])]
    for a, b in pairs:
        lo, hi = np.minimum(a, b) - radius, np.maximum(a, b) + radius
        near = np.flatnonzero(np.all((points >= lo) & (points <= hi), axis=1) & ~inside)
        inside[near] = _segment_distance(points[near], a, b) <= radius + 1e-9
    mask = inside.reshape(tuple(int(n) for n in high - low))
    return mask, (int(low[0]), int(low[1]), int(low[2]))


def paint(
    segmentation: Segmentation,
    label: int,
    centers_lps: Any,
    radius_mm: float,
    *,
    erase: bool = False,
    overwrite: bool = True,
) -> EditLabels:
    """One brush stroke: paint ``label`` (or, with ``erase``, clear it) within ``radius_mm``
    of the stroke through ``centers_lps`` (LPS mm). Other segments are painted over unless
    ``overwrite=False``; erasing only clears this segment."""
    segmentation.check_label(label)
    centers = np.asarray(centers_lps, dtype=np.float64).reshape(-1, 3)
    parameters = {"centers_lps": centers.round(4).tolist(), "radius_mm": float(radius_mm), "erase": erase}
    stroke = stroke_mask(segmentation, centers, radius_mm)
    mode: Mode = "remove" if erase else "add"
    tool = "erase" if erase else "paint"
    if stroke is None:
        empty = np.zeros((1, 1, 1), dtype=bool)
        return apply_mask(segmentation, label, empty, mode, start=(0, 0, 0), tool=tool, parameters=parameters)
    mask, start = stroke
    return apply_mask(
        segmentation, label, mask, mode, start=start, overwrite=overwrite, tool=tool, parameters=parameters
    )
