"""Lungs and airways for the one-click twin: air inside the body, split into the
tree grown from the trachea and the remaining lung parenchyma."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from surgtwin.core.segmentation.one_click_ops import Grid, closing, components, fill_holes


@dataclass(frozen=True)
class AirParameters:
    air_hu: float = -400.0  # air/lung vs soft tissue
    parenchyma_hu: tuple[float, float] = (-950.0, -600.0)  # where most lung voxels lie
    min_parenchyma_fraction: float = 0.5  # bowel gas is mostly purer than -950 HU
    min_lung_component_ml: float = 10.0
    min_lungs_ml: float = 30.0
    lung_closing_mm: float = 3.0  # fills vessels up to ~6 mm inside the lung
    trachea_hu: float = -900.0
    trachea_area_cm2: tuple[float, float] = (0.8, 8.0)
    trachea_central_fraction: float = 0.25  # seed within this fraction of body width of its centre
    airway_thresholds_hu: tuple[float, ...] = (-950.0, -925.0, -900.0)
    max_airways_ml: float = 350.0
    max_growth_ratio: float = 1.6  # a larger jump from one threshold to the next is a leak


def lung_components(hu_c: np.ndarray, inside_c: np.ndarray, grid: Grid, p: AirParameters) -> np.ndarray:
    """Coarse mask of lung parenchyma (with the airways), possibly empty."""
    air = inside_c & (hu_c < p.air_hu)
    labels, sizes = components(air)
    n = len(sizes)
    if n <= 1:
        return np.zeros_like(air)
    lo, hi = p.parenchyma_hu
    parenchyma = np.bincount(labels[air & (hu_c >= lo) & (hu_c <= hi)], minlength=n)[:n]
    fraction = parenchyma / np.maximum(sizes, 1)
    ml = sizes * grid.voxel_ml
    keep = (fraction >= p.min_parenchyma_fraction) & (ml >= p.min_lung_component_ml)
    keep[0] = False
    if ml[keep].sum() < p.min_lungs_ml:
        return np.zeros_like(air)
    lungs = keep[labels]
    # Close over the vessels inside the lung, then fill enclosed pockets (nodules).
    lungs = closing(lungs, grid.voxels_for_mm(p.lung_closing_mm)) & inside_c
    return fill_holes(lungs, open_along_k=True)


def find_trachea_seed(
    hu_c: np.ndarray,
    inside_c: np.ndarray,
    lungs_c: np.ndarray,
    grid: Grid,
    superior_is_high_k: bool,
    p: AirParameters,
) -> tuple[int, int, int] | None:
    """Coarse (k, j, i) of the trachea in its most superior slice, or None.

    Scans from the top of the lungs' slab upward-first: the trachea is the largest
    round air blob near the body's left-right centre whose 3D air connects to the lungs.
    """
    ks = np.flatnonzero(lungs_c.any(axis=(1, 2)))
    if ks.size == 0:
        return None
    air = inside_c & (hu_c < p.trachea_hu)
    reach_labels, _ = components(air | lungs_c)
    lung_ids = set(np.unique(reach_labels[lungs_c]).tolist()) - {0}
    px_cm2 = float(grid.spacing_kji[1] * grid.spacing_kji[2]) / 100.0
    lo_area, hi_area = p.trachea_area_cm2
    order = range(hu_c.shape[0] - 1, -1, -1) if superior_is_high_k else range(hu_c.shape[0])
    mid = int((ks[0] + ks[-1]) // 2)
    for k in order:
        if (superior_is_high_k and k < mid) or (not superior_is_high_k and k > mid):
            break
        body_cols = np.flatnonzero(inside_c[k].any(axis=0))
        if body_cols.size == 0 or not air[k].any():
            continue
        centre, width = (body_cols[0] + body_cols[-1]) / 2.0, float(body_cols[-1] - body_cols[0])
        labels2d, n = ndimage.label(air[k])
        if n == 0:
            continue
        areas = np.bincount(labels2d.ravel())[1:] * px_cm2
        best: tuple[float, tuple[int, int, int]] | None = None
        for index in np.flatnonzero((areas >= lo_area) & (areas <= hi_area)):
            jj, ii = np.nonzero(labels2d == index + 1)
            if abs(ii.mean() - centre) > p.trachea_central_fraction * width:
                continue
            seed = (k, int(jj[len(jj) // 2]), int(ii[len(ii) // 2]))
            if int(reach_labels[seed]) not in lung_ids:
                continue
            if best is None or areas[index] > best[0]:
                best = (float(areas[index]), seed)
        if best is not None:
            return best[1]
    return None


def grow_airways(
    hu: np.ndarray, seed_full: tuple[int, int, int], box: tuple[slice, ...], voxel_ml: float, p: AirParameters
) -> tuple[np.ndarray, float]:
    """Region growing from the trachea, raising the threshold until the tree leaks.

    Returns (mask on ``box``, threshold used). A step is a leak when the volume jumps
    by more than ``max_growth_ratio`` or passes ``max_airways_ml``; the previous step wins.
    """
    roi = sitk.GetImageFromArray(hu[box])  # one copy of the box; results are read as views
    seed = [
        int(seed_full[2] - box[2].start),
        int(seed_full[1] - box[1].start),
        int(seed_full[0] - box[0].start),
    ]
    best: sitk.Image | None = None
    best_t = p.airway_thresholds_hu[0]
    previous_ml = 0.0
    for threshold in p.airway_thresholds_hu:
        grown = sitk.ConnectedThreshold(roi, seedList=[seed], lower=-32768, upper=threshold)
        ml = float(np.count_nonzero(sitk.GetArrayViewFromImage(grown))) * voxel_ml
        if best is not None and (ml > p.max_airways_ml or ml > p.max_growth_ratio * previous_ml):
            break
        best, best_t, previous_ml = grown, threshold, ml
        if ml > p.max_airways_ml:  # leaked already at the strictest threshold
            break
    assert best is not None
    return sitk.GetArrayFromImage(best) > 0, best_t
