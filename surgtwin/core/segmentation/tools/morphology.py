"""Morphology in millimetres: grow, shrink, open, close with a ball of a radius in mm.

A ball in millimetres is an ellipsoid in voxels on an anisotropic grid; it is applied
through Euclidean distance maps (SimpleITK's Maurer transform, multi-threaded) computed
only on the mask's bounding box plus the radius. The surface is taken on the voxel
faces, not centres (distances are corrected by half a voxel along the surface normal),
so a sphere grown by 2 mm has a radius 2 mm larger within half a voxel on any grid. Voxels beyond the volume's
edge count as neither inside nor outside: a segment touching the edge is not shrunk there.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from surgtwin.core.segmentation.tools.grid import (
    DISTANCE_TOLERANCE_MM,
    Grid,
    bounding_box,
    check_mask,
    distance_to,
    half_voxel_along_gradient,
    padded,
    positive_mm,
    spacing_kji,
    to_sitk,
)


def _margin(radius_mm: float, spacing: np.ndarray) -> list[int]:
    return [math.ceil(radius_mm / s) + 2 for s in spacing]


def grow(mask: np.ndarray, radius_mm: float, grid: Grid) -> np.ndarray:
    """Every voxel whose centre lies within ``radius_mm`` of a mask voxel's centre."""
    mask = check_mask(mask)
    radius = positive_mm(radius_mm, "grow radius", allow_zero=True)
    spacing = spacing_kji(grid)
    box = bounding_box(mask)
    result = mask.copy()
    if box is None or radius == 0:
        return result
    box = padded(box, _margin(radius, spacing), mask.shape)
    result[box] = _grown(mask[box], radius, spacing)
    return result


def _grown(mask: np.ndarray, radius: float, spacing: np.ndarray) -> np.ndarray:
    distance = distance_to(mask, spacing)
    reach = radius + DISTANCE_TOLERANCE_MM + half_voxel_along_gradient(distance, spacing)
    result: np.ndarray = mask | (distance <= reach)
    return result


def _shrunk(mask: np.ndarray, radius: float, spacing: np.ndarray) -> np.ndarray:
    distance = distance_to(~mask, spacing)
    reach = radius + DISTANCE_TOLERANCE_MM + half_voxel_along_gradient(distance, spacing)
    result: np.ndarray = mask & (distance > reach)
    return result


def shrink(mask: np.ndarray, radius_mm: float, grid: Grid) -> np.ndarray:
    """Mask voxels farther than ``radius_mm`` from every background voxel's centre."""
    mask = check_mask(mask)
    radius = positive_mm(radius_mm, "shrink radius", allow_zero=True)
    spacing = spacing_kji(grid)
    box = bounding_box(mask)
    result = mask.copy()
    if box is None or radius == 0:
        return result
    box = padded(box, [1, 1, 1], mask.shape)
    sub = mask[box]
    if sub.all():  # no background in reach: nothing to shrink from
        return result
    result[box] = _shrunk(sub, radius, spacing)
    return result


def open_mask(mask: np.ndarray, radius_mm: float, grid: Grid) -> np.ndarray:
    """Shrink then grow: removes parts thinner than ``2 * radius_mm`` and sharp spikes."""
    mask = check_mask(mask)
    return grow(shrink(mask, radius_mm, grid), radius_mm, grid) & mask  # never adds voxels


def close_mask(mask: np.ndarray, radius_mm: float, grid: Grid) -> np.ndarray:
    """Grow then shrink: fills gaps and dents narrower than ``2 * radius_mm``."""
    mask = check_mask(mask)
    radius = positive_mm(radius_mm, "close radius", allow_zero=True)
    spacing = spacing_kji(grid)
    box = bounding_box(mask)
    if box is None or radius == 0:
        return mask.copy()
    # Work on a box with room for the growth plus a background rim, so the shrink sees
    # real background there rather than the volume's edge.
    margin = _margin(radius + float(spacing.max()), spacing)
    big = padded(box, margin, mask.shape)
    sub = mask[big]
    rim = [(m, m) for m in margin]
    work = np.pad(sub, rim)
    closed = _shrunk(_grown(work, radius, spacing), radius, spacing)
    inner = tuple(slice(m, m + n) for m, n in zip(margin, sub.shape, strict=True))
    result = mask.copy()
    result[big] = closed[inner] | sub
    return result


def fill_holes(mask: np.ndarray, *, per_slice: bool = False) -> np.ndarray:
    """Fill cavities not connected to the outside (in 3D, or in each axial slice k)."""
    mask = check_mask(mask)
    box = bounding_box(mask)
    result = mask.copy()
    if box is None:
        return result
    sub = mask[box]
    if per_slice:
        result[box] = np.stack([ndimage.binary_fill_holes(s) for s in sub])
    else:
        filled = sitk.BinaryFillhole(to_sitk(sub.astype(np.uint8), np.ones(3)), fullyConnected=False)
        result[box] = sitk.GetArrayViewFromImage(filled).astype(bool)
    return result
