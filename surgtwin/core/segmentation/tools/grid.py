"""Geometry and argument checks shared by the tools (spacing, LPS <-> index, boxes)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

Grid = Segmentation | Volume | Sequence[float]  # an object with a grid, or spacing (i, j, k) in mm
Box = tuple[slice, slice, slice]

# Distances come back from SimpleITK as float32: tolerate their rounding at exact ties.
DISTANCE_TOLERANCE_MM = 1e-4


def spacing_kji(grid: Grid) -> np.ndarray:
    """Voxel size in mm along (k, j, i), the array axes."""
    if isinstance(grid, Segmentation | Volume):
        spacing_ijk = np.asarray(grid.spacing, dtype=np.float64)
    else:
        spacing_ijk = np.asarray(grid, dtype=np.float64)
        if spacing_ijk.shape != (3,) or not np.all(np.isfinite(spacing_ijk)) or np.any(spacing_ijk <= 0):
            raise SegmentationError(
                f"spacing must be three positive millimetre values (i, j, k), got {grid!r}"
            )
    return spacing_ijk[::-1].copy()


def check_volume(volume: Any) -> Volume:
    if not isinstance(volume, Volume):
        raise SegmentationError(f"expected a Volume, got {type(volume).__name__}")
    return volume


def positive_mm(value: Any, what: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not math.isfinite(value):
        raise SegmentationError(f"{what} must be a number of millimetres, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise SegmentationError(
            f"{what} must be {'zero or more' if allow_zero else 'more than zero'} mm, got {value}"
        )
    return float(value)


def check_mask(mask: Any, shape: tuple[int, ...] | None = None, what: str = "mask") -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.ndim != 3:
        raise SegmentationError(f"{what} must be a 3D array on the segmentation's grid")
    if shape is not None and mask.shape != shape:
        raise SegmentationError(f"{what} has shape {mask.shape} but the segmentation has {shape}")
    return mask.astype(bool, copy=False)


def bounding_box(mask: np.ndarray) -> Box | None:
    """Smallest box (k, j, i slices) holding every true voxel; None for an empty mask."""
    slices = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=other))
        if hits.size == 0:
            return None
        slices.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return (slices[0], slices[1], slices[2])


def padded(box: Box, pad: Sequence[int], shape: Sequence[int]) -> Box:
    k, j, i = (
        slice(max(0, s.start - p), min(n, s.stop + p)) for s, p, n in zip(box, pad, shape, strict=True)
    )
    return (k, j, i)


def lps_to_kji(grid: Segmentation | Volume, points_lps: Any) -> np.ndarray:
    """(N, 3) LPS mm -> (N, 3) continuous array indices (k, j, i)."""
    points = np.asarray(points_lps, dtype=np.float64)
    if points.ndim == 1:
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0 or not np.all(np.isfinite(points)):
        raise SegmentationError("points must be one or more (x, y, z) LPS positions in mm")
    inv = np.linalg.inv(grid.ijk_to_lps)
    ijk = points @ inv[:3, :3].T + inv[:3, 3]
    return ijk[:, ::-1]


def seed_indices(
    grid: Segmentation | Volume, seeds_lps: Any, shape: tuple[int, ...]
) -> list[tuple[int, int, int]]:
    """Nearest voxel (k, j, i) of each seed; a seed outside the volume is an error."""
    kji = np.rint(lps_to_kji(grid, seeds_lps)).astype(np.int64)
    for point, index in zip(np.atleast_2d(np.asarray(seeds_lps, dtype=float)), kji, strict=True):
        if np.any(index < 0) or np.any(index >= np.asarray(shape)):
            raise SegmentationError(f"seed point {tuple(np.round(point, 1))} mm lies outside the volume")
    return [(int(k), int(j), int(i)) for k, j, i in kji]


def to_sitk(array: np.ndarray, spacing_kji_mm: np.ndarray) -> sitk.Image:
    """An image of ``array`` with spacing only: connectivity and distances need no direction."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing([float(s) for s in spacing_kji_mm[::-1]])
    return image


def half_voxel_along_gradient(distance: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Half a voxel along the direction the distance grows (mm): the gap between voxel
    centres, where distances run, and voxel faces, where a segment's surface lies.

    Exactly ``s_a / 2`` when that direction is an axis ``a``; for oblique directions the
    largest ``|n_a| * s_a / 2``, which keeps volumes unbiased (a staircase surface sits
    much closer to its centres than the box corners do).
    """
    grads = [np.gradient(distance, float(s), axis=a) for a, s in enumerate(spacing)]
    norm = np.sqrt(sum(g * g for g in grads))
    norm[norm == 0] = 1.0
    half: np.ndarray = 0.5 * np.max(
        [np.abs(g) * float(s) for g, s in zip(grads, spacing, strict=True)], axis=0
    )
    return half / norm


def distance_to(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Euclidean distance in mm from each voxel centre to the nearest true voxel centre."""
    image = to_sitk(mask.astype(np.uint8), spacing)
    distance = sitk.SignedMaurerDistanceMap(
        image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    return sitk.GetArrayViewFromImage(distance).copy()
