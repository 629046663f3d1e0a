"""Region growing from seed points given in LPS millimetres (SimpleITK, multi-threaded)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import SimpleITK as sitk

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.tools.grid import (
    check_volume,
    positive_mm,
    seed_indices,
    spacing_kji,
    to_sitk,
)
from surgtwin.core.volume import Volume


def _seeds_ijk(volume: Volume, seeds_lps: Any) -> list[tuple[int, int, int]]:
    return [(i, j, k) for k, j, i in seed_indices(volume, seeds_lps, volume.voxels.shape)]


def connected_threshold(
    volume: Volume,
    seeds_lps: Any,
    lower: float,
    upper: float,
    *,
    fully_connected: bool = False,
) -> np.ndarray:
    """Voxels in ``[lower, upper]`` connected to a seed through such voxels."""
    volume = check_volume(volume)
    for value, what in ((lower, "lower"), (upper, "upper")):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or math.isnan(value):
            raise SegmentationError(f"the {what} threshold must be a number, got {value!r}")
    if lower > upper:
        raise SegmentationError(f"the lower threshold ({lower}) is above the upper one ({upper})")
    seeds = _seeds_ijk(volume, seeds_lps)
    image = sitk.Cast(to_sitk(volume.voxels, spacing_kji(volume)), sitk.sitkFloat32)
    grown = sitk.ConnectedThreshold(
        image,
        seedList=seeds,
        lower=float(lower),
        upper=float(upper),
        replaceValue=1,
        connectivity=sitk.ConnectedThresholdImageFilter.FullConnectivity
        if fully_connected
        else sitk.ConnectedThresholdImageFilter.FaceConnectivity,
    )
    return sitk.GetArrayFromImage(grown).astype(bool)


def confidence_connected(
    volume: Volume,
    seeds_lps: Any,
    *,
    multiplier: float = 2.5,
    iterations: int = 3,
    radius_mm: float = 2.0,
) -> np.ndarray:
    """Grow from the seeds over voxels within ``multiplier`` standard deviations of the
    region's mean (estimated first in a ``radius_mm`` neighbourhood of each seed, then
    re-estimated from the grown region ``iterations`` times)."""
    volume = check_volume(volume)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) or not 0 < multiplier <= 10:
        raise SegmentationError(f"multiplier must be a number in (0, 10], got {multiplier!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 0 <= iterations <= 50:
        raise SegmentationError(f"iterations must be an integer from 0 to 50, got {iterations!r}")
    radius = positive_mm(radius_mm, "neighbourhood radius")
    seeds = _seeds_ijk(volume, seeds_lps)
    spacing = spacing_kji(volume)
    radius_voxels = max(1, round(radius / float(spacing.min())))
    image = sitk.Cast(to_sitk(volume.voxels, spacing), sitk.sitkFloat32)
    grown = sitk.ConfidenceConnected(
        image,
        seedList=seeds,
        numberOfIterations=iterations,
        multiplier=float(multiplier),
        initialNeighborhoodRadius=radius_voxels,
        replaceValue=1,
    )
    return sitk.GetArrayFromImage(grown).astype(bool)
