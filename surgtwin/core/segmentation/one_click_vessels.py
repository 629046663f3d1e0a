"""Contrast detection and contrast-filled vessels for the one-click twin.

Contrast blood and cancellous bone share HU (150-600), so the split uses shape and
surroundings: cortical bone (brighter than contrast blood) surrounds marrow, while a
vessel's HU stays near the blood level, with fat or soft tissue around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgtwin.core.segmentation.one_click_ops import Box, Grid, bounding_box, components, dilate, opening


@dataclass(frozen=True)
class VesselParameters:
    detect_low_hu: float = 120.0  # unenhanced blood is 30-60 HU
    detect_opening_mm: float = 4.0  # keeps only structures thicker than ~8 mm (aorta, heart)
    detect_min_ml: float = 5.0
    cortex_hu: float = 550.0  # cortex = brighter than max(this, commonest bright HU + margin)
    cortex_margin_hu: float = 200.0
    cortex_reach_mm: float = 3.0  # marrow and partial-volume rims lie this close to cortex
    max_cortex_contact: float = 0.4  # enclosed by near-cortex voxels: marrow, not blood
    max_spread: float = 0.3  # interquartile range / median HU of a blood pool
    low_ratio: float = 0.7  # vessel threshold = ratio x aorta-level HU, clipped to low_range
    low_range_hu: tuple[float, float] = (115.0, 200.0)
    opening_mm: float = 1.5  # cuts partial-volume bridges to enhancing organs
    min_component_ml: float = 2.0


@dataclass
class Cortex:
    hu: float  # cortex threshold used
    near: np.ndarray  # coarse voxels within reach of cortex


def find_cortex(
    hu_c: np.ndarray, body_c: np.ndarray, grid: Grid, p: VesselParameters, blood_hu: float | None = None
) -> Cortex:
    """Cortical bone, with a threshold above the commonest bright HU (and above ``blood_hu``)."""
    bright = hu_c[body_c & (hu_c >= p.detect_low_hu) & (hu_c <= 1000.0)]
    mode = p.detect_low_hu
    if bright.size:
        counts, edges = np.histogram(bright, bins=np.arange(p.detect_low_hu, 1010.0, 10.0))
        counts = np.convolve(counts, np.ones(5) / 5.0, mode="same")
        mode = float(edges[int(np.argmax(counts))] + 5.0)
    threshold = max(p.cortex_hu, mode + p.cortex_margin_hu, (blood_hu or 0.0) + p.cortex_margin_hu)
    near = dilate(body_c & (hu_c > threshold), grid.voxels_for_mm(p.cortex_reach_mm))
    return Cortex(threshold, near)


def _vessel_like(
    cand: np.ndarray, hu_c: np.ndarray, near: np.ndarray, grid: Grid, min_ml: float, p: VesselParameters
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Box]:
    """(labels, keep flags per label, sizes, box): big, uniform components not enclosed by cortex.

    ``labels`` covers ``box`` only: the candidates' bounding box plus the one-voxel shell.
    Blood is homogeneous (interquartile range a small fraction of its level); marrow
    mixed with trabeculae and thin cortex is not, even where its cortex is too thin to see.
    """
    box = bounding_box(cand, 1) or (slice(0, 0),) * 3
    labels, sizes = components(cand[box])
    n = len(sizes)
    keep = np.zeros(n, dtype=bool)
    if n <= 1:
        return labels, keep, sizes, box
    shell = _grow_labels(labels)
    shell[labels > 0] = 0
    total = np.bincount(shell.ravel(), minlength=n)[:n]
    touching = np.bincount(shell[near[box]], minlength=n)[:n]
    keep = (sizes * grid.voxel_ml >= min_ml) & (touching <= p.max_cortex_contact * np.maximum(total, 1))
    keep[0] = False
    if keep.any():
        hu_box = hu_c[box]
        for i in np.flatnonzero(keep):
            q25, q50, q75 = np.percentile(hu_box[labels == i], [25, 50, 75])
            keep[i] = (q75 - q25) <= p.max_spread * q50
    return labels, keep, sizes, box


def _grow_labels(labels: np.ndarray) -> np.ndarray:
    """Labels extended by one voxel (6-neighbours) into the background around them.

    Neighbours are taken in the order -k, +k, -j, +j, -i, +i; the first one wins.
    """
    grown = labels.copy()
    for axis in range(3):
        for shift in (1, -1):
            dst = [slice(None)] * 3
            src = [slice(None)] * 3
            dst[axis], src[axis] = (
                (slice(1, None), slice(None, -1)) if shift == 1 else (slice(None, -1), slice(1, None))
            )
            target = grown[tuple(dst)]
            np.copyto(target, labels[tuple(src)], where=target == 0)
    return grown


def detect_contrast(
    hu_c: np.ndarray, body_c: np.ndarray, cortex: Cortex, grid: Grid, p: VesselParameters
) -> tuple[float | None, str]:
    """(aorta-level HU or None, a sentence saying what was found)."""
    cand = body_c & (hu_c >= p.detect_low_hu) & (hu_c <= cortex.hu) & ~cortex.near
    core = opening(cand, grid.voxels_for_mm(p.detect_opening_mm))
    labels, keep, sizes, box = _vessel_like(core, hu_c, cortex.near, grid, p.detect_min_ml, p)
    if not keep.any():
        largest = float(sizes[1:].max() * grid.voxel_ml) if len(sizes) > 1 else 0.0
        soft = hu_c[body_c & (hu_c > -100) & (hu_c < p.detect_low_hu)]
        level_99 = float(np.percentile(soft, 99)) if soft.size else float("nan")
        return None, (
            f"no contrast detected (no blood pool brighter than {p.detect_low_hu:.0f} HU and thicker than "
            f"{2 * p.detect_opening_mm:.0f} mm outside bone; largest bright core {largest:.1f} mL; "
            f"99th percentile of soft tissue {level_99:.0f} HU)"
        )
    # The brightest large blood pool is the aorta (or heart); organs enhance less.
    hu_box = hu_c[box]
    found = [(float(np.percentile(hu_box[labels == i], 75)), int(i)) for i in np.flatnonzero(keep)]
    level, i = max(found)
    return level, f"contrast detected (aorta-level HU {level:.0f}, {sizes[i] * grid.voxel_ml:.0f} mL core)"


def vessel_thresholds(level: float, cortex: Cortex, p: VesselParameters) -> tuple[float, float]:
    low = float(np.clip(p.low_ratio * level, *p.low_range_hu))
    return low, max(cortex.hu, level + 250.0)


def vessels_coarse(
    hu_c: np.ndarray, body_c: np.ndarray, grid: Grid, level: float, cortex: Cortex, p: VesselParameters
) -> np.ndarray:
    low, high = vessel_thresholds(level, cortex, p)
    cand = body_c & (hu_c >= low) & (hu_c <= high)
    r = grid.voxels_for_mm(p.opening_mm)
    core = opening(cand & ~cortex.near, r)
    labels, keep, _, box = _vessel_like(core, hu_c, cortex.near, grid, p.min_component_ml, p)
    kept = np.zeros_like(cand)
    kept[box] = keep[labels]
    # Undo the opening's erosion, but only within the candidate.
    return dilate(kept, r + 1) & cand
