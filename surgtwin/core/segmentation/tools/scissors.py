"""Scissors: cut with a polygon drawn on a view, swept along the view direction."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.commands import EditLabels
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools.edit import apply_mask

Operation = Literal["remove_inside", "keep_inside", "fill_inside"]
OPERATIONS = ("remove_inside", "keep_inside", "fill_inside")


def _plane_basis(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.eye(3)[int(np.argmin(np.abs(direction)))]
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(direction, u)


def _inside_polygon(px: np.ndarray, py: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points (polygon edges loop in Python)."""
    inside = np.zeros(px.shape, dtype=bool)
    for (x1, y1), (x2, y2) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        if y1 == y2:
            continue
        crosses = (y1 > py) != (y2 > py)
        x_at = x1 + (x2 - x1) * (py - y1) / (y2 - y1)
        inside ^= crosses & (px < x_at)
    return inside


def prism_mask(segmentation: Segmentation, polygon_lps: Any, direction_lps: Any) -> np.ndarray:
    """Voxels whose centre lies in the infinite prism: the polygon swept along ``direction_lps``."""
    polygon = np.asarray(polygon_lps, dtype=np.float64)
    direction = np.asarray(direction_lps, dtype=np.float64)
    if polygon.ndim != 2 or polygon.shape[1] != 3 or len(polygon) < 3 or not np.all(np.isfinite(polygon)):
        raise SegmentationError("the scissors polygon needs at least three (x, y, z) LPS points in mm")
    if direction.shape != (3,) or not np.all(np.isfinite(direction)) or np.linalg.norm(direction) < 1e-9:
        raise SegmentationError(f"the view direction must be a non-zero 3D vector, got {direction_lps!r}")
    direction = direction / np.linalg.norm(direction)
    u, v = _plane_basis(direction)
    flat = np.stack([polygon @ u, polygon @ v], axis=1)
    x, y = flat[:, 0], flat[:, 1]
    if abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) < 1e-9:  # shoelace area
        raise SegmentationError("the scissors polygon has no area seen along the view direction")
    matrix, offset = segmentation.ijk_to_lps[:3, :3], segmentation.ijk_to_lps[:3, 3]
    # (u, v) of a voxel centre is linear in (i, j, k): coefficient rows for u and v.
    cu, cv = u @ matrix, v @ matrix
    ou, ov = float(u @ offset), float(v @ offset)
    nk, nj, ni = segmentation.labels.shape
    columns = matrix / np.linalg.norm(matrix, axis=0)
    along = np.abs(direction @ columns)  # 1 where the view looks straight along an index axis
    if along.max() > 1 - 1e-12:
        axis_ijk = int(np.argmax(along))  # the prism is constant along it: test one slice
        ranges = [np.arange(n, dtype=np.float64) for n in (ni, nj, nk)]
        ranges[axis_ijk] = np.zeros(1)
        gk, gj, gi = np.meshgrid(ranges[2], ranges[1], ranges[0], indexing="ij")
        flat_mask = _inside_polygon(
            cu[0] * gi + cu[1] * gj + cu[2] * gk + ou, cv[0] * gi + cv[1] * gj + cv[2] * gk + ov, flat
        )
        return np.broadcast_to(flat_mask, (nk, nj, ni)).copy()
    j, i = np.meshgrid(np.arange(nj), np.arange(ni), indexing="ij")
    mask = np.empty((nk, nj, ni), dtype=bool)
    base_u = cu[0] * i + cu[1] * j + ou
    base_v = cv[0] * i + cv[1] * j + ov
    for k in range(nk):
        mask[k] = _inside_polygon(base_u + cu[2] * k, base_v + cv[2] * k, flat)
    return mask


def scissors(
    segmentation: Segmentation,
    label: int,
    polygon_lps: Any,
    direction_lps: Any,
    operation: Operation = "remove_inside",
) -> EditLabels:
    """Cut segment ``label`` with the prism of ``polygon_lps`` swept along ``direction_lps``:
    ``remove_inside`` erases it there, ``keep_inside`` erases it everywhere else,
    ``fill_inside`` paints the whole prism with it."""
    segmentation.check_label(label)
    if operation not in OPERATIONS:
        raise SegmentationError(f"operation must be one of {OPERATIONS}, got {operation!r}")
    prism = prism_mask(segmentation, polygon_lps, direction_lps)
    parameters = {
        "polygon_lps": np.asarray(polygon_lps, dtype=float).round(4).tolist(),
        "direction_lps": np.asarray(direction_lps, dtype=float).round(6).tolist(),
        "operation": operation,
    }
    if operation == "remove_inside":
        return apply_mask(segmentation, label, prism, "remove", tool="scissors", parameters=parameters)
    if operation == "keep_inside":
        return apply_mask(segmentation, label, ~prism, "remove", tool="scissors", parameters=parameters)
    return apply_mask(segmentation, label, prism, "add", tool="scissors", parameters=parameters)
