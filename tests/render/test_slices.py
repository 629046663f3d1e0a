"""Slice views: intensities in the right place, radiological orientation, overlay, letters."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import CT_WINDOW_PRESETS, RenderError, render_slice, resolve_window_level, write_png
from surgtwin.render.slices import LABEL_COLOR, direction_letters

RADIOLOGICAL = {
    "axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
    "coronal": {"left": "R", "right": "L", "top": "S", "bottom": "I"},
    "sagittal": {"left": "A", "right": "P", "top": "S", "bottom": "I"},
}


def _liver_slice(seg: Segmentation) -> int:
    return int(np.argmax((seg.labels == seg.label_of("liver")).sum(axis=(1, 2))))


def test_axial_slice_at_the_liver_shows_liver_where_the_truth_says(sample_volume, sample_truth, artifacts):
    k = _liver_slice(sample_truth)
    view = render_slice(sample_volume, sample_truth, "axial", index=k, window_level="soft_tissue")
    plain = render_slice(sample_volume, None, "axial", index=k, window_level="soft_tissue", draw_labels=False)
    write_png(view.rgb, artifacts / "sample_axial_liver.png")
    # The sample's grid is axis-aligned (identity direction): pixels are its voxels exactly.
    np.testing.assert_array_equal(view.values, sample_volume.voxels[k].astype(np.float32))
    liver = view.label_map == sample_truth.label_of("liver")
    fat = view.label_map == sample_truth.label_of("fat")
    assert liver.sum() > 500
    grey = plain.rgb[..., 0].astype(float)
    hu = float(np.median(view.values[liver]))
    assert 20.0 < hu < 120.0, hu  # liver parenchyma on CT
    expected = np.clip((hu - (40 - 200)) / 400, 0, 1) * 255
    assert abs(np.median(grey[liver]) - expected) < 3
    assert np.median(grey[liver]) > np.median(grey[fat]) + 40  # liver is brighter than fat
    # Radiological display: the liver (patient right) is on the image's left half.
    assert np.argwhere(liver)[:, 1].mean() < view.rgb.shape[1] / 2


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
def test_sample_orientation_letters(sample_volume, axis, artifacts):
    view = render_slice(sample_volume, None, axis)
    write_png(view.rgb, artifacts / f"sample_{axis}.png")
    assert view.labels == RADIOLOGICAL[axis]
    for edge, (r0, c0, r1, c1) in view.label_boxes.items():  # the letters are drawn there
        patch = view.rgb[r0:r1, c0:c1].reshape(-1, 3)
        assert (patch == LABEL_COLOR).all(axis=1).sum() >= 8, edge


def _phantom(
    direction: np.ndarray, spacing=(1.5, 1.5, 2.0), shape_kji=(40, 60, 60)
) -> tuple[Volume, Segmentation]:
    """A box of 100 HU with a 600 HU marker ball at patient left-anterior-superior,
    built physically (voxel centres -> LPS) so any grid orientation holds the same object."""
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(spacing)
    centre_ijk = (np.array(shape_kji[::-1]) - 1) / 2
    affine[:3, 3] = -affine[:3, :3] @ centre_ijk  # grid centred on LPS origin
    kk, jj, ii = np.indices(shape_kji)
    ijk = np.stack([ii, jj, kk], axis=-1).reshape(-1, 3).astype(float)
    lps = (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*shape_kji, 3)
    marker = np.linalg.norm(lps - MARKER_LPS, axis=-1) <= 8.0
    voxels = np.where(np.abs(lps).max(axis=-1) <= 35.0, 100, -1000).astype(np.int16)
    voxels[marker] = 600
    volume = Volume(voxels, affine, modality="CT", units="HU")
    seg = Segmentation(marker.astype(np.uint8), affine.copy(), {1: Segment("marker", (0.0, 1.0, 0.0))})
    return volume, seg


MARKER_LPS = np.array([20.0, -15.0, 10.0])  # left, anterior, superior of the centre
FLIPPED = np.diag([-1.0, -1.0, 1.0])  # i runs to the right, j to the front (e.g. RAS-stored data)
PERMUTED = np.array([[0.0, 0, -1], [1, 0, 0], [0, -1, 0]])  # sagittal-acquired, axes shuffled
c30, s30 = np.cos(np.radians(30)), np.sin(np.radians(30))
OBLIQUE = np.array([[c30, -s30, 0.0], [s30, c30, 0], [0, 0, 1]])  # turned 30 degrees about S


@pytest.mark.parametrize("name", ["flipped", "permuted", "oblique"])
def test_any_voxel_layout_displays_the_same_anatomy(name, artifacts):
    direction = {"flipped": FLIPPED, "permuted": PERMUTED, "oblique": OBLIQUE}[name]
    reference, _ = _phantom(np.eye(3))
    volume, seg = _phantom(direction)
    for axis in ("axial", "coronal", "sagittal"):
        z = {"axial": MARKER_LPS[2], "coronal": MARKER_LPS[1], "sagittal": MARKER_LPS[0]}[axis]
        view = render_slice(volume, seg, axis, position_mm=z, window_level=(1000, 300), pixel_mm=1.5)
        write_png(view.rgb, artifacts / f"phantom_{name}_{axis}.png")
        assert view.labels == RADIOLOGICAL[axis]
        ball = view.values > 350
        assert ball.sum() > 50, axis
        r, c = np.argwhere(ball).mean(axis=0)
        found = view.geometry.pixel_to_lps(r, c)
        np.testing.assert_allclose(found, MARKER_LPS, atol=2.0)  # the ball is where it is in the body
        if name == "flipped":  # the same grid mirrored resamples to the very same picture
            ref = render_slice(reference, None, axis, position_mm=z, window_level=(1000, 300), pixel_mm=1.5)
            assert ref.rgb.shape == view.rgb.shape
            assert np.mean(np.abs(ref.values - view.values) < 1.0) > 0.99
    axial = render_slice(volume, seg, "axial", position_mm=MARKER_LPS[2], pixel_mm=1.5)
    r, c = np.argwhere(axial.values > 350).mean(axis=0)
    assert c > axial.rgb.shape[1] / 2 and r < axial.rgb.shape[0] / 2  # patient left -> right, A -> top


def test_voxel_plane_letters_show_the_obliquity():
    volume, _ = _phantom(OBLIQUE)
    view = render_slice(volume, None, "axial", plane="voxel")
    # Columns run along i = (cos30, sin30, 0): towards L, leaning P; rows along j: P, leaning R.
    assert view.labels == {"left": "RA", "right": "LP", "top": "AL", "bottom": "PR"}
    flipped, _ = _phantom(FLIPPED)
    assert render_slice(flipped, None, "coronal", plane="voxel").labels == RADIOLOGICAL["coronal"]


def test_direction_letters():
    assert direction_letters(np.array([1.0, 0, 0])) == "L"
    assert direction_letters(np.array([0, -1.0, 0])) == "A"
    assert direction_letters(np.array([0, 0.1, -1.0])) == "I"  # a small tilt is not named
    assert direction_letters(np.array([-0.8, 0, 0.6])) == "RS"


def test_overlay_colour_inside_the_labelled_region_only(sample_volume, sample_truth):
    k = _liver_slice(sample_truth)
    plain = render_slice(sample_volume, None, "axial", k, draw_labels=False)
    over = render_slice(sample_volume, sample_truth, "axial", k, overlay_opacity=0.4, draw_labels=False)
    liver_label = sample_truth.label_of("liver")
    liver = over.label_map == liver_label
    colour = np.array(sample_truth.segments[liver_label].color) * 255
    blended = 0.6 * plain.rgb[liver].astype(float) + 0.4 * colour
    assert np.abs(over.rgb[liver].astype(float) - blended).max() <= 1.0
    unlabelled = over.label_map == 0
    np.testing.assert_array_equal(over.rgb[unlabelled], plain.rgb[unlabelled])
    # A hidden segment is not overlaid.
    segment = sample_truth.segments[liver_label]
    segment.visible = False
    try:
        hidden = render_slice(sample_volume, sample_truth, "axial", k, draw_labels=False)
    finally:
        segment.visible = True
    np.testing.assert_array_equal(hidden.rgb[liver], plain.rgb[liver])


def test_window_presets_and_errors(sample_volume):
    assert resolve_window_level("bone") == CT_WINDOW_PRESETS["bone"] == (1800.0, 400.0)
    assert set(CT_WINDOW_PRESETS) >= {"soft_tissue", "bone", "lung", "brain"}
    lung = render_slice(sample_volume, None, "axial", window_level="lung", draw_labels=False)
    bone = render_slice(sample_volume, None, "axial", window_level="bone", draw_labels=False)
    assert lung.window_level == (1500.0, -600.0)
    assert lung.rgb.mean() > bone.rgb.mean()  # a lung window shows soft tissue white
    width, level = render_slice(sample_volume, None, "axial", window_level=None).window_level
    assert width > 0
    with pytest.raises(RenderError, match="soft_tissue"):
        render_slice(sample_volume, None, "axial", window_level="liverish")
    with pytest.raises(RenderError, match="outside"):
        render_slice(sample_volume, None, "axial", index=10_000)
    with pytest.raises(RenderError):
        render_slice(sample_volume, None, "oblique")  # type: ignore[arg-type]
