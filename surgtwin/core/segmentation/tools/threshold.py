"""Threshold tools: HU ranges and CT presets, Otsu, and MR intensity normalisation."""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.presets import CT_PRESETS
from surgtwin.core.segmentation.tools.grid import check_mask, check_volume, spacing_kji, to_sitk
from surgtwin.core.volume import Volume


def threshold(
    volume: Volume,
    lower: float | None = None,
    upper: float | None = None,
    *,
    preset: str | None = None,
) -> np.ndarray:
    """Voxels with ``lower <= value <= upper`` (either bound may be open), or a CT preset's range."""
    volume = check_volume(volume)
    if preset is not None:
        if lower is not None or upper is not None:
            raise SegmentationError("give either a preset or a lower/upper range, not both")
        if preset not in CT_PRESETS:
            raise SegmentationError(f"unknown CT preset {preset!r} (known: {', '.join(CT_PRESETS)})")
        if volume.modality.upper() not in ("CT", "") or volume.units not in ("HU", ""):
            raise SegmentationError(
                f"CT presets are in Hounsfield units; this volume is {volume.modality or 'unknown'} "
                f"in {volume.units or 'arbitrary units'}: give a range or use Otsu"
            )
        lower, upper = CT_PRESETS[preset].lower_hu, CT_PRESETS[preset].upper_hu
    if lower is None and upper is None:
        raise SegmentationError("give a lower and/or upper threshold, or a preset")
    for value, what in ((lower, "lower"), (upper, "upper")):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float | np.number) or math.isnan(value)
        ):
            raise SegmentationError(f"the {what} threshold must be a number, got {value!r}")
    if lower is not None and upper is not None and lower > upper:
        raise SegmentationError(f"the lower threshold ({lower}) is above the upper one ({upper})")
    voxels = volume.voxels
    mask = np.ones(voxels.shape, dtype=bool) if lower is None else voxels >= lower
    if upper is not None:
        mask &= voxels <= upper
    return mask


def otsu_threshold_value(volume: Volume, *, mask: np.ndarray | None = None, bins: int = 256) -> float:
    """Otsu's threshold of the volume's intensities (inside ``mask`` when given)."""
    volume = check_volume(volume)
    if not isinstance(bins, int) or bins < 2:
        raise SegmentationError(f"Otsu needs at least 2 histogram bins, got {bins!r}")
    image = sitk.Cast(to_sitk(volume.voxels, spacing_kji(volume)), sitk.sitkFloat32)
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.SetNumberOfHistogramBins(bins)
    otsu.SetInsideValue(0)
    otsu.SetOutsideValue(1)
    if mask is not None:
        otsu.SetMaskValue(1)
        otsu.Execute(
            image, to_sitk(check_mask(mask, volume.voxels.shape).astype(np.uint8), spacing_kji(volume))
        )
    else:
        otsu.Execute(image)
    return float(otsu.GetThreshold())


def otsu(volume: Volume, *, mask: np.ndarray | None = None, bins: int = 256) -> np.ndarray:
    """Voxels brighter than Otsu's threshold (for MR, where no fixed range applies)."""
    value = otsu_threshold_value(volume, mask=mask, bins=bins)
    result: np.ndarray = volume.voxels > value
    return result if mask is None else result & mask


def normalise_intensity(
    volume: Volume,
    *,
    bias_correction: bool = True,
    shrink: int = 4,
    iterations: int = 50,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> Volume:
    """An MR volume with the scanner's smooth bias field removed (N4, estimated on a
    ``shrink``-times smaller copy and applied at full resolution) and intensities
    scaled so the foreground's ``percentiles`` map to 0 and 1. Float32, same grid."""
    volume = check_volume(volume)
    if not isinstance(shrink, int) or not 1 <= shrink <= 16:
        raise SegmentationError(f"shrink must be an integer from 1 to 16, got {shrink!r}")
    if not isinstance(iterations, int) or iterations < 1:
        raise SegmentationError(f"iterations must be a positive integer, got {iterations!r}")
    low_p, high_p = percentiles
    if not 0 <= low_p < high_p <= 100:
        raise SegmentationError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    spacing = spacing_kji(volume)
    image = sitk.Cast(to_sitk(volume.voxels, spacing), sitk.sitkFloat32)
    foreground = sitk.OtsuThreshold(image, 0, 1, 200)
    values = sitk.GetArrayViewFromImage(image)
    if bias_correction:
        # N4 needs positive intensities: shift so the minimum is 1.
        offset = 1.0 - float(values.min())
        positive = image + offset
        small = sitk.Shrink(positive, [shrink] * 3)
        small_mask = sitk.Shrink(foreground, [shrink] * 3)
        corrector = sitk.N4BiasFieldCorrectionImageFilter()
        corrector.SetMaximumNumberOfIterations([iterations] * 4)
        corrector.Execute(small, small_mask)
        log_field = corrector.GetLogBiasFieldAsImage(positive)
        corrected = sitk.GetArrayFromImage(positive / sitk.Exp(log_field)) - offset
    else:
        corrected = np.array(values, dtype=np.float32)
    inside = corrected[sitk.GetArrayViewFromImage(foreground) > 0]
    if inside.size == 0:
        inside = corrected.ravel()
    low, high = np.percentile(inside, [low_p, high_p])
    scale = float(high - low) or 1.0
    return Volume(
        ((corrected - low) / scale).astype(np.float32),
        volume.ijk_to_lps.copy(),
        modality=volume.modality,
        units="",
        name=f"{volume.name} (normalised)" if volume.name else "normalised",
        provenance={
            "tool": "normalise_intensity",
            "bias_correction": bias_correction,
            "shrink": shrink,
            "iterations": iterations,
            "percentiles": list(percentiles),
            "source": volume.provenance,
        },
    )
