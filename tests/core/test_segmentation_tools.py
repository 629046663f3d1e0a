"""Segmentation tools against analytic answers (tier 1: no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools import (
    apply_mask,
    body_mask,
    close_mask,
    confidence_connected,
    connected_threshold,
    fill_between_slices,
    fill_holes,
    grow,
    intersect,
    invert,
    keep_largest_island,
    normalise_intensity,
    open_mask,
    otsu,
    paint,
    remove_small_islands,
    scissors,
    shrink,
    smooth_gaussian,
    smooth_median,
    subtract,
    threshold,
    union,
)
from surgtwin.core.volume import Volume

SPACING = (0.7, 0.9, 1.5)  # i, j, k: anisotropic on purpose


def grid(shape: tuple[int, int, int] = (40, 90, 100), spacing: tuple[float, ...] = SPACING) -> Segmentation:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-30.0, 12.0, 40.0]
    return Segmentation(np.zeros(shape, np.uint8), affine)


def lps_of_all(seg: Segmentation) -> np.ndarray:
    k, j, i = np.indices(seg.labels.shape)
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(float)
    return (ijk @ seg.ijk_to_lps[:3, :3].T + seg.ijk_to_lps[:3, 3]).reshape(*seg.labels.shape, 3)


def ball(seg: Segmentation, center: np.ndarray, radius: float) -> np.ndarray:
    return np.linalg.norm(lps_of_all(seg) - center, axis=-1) <= radius


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def extent_radius(mask: np.ndarray, seg: Segmentation, center: np.ndarray) -> np.ndarray:
    """Largest distance of a mask voxel centre from ``center`` along each LPS axis line."""
    points = lps_of_all(seg)[mask] - center
    return np.abs(points).max(axis=0)


# --- morphology -----------------------------------------------------------------------
def test_grow_and_shrink_by_mm_respect_anisotropic_spacing() -> None:
    seg = grid()
    center = lps_of_all(seg)[20, 45, 50]
    sphere = ball(seg, center, 8.0)
    grown = grow(sphere, 2.0, seg)
    shrunk = shrink(sphere, 2.0, seg)
    half_voxel = np.asarray(SPACING) / 2
    # Surfaces lie on voxel faces: half a voxel beyond the outermost centre on each axis.
    surface = extent_radius(sphere, seg, center) + half_voxel
    assert np.all(np.abs(surface - 8.0) <= half_voxel + 1e-9)
    assert np.all(np.abs(extent_radius(grown, seg, center) + half_voxel - (surface + 2)) <= half_voxel + 1e-9)
    assert np.all(
        np.abs(extent_radius(shrunk, seg, center) + half_voxel - (surface - 2)) <= half_voxel + 1e-9
    )

    def equivalent_radius(mask: np.ndarray) -> float:
        return float((mask.sum() * np.prod(SPACING) * 3 / (4 * np.pi)) ** (1 / 3))

    assert abs(equivalent_radius(grown) - 10.0) <= min(SPACING) / 2
    assert abs(equivalent_radius(shrunk) - 6.0) <= min(SPACING) / 2
    # Whole shapes, not only the axes: the grown ball lies between balls of 10 -/+ one voxel diagonal.
    diagonal = float(np.linalg.norm(SPACING))
    assert np.all(grown[ball(seg, center, 10.0 - diagonal)]) and not np.any(
        grown & ~ball(seg, center, 10.0 + diagonal)
    )
    assert np.all(shrunk[ball(seg, center, 6.0 - diagonal)]) and not np.any(
        shrunk & ~ball(seg, center, 6.0 + diagonal)
    )
    assert np.array_equal(grow(sphere, 0.0, seg), sphere)


def test_open_close_and_fill_holes() -> None:
    seg = grid()
    block = np.zeros(seg.labels.shape, bool)
    block[10:30, 20:70, 20:80] = True
    cut = block.copy()
    cut[10:30, 40:42, 20:80] = False  # a 1.8 mm gap
    assert np.array_equal(close_mask(cut, 1.5, seg), block)
    spiky = block.copy()
    spiky[20, 10:20, 50] = True  # a one-voxel spike
    opened = open_mask(spiky, 1.0, seg)
    assert not opened[20, 10:20, 50].any() and not np.any(opened & ~block)
    assert (block & ~opened).sum() < 0.01 * block.sum()  # only edges and corners are rounded
    hollow = block.copy()
    hollow[15:25, 30:60, 30:70] = False
    assert np.array_equal(fill_holes(hollow), block)
    assert np.array_equal(fill_holes(hollow, per_slice=True), block)
    for bad in (-1.0, float("nan"), "2"):
        with pytest.raises(SegmentationError, match="grow radius"):
            grow(block, bad, seg)  # type: ignore[arg-type]


# --- islands ----------------------------------------------------------------------------
def test_islands_keep_largest_and_remove_small() -> None:
    seg = grid()
    big = ball(seg, lps_of_all(seg)[20, 30, 30], 6.0)
    small = ball(seg, lps_of_all(seg)[20, 70, 80], 3.0)
    assert not np.any(grow(big, 1.0, seg) & small)
    both = big | small
    assert np.array_equal(keep_largest_island(both), big)
    small_mm3 = small.sum() * np.prod(SPACING)
    assert np.array_equal(remove_small_islands(both, small_mm3 + 1, seg), big)
    assert np.array_equal(remove_small_islands(both, small_mm3 - 1, seg), both)


# --- logical ------------------------------------------------------------------------------
def test_logical_operations() -> None:
    seg = grid((4, 5, 6))
    seg.labels[0:2] = seg.add_segment("a")
    seg.labels[3] = seg.add_segment("b")
    body = np.zeros(seg.labels.shape, bool)
    body[:, 1:4, 1:5] = True
    assert np.array_equal(union(seg, 1, 2), seg.labels > 0)
    assert not intersect(seg, 1, 2).any() and np.array_equal(
        intersect(seg, 1, body), (seg.labels == 1) & body
    )
    assert np.array_equal(subtract(seg, body, 1), body & (seg.labels != 1))
    assert np.array_equal(invert(seg, 1, within=body), body & (seg.labels != 1))
    with pytest.raises(SegmentationError, match="no segment with label 7"):
        union(seg, 1, 7)


# --- smoothing ------------------------------------------------------------------------------
@pytest.mark.parametrize("diameter_mm", [2.0, 3.0, 4.0])
def test_smoothing_keeps_thin_vessels_and_removes_bumps(diameter_mm: float) -> None:
    seg = grid((30, 60, 60), (0.7, 0.7, 0.7))
    points = lps_of_all(seg)
    axis_point = points[15, 30, 0]
    # An oblique tube (in the i-k plane) plus a large block with one-voxel bumps.
    direction = np.array([1.0, 0.0, 0.5]) / np.linalg.norm([1.0, 0.0, 0.5])
    rel = points - axis_point
    radial = np.linalg.norm(rel - (rel @ direction)[..., None] * direction, axis=-1)
    tube = radial <= diameter_mm / 2
    block = np.zeros(seg.labels.shape, bool)
    block[5:25, 40:58, 5:55] = True
    noisy = block.copy()
    noisy[15, 39, 10:50:6] = True
    mask = tube | noisy
    for smoothed in (smooth_gaussian(mask, 1.0, seg), smooth_median(mask, 0.7, seg)):
        kept = smoothed & (radial <= diameter_mm / 2 + 1.0) & ~grow(block, 2.0, seg)
        # The vessel survives in one piece along its whole length, with about its volume.
        tube_part = tube & ~grow(block, 2.0, seg)
        assert keep_largest_island(kept).sum() == kept.sum() >= 0.6 * tube_part.sum()
        assert kept.sum() <= 1.5 * tube_part.sum()
        assert not np.any(smoothed[15, 39, 10:50:6])  # bumps gone
        assert dice(smoothed & block, block) > 0.97


# --- paint ------------------------------------------------------------------------------
def test_paint_is_a_capsule_of_the_radius_and_erase_clears_only_that_segment() -> None:
    seg = grid()
    a, b = seg.add_segment("a"), seg.add_segment("b")
    points = lps_of_all(seg)
    p0, p1 = points[20, 30, 30], points[20, 40, 60]
    edit = paint(seg, a, [p0, p1], 3.0)
    edit.apply_to(seg)
    seg_dir = (p1 - p0) / np.linalg.norm(p1 - p0)
    t = np.clip((points - p0) @ seg_dir, 0, np.linalg.norm(p1 - p0))
    expected = np.linalg.norm(points - (p0 + t[..., None] * seg_dir), axis=-1) <= 3.0
    assert np.array_equal(seg.labels == a, expected)
    paint(seg, b, [p0], 2.0).apply_to(seg)
    assert np.array_equal(seg.labels == b, ball(seg, p0, 2.0))
    paint(seg, a, [p1], 10.0, erase=True).apply_to(seg)
    assert np.array_equal(seg.labels == b, ball(seg, p0, 2.0)) and not np.any(
        (seg.labels == a) & ball(seg, p1, 10)
    )
    assert paint(seg, a, [(900.0, 0.0, 0.0)], 2.0).is_empty
    with pytest.raises(SegmentationError, match="brush radius"):
        paint(seg, a, [p0], 0.0)


# --- scissors --------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", [(0.0, 0.0, 1.0), (0.3, -0.2, 1.0)])
def test_scissors_remove_exactly_the_prism(direction: tuple[float, float, float]) -> None:
    seg = grid()
    label = seg.add_segment("liver")
    seg.labels[:] = label
    points = lps_of_all(seg)
    d = np.asarray(direction) / np.linalg.norm(direction)
    triangle = np.array([[-20.3, 30.1, 60.0], [0.2, 40.3, 61.0], [-10.1, 80.2, 59.0]])
    edit = scissors(seg, label, triangle, direction)
    edit.apply_to(seg)
    # Reference: the prism is the intersection of three half-spaces whose normals are
    # perpendicular to the view direction (independent of the even-odd test).
    inside = np.ones(seg.labels.shape, bool)
    clear = np.ones(seg.labels.shape, bool)  # voxels not within rounding error of a face
    centroid = triangle.mean(axis=0)
    for a, b in zip(triangle, np.roll(triangle, -1, axis=0), strict=True):
        normal = np.cross(b - a, d)
        normal /= np.linalg.norm(normal)
        signed = np.sign((centroid - a) @ normal) * ((points - a) @ normal)
        inside &= signed > 0
        clear &= np.abs(signed) > 1e-6
    assert inside.sum() > 1000 and (~clear).sum() < 10
    assert np.array_equal((seg.labels == 0)[clear], inside[clear])
    edit.revert_on(seg)
    scissors(seg, label, triangle, direction, "keep_inside").apply_to(seg)
    assert np.array_equal((seg.labels == label)[clear], inside[clear])
    with pytest.raises(SegmentationError, match="no area"):
        scissors(seg, label, triangle[[0, 1, 0]], direction)
    with pytest.raises(SegmentationError, match="operation"):
        scissors(seg, label, triangle, direction, "shred")  # type: ignore[arg-type]


# --- fill between slices -------------------------------------------------------------------------
def test_fill_between_slices_reproduces_a_sphere() -> None:
    seg = grid((40, 60, 60), (0.8, 0.8, 1.0))
    label = seg.add_segment("tumour")
    center = lps_of_all(seg)[20, 30, 30]
    sphere = ball(seg, center, 15.0)
    drawn = np.zeros_like(sphere)
    for k in range(5, 36, 5):
        drawn[k] = sphere[k]
    seg.labels[drawn] = label
    filled = fill_between_slices(seg, label)
    inner = np.zeros_like(sphere)
    inner[5:36] = sphere[5:36]  # no extrapolation beyond the first/last drawn slice
    assert dice(filled, inner) > 0.95
    assert np.array_equal(filled[drawn], sphere[drawn])
    apply_mask(seg, label, filled, "add", overwrite=False).apply_to(seg)
    with pytest.raises(SegmentationError, match="at least two slices"):
        only_one = grid()
        only_one.labels[3] = only_one.add_segment("x")
        fill_between_slices(only_one, 1)


# --- threshold and MR ---------------------------------------------------------------------------
def test_threshold_presets_and_validation() -> None:
    voxels = np.arange(-1000, 2000, 10, dtype=np.int16).reshape(3, 10, 10)
    ct = Volume(voxels, np.eye(4), modality="CT", units="HU")
    assert np.array_equal(threshold(ct, preset="bone"), voxels >= 200)
    assert np.array_equal(threshold(ct, -100, 200), (voxels >= -100) & (voxels <= 200))
    assert np.array_equal(threshold(ct, upper=-400), voxels <= -400)
    for kwargs, message in (
        ({"preset": "unicorn"}, "unknown CT preset"),
        ({"lower": 5, "upper": 1}, "above the upper"),
        ({}, "give a lower"),
        ({"lower": float("nan")}, "must be a number"),
        ({"preset": "bone", "lower": 1}, "not both"),
    ):
        with pytest.raises(SegmentationError, match=message):
            threshold(ct, **kwargs)  # type: ignore[arg-type]
    mr = Volume(voxels, np.eye(4), modality="MR")
    with pytest.raises(SegmentationError, match="Hounsfield"):
        threshold(mr, preset="bone")


def test_mr_bias_correction_and_otsu_separate_tissue() -> None:
    rng = np.random.default_rng(1)
    shape = (32, 64, 64)
    k, j, i = np.indices(shape)
    tissue = ((i - 32) ** 2 + (j - 32) ** 2 + ((k - 16) * 2) ** 2) < 24**2
    bright = tissue & (i > 32)
    truth = np.where(bright, 200.0, np.where(tissue, 100.0, 5.0))
    field = np.exp(0.4 * (j - 32) / 32)  # a smooth multiplicative bias across the image
    voxels = (truth * field + rng.normal(0, 3, shape)).astype(np.float32)
    mr = Volume(voxels, np.diag([1.0, 1.0, 2.0, 1.0]), modality="MR")
    normalised = normalise_intensity(mr, shrink=2, iterations=30)
    assert normalised.voxels.dtype == np.float32 and normalised.provenance["tool"] == "normalise_intensity"

    def spread(v: np.ndarray) -> float:
        values = v[tissue & ~bright]
        return float(values.std() / values.mean())

    assert spread(normalised.voxels - normalised.voxels[~tissue].mean()) < 0.7 * spread(voxels)
    assert dice(otsu(normalised, mask=tissue), bright) > dice(otsu(mr, mask=tissue), bright) - 0.01
    assert dice(otsu(normalised, mask=tissue), bright) > 0.9


# --- region growing on the sample case ------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_ct(sample_dicom: Path) -> tuple[Volume, np.ndarray]:
    from surgtwin.core.importer import load_volume

    volume, _ = load_volume(sample_dicom)
    truth = Volume.from_sitk(sitk.ReadImage(str(sample_dicom / "ground_truth" / "labels.nii.gz")))
    assert np.allclose(truth.ijk_to_lps, volume.ijk_to_lps, atol=1e-4)
    return volume, truth.voxels


def test_region_growing_from_a_seed_in_the_aorta_stays_in_the_aorta(
    sample_ct: tuple[Volume, np.ndarray],
) -> None:
    volume, truth = sample_ct
    aorta = truth == 9
    k = int(np.median(np.argwhere(aorta)[:, 0]))
    j, i = np.argwhere(aorta[k]).mean(axis=0).round().astype(int)
    assert aorta[k, j, i]
    seed = volume.index_to_lps([[i, j, k]])[0]
    grown = confidence_connected(volume, seed)
    assert dice(grown, aorta) > 0.8
    hu = volume.voxels[aorta]
    lower, upper = np.percentile(hu, [2, 99.5])
    grown = connected_threshold(volume, [seed], lower, upper)
    assert grown[k, j, i]
    with pytest.raises(SegmentationError, match="outside the volume"):
        confidence_connected(volume, [seed, seed + [0, 0, 5000]])


def test_body_mask_covers_the_sample_patient(sample_ct: tuple[Volume, np.ndarray]) -> None:
    volume, truth = sample_ct
    assert dice(body_mask(volume), truth > 0) > 0.97
