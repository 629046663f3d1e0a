"""Oblique planes: pixels land where an independent calculation says, letters follow the plane."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import (
    RenderError,
    orientation_labels,
    plane_geometry,
    render_plane,
    render_slice,
    slice_index_at,
)
from surgtwin.render.slices import MAX_PLANE_PIXELS

BRIGHT, BACKGROUND = 1000.0, 0.0
# A doubly oblique, orthonormal pair whose steps of 3 mm are whole millimetres in LPS.
COLUMN = np.array([2.0, 1.0, 2.0]) / 3.0
ROW = np.array([1.0, 2.0, -2.0]) / 3.0
NORMAL = np.cross(COLUMN, ROW)  # (-2, 2, 1) / 3


def _grid_volume(direction: np.ndarray, shape_kji=(48, 50, 52), origin=(-20.0, 30.0, -110.0)) -> Volume:
    """1 mm voxels on a permuted/flipped grid: every voxel centre is a whole-mm LPS point."""
    affine = np.eye(4)
    affine[:3, :3] = direction
    affine[:3, 3] = origin
    return Volume(np.full(shape_kji, BACKGROUND, dtype=np.int16), affine, modality="CT")


def _put(volume: Volume, lps: np.ndarray, value: float = BRIGHT) -> tuple[int, int, int]:
    """Set the voxel whose centre is exactly ``lps`` (checked) and return its (k, j, i)."""
    ijk = volume.lps_to_index(lps)[0]
    assert np.allclose(ijk, np.rint(ijk)), "test point must be a voxel centre"
    i, j, k = (int(v) for v in np.rint(ijk))
    volume.voxels[k, j, i] = value
    return k, j, i


PERMUTED = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # det +1


@pytest.mark.parametrize("direction", [np.eye(3), PERMUTED], ids=["identity", "permuted"])
def test_points_on_an_oblique_plane_land_on_the_expected_pixels(direction):
    volume = _grid_volume(direction)
    centre = volume.index_to_lps(np.array([26.0, 25.0, 24.0]))[0]  # a voxel centre mid-volume
    on_plane = centre + 6 * COLUMN + 9 * ROW  # = centre + (7, 8, -2) mm
    off_plane = centre - 6 * COLUMN + 3 * NORMAL  # 3 mm in front of the plane
    _put(volume, centre)
    _put(volume, on_plane)
    _put(volume, off_plane)

    geometry = plane_geometry(volume, centre, COLUMN, ROW, pixel_mm=1.0)
    image = render_plane(volume, None, geometry, window_level=(1000, 500), draw_labels=False)
    rows, cols = geometry.shape
    assert rows == cols and rows % 2 == 1
    middle = rows // 2
    # Independent placement: pixel (r, c) = centre + (c - middle) * COLUMN + (r - middle) * ROW.
    assert np.allclose(geometry.pixel_to_lps(middle, middle), centre)
    assert image.values[middle, middle] == pytest.approx(BRIGHT)
    assert image.values[middle + 9, middle + 6] == pytest.approx(BRIGHT)
    assert image.values[middle, middle - 6] == pytest.approx(BACKGROUND)  # off the plane: unseen
    assert image.rgb[middle + 9, middle + 6].tolist() == [255, 255, 255]
    # Nothing else is bright: only points within a voxel of the two on-plane ones.
    bright = np.argwhere(np.nan_to_num(image.values) > BRIGHT / 2)
    near = np.minimum(
        np.abs(bright - [middle, middle]).max(axis=1), np.abs(bright - [middle + 9, middle + 6]).max(axis=1)
    )
    assert len(bright) >= 2 and near.max() <= 1


def test_default_plane_is_centred_square_and_covers_the_volume():
    volume = _grid_volume(PERMUTED)
    origin = volume.index_to_lps(np.array([10.0, 40.0, 5.0]))[0]  # off-centre
    geometry = plane_geometry(volume, origin, COLUMN, ROW)
    rows, cols = geometry.shape
    pixel = float(np.linalg.norm(geometry.column_step))
    assert rows == cols and pixel == pytest.approx(volume.spacing.min())
    assert np.allclose(geometry.pixel_to_lps(rows // 2, cols // 2), origin)
    corners = volume.index_to_lps(
        np.array([[a, b, c] for a in (0, 51) for b in (0, 49) for c in (0, 47)], dtype=float)
    )
    half = (rows - 1) / 2 * pixel
    assert np.all(np.abs((corners - origin) @ COLUMN) <= half + 1e-9)
    assert np.all(np.abs((corners - origin) @ ROW) <= half + 1e-9)
    # The slice count spans the volume along the normal in finest-voxel steps.
    along = (corners - origin) @ NORMAL
    assert geometry.slice_count == int(np.floor(along.max() - along.min() + 1e-6)) + 1
    assert geometry.index == round(-along.min())


def test_big_planes_are_capped_by_growing_the_pixels():
    volume = _grid_volume(np.eye(3))
    geometry = plane_geometry(volume, volume.index_to_lps(np.zeros(3))[0], COLUMN, ROW, half_size_mm=2000.0)
    assert geometry.shape[0] <= MAX_PLANE_PIXELS
    assert geometry.shape[0] * np.linalg.norm(geometry.column_step) >= 4000.0


def test_axis_aligned_plane_matches_the_standard_axial_slice():
    volume = _grid_volume(np.eye(3))
    rng = np.random.default_rng(3)
    volume.voxels[:] = rng.integers(-500, 500, volume.voxels.shape)
    k = 20
    axial = render_slice(volume, None, "axial", index=k, window_level=(1000, 0), draw_labels=False)
    centre = volume.index_to_lps(np.array([25.0, 24.0, k]))[0]
    geometry = plane_geometry(volume, centre, [1, 0, 0], [0, 1, 0], pixel_mm=1.0, half_size_mm=10.0)
    plane = render_plane(volume, None, geometry, window_level=(1000, 0), draw_labels=False)
    # Same LPS points -> same values: plane pixel (r, c) is axial pixel (r + 14, c + 15).
    first = np.rint(volume.lps_to_index(geometry.origin)[0]).astype(int)
    window = axial.values[first[1] : first[1] + 21, first[0] : first[0] + 21]
    np.testing.assert_array_equal(plane.values, window)
    assert slice_index_at(volume, "axial", centre) == k


def test_oblique_labels_and_segmentation_overlay():
    volume = _grid_volume(np.eye(3))
    centre = volume.index_to_lps(np.array([26.0, 25.0, 24.0]))[0]
    seg = Segmentation(np.zeros(volume.voxels.shape, dtype=np.uint8), volume.ijk_to_lps.copy())
    seg.segments[1] = Segment("marker", (1.0, 0.0, 0.0))
    k, j, i = np.rint(volume.lps_to_index(centre + 6 * COLUMN + 9 * ROW)[0][::-1]).astype(int)
    seg.labels[k, j, i] = 1
    geometry = plane_geometry(volume, centre, COLUMN, ROW, pixel_mm=1.0)
    image = render_plane(volume, seg, geometry, overlay_opacity=1.0, draw_labels=False)
    middle = geometry.shape[0] // 2
    assert image.label_map[middle + 9, middle + 6] == 1 and int(image.label_map.sum()) == 1
    assert image.rgb[middle + 9, middle + 6].tolist() == [255, 0, 0]
    # COLUMN (2,1,2)/3 points left, posterior and superior, all three clearly: "LS" + "P" order
    # by size (|2|,|2| tie, then 1): every letter is one of the expected ones.
    assert set(image.labels["right"]) == {"L", "S", "P"}
    assert set(image.labels["left"]) == {"R", "I", "A"}
    assert image.labels == orientation_labels(COLUMN, ROW)


def test_45_and_30_degree_letters():
    # 45° between patient left and posterior, rows head to foot.
    diagonal = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    labels = orientation_labels(diagonal, [0, 0, -1])
    assert set(labels["right"]) == {"L", "P"} and len(labels["right"]) == 2
    assert set(labels["left"]) == {"R", "A"} and len(labels["left"]) == 2
    assert labels["top"] == "S" and labels["bottom"] == "I"
    # 30° from left towards posterior: L dominates, P second.
    tilted = np.array([np.cos(np.pi / 6), np.sin(np.pi / 6), 0.0])
    labels = orientation_labels(tilted, [0, 0, -1])
    assert labels["right"] == "LP" and labels["left"] == "RA"
    # Rendered through a volume, the same letters come out.
    volume = _grid_volume(np.eye(3))
    image = render_plane(volume, None, plane_geometry(volume, volume.origin, tilted, [0, 0, -1]))
    assert image.labels["right"] == "LP" and image.labels["top"] == "S"
    assert image.label_boxes  # letters drawn


def test_bad_planes_are_errors():
    volume = _grid_volume(np.eye(3))
    with pytest.raises(RenderError, match="parallel"):
        plane_geometry(volume, volume.origin, [1, 0, 0], [2, 0, 0])
    with pytest.raises(RenderError):
        plane_geometry(volume, [np.nan, 0, 0], [1, 0, 0], [0, 1, 0])
    with pytest.raises(RenderError):
        plane_geometry(volume, volume.origin, [1, 0, 0], [0, 1, 0], half_size_mm=-1)


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
def test_fast_patient_plane_sampling_matches_plain_trilinear_interpolation(axis):
    """Patient planes on axis-aligned grids take a separable shortcut: it must give what
    scipy's trilinear interpolation of the same LPS points gives."""
    from scipy import ndimage

    from surgtwin.render import sample_labels, sample_values, slice_geometry

    flip = np.diag([-1.0, 1.0, 1.0])  # i runs towards patient right
    affine = np.eye(4)
    affine[:3, :3] = flip * np.array([0.7, 0.9, 1.6])
    affine[:3, 3] = (40.0, -10.0, 25.0)
    rng = np.random.default_rng(5)
    volume = Volume(rng.integers(-1000, 1000, (21, 17, 19)).astype(np.int16), affine)
    seg = Segmentation(rng.integers(0, 3, volume.voxels.shape).astype(np.uint8), affine.copy())
    geometry = slice_geometry(volume, axis, 7)
    ijk = volume.lps_to_index(geometry.lps_points().reshape(-1, 3))
    kji = ijk[:, ::-1].T
    # Voxel centres on the border count as inside despite rounding (1e-6 voxel tolerance).
    top = np.array(volume.voxels.shape)[:, None] - 1
    outside = np.any((kji < -1e-6) | (kji > top + 1e-6), axis=0)
    expected = ndimage.map_coordinates(volume.voxels.astype(np.float64), np.clip(kji, 0, top), order=1)
    expected[outside] = np.nan
    assert outside.sum() < outside.size
    np.testing.assert_allclose(sample_values(volume, geometry).ravel(), expected, rtol=1e-5, atol=1e-3)
    nearest = ndimage.map_coordinates(seg.labels, np.rint(kji), order=0, cval=0)
    np.testing.assert_array_equal(sample_labels(seg, geometry).ravel(), nearest)
