"""Brush and seed tools driven with real mouse events on a slice view over a real Scene/History."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from surgtwin.core.commands import AddVolume
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.ui.segment_brush import BrushTool, SeedTool
from surgtwin.ui.slice_view import SliceView
from tests.ui.harness import ToolHarness, ct_volume, drag, show_widget

SPACING = np.array([0.75, 0.75, 2.5])  # i, j, k
ORIGIN = np.array([-20.0, 5.0, -60.0])


class Harness(ToolHarness):
    """The window's ToolContext over a real Scene/History holding ``volume`` and
    ``segmentation``, showing them in one slice view; tasks run at once (the tests check the
    result right after the click)."""

    def __init__(self, qtbot, volume: Volume, segmentation: Segmentation, axis: str = "axial") -> None:
        super().__init__(synchronous=True)
        self.history.execute(AddVolume(volume))
        self.history.execute(AddSegmentation(segmentation))
        self.volume_id = next(iter(self.scene.volumes))
        self.segmentation_id = next(iter(self.scene.segmentations))
        self.view = show_widget(qtbot, SliceView(axis), (420, 420))
        self.views.append(self.view)
        self.scene.subscribe(lambda _event: self.view.set_data(volume, segmentation))
        self.view.set_data(volume, segmentation)


def _volume(shape_kji=(16, 64, 64)) -> Volume:
    return ct_volume(np.zeros(shape_kji, dtype=np.int16), SPACING, ORIGIN)


def _segmentation(volume: Volume) -> tuple[Segmentation, int, int]:
    seg = Segmentation.empty_like(volume)
    return seg, seg.add_segment("liver"), seg.add_segment("tumour")


def _voxel_centres(volume: Volume) -> np.ndarray:
    """(k, j, i, 3) LPS of every voxel centre, computed from the affine directly."""
    k, j, i = np.indices(volume.voxels.shape)
    ijk = np.stack([i, j, k], axis=-1).astype(float)
    return ijk @ volume.ijk_to_lps[:3, :3].T + volume.ijk_to_lps[:3, 3]


def _within(centres: np.ndarray, stroke: np.ndarray, radius: float) -> np.ndarray:
    """Voxel centres within ``radius`` of the polyline ``stroke`` (independent of the core)."""
    best = np.full(centres.shape[:-1], np.inf)
    for a, b in zip(stroke[:-1], stroke[1:], strict=True):
        ab = b - a
        t = np.clip(((centres - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(centres - (a + t[..., None] * ab), axis=-1))
    return best <= radius


def _widget_to_lps(view: SliceView, volume: Volume, point: QPoint) -> np.ndarray:
    """Independent mapping for an unzoomed axial view: the image (one pixel per 0.75 mm
    voxel) fits the widget centred; its outer edge is half a voxel beyond the corner centres."""
    nx, ny = volume.shape_ijk[0], volume.shape_ijk[1]
    scale = min(view.view.width() / nx, view.view.height() / ny)
    left, top = (view.view.width() - nx * scale) / 2, (view.view.height() - ny * scale) / 2
    return np.array(
        [
            ORIGIN[0] - SPACING[0] / 2 + (point.x() - left) / scale * SPACING[0],
            ORIGIN[1] - SPACING[1] / 2 + (point.y() - top) / scale * SPACING[1],
            ORIGIN[2] + view.index * SPACING[2],
        ]
    )


STROKE = [QPoint(120, 150), QPoint(170, 160), QPoint(230, 210), QPoint(260, 215)]


def test_a_stroke_paints_the_voxels_under_it_on_one_slice_and_undoes_in_one_step(qtbot):
    volume = _volume()
    seg, liver, _ = _segmentation(volume)
    app = Harness(qtbot, volume, seg)
    app.selected = (app.segmentation_id, liver)
    tool = BrushTool(app, radius_mm=3.1)
    app.view.set_tool(tool)
    app.view.set_index(6)
    commands_before = len(app.history.undo_stack)

    drag(qtbot, app.view.view, STROKE)

    assert not app.errors
    assert len(app.history.undo_stack) == commands_before + 1  # the whole stroke is one command
    stroke = np.array([_widget_to_lps(app.view, volume, p) for p in STROKE])
    expected = _within(_voxel_centres(volume), stroke, 3.1)
    expected[np.arange(16) != 6] = False  # the 2D brush stays on the slice
    painted = seg.labels == liver
    assert painted.sum() > 100
    np.testing.assert_array_equal(painted, expected)
    assert (app.view.image.label_map == liver).sum() == expected[6].sum()  # the view shows it

    app.history.undo()
    assert not (seg.labels == liver).any()
    assert (app.view.image.label_map == 0).all()


def test_the_sphere_brush_reaches_neighbouring_slices(qtbot):
    volume = _volume()
    seg, liver, _ = _segmentation(volume)
    app = Harness(qtbot, volume, seg)
    app.selected = (app.segmentation_id, liver)
    app.view.set_tool(BrushTool(app, radius_mm=6.0, sphere=True))
    app.view.set_index(6)
    drag(qtbot, app.view.view, STROKE[:2])
    stroke = np.array([_widget_to_lps(app.view, volume, p) for p in STROKE[:2]])
    expected = _within(_voxel_centres(volume), stroke, 6.0)
    np.testing.assert_array_equal(seg.labels == liver, expected)
    assert set(np.flatnonzero((seg.labels == liver).any(axis=(1, 2)))) == {4, 5, 6, 7, 8}


def test_erase_clears_only_the_selected_segment(qtbot):
    volume = _volume()
    seg, liver, tumour = _segmentation(volume)
    seg.labels[6, 20:45, 10:32] = liver
    seg.labels[6, 20:45, 32:55] = tumour
    seg.labels[7, 20:45, 10:55] = liver  # another slice: untouched by a 2D erase
    before = seg.labels.copy()
    app = Harness(qtbot, volume, seg)
    app.selected = (app.segmentation_id, liver)
    tool = BrushTool(app, radius_mm=4.0)
    tool.erase = True
    app.view.set_tool(tool)
    app.view.set_index(6)
    drag(qtbot, app.view.view, STROKE)
    stroke = np.array([_widget_to_lps(app.view, volume, p) for p in STROKE])
    under = _within(_voxel_centres(volume), stroke, 4.0)
    under[np.arange(16) != 6] = False
    cleared = before == liver
    cleared &= under
    assert cleared.sum() > 50 and (under & (before == tumour)).sum() > 50
    expected = before.copy()
    expected[cleared] = 0
    np.testing.assert_array_equal(seg.labels, expected)  # tumour and slice 7 intact
    app.history.undo()
    np.testing.assert_array_equal(seg.labels, before)


def test_the_2d_brush_in_a_coronal_view_paints_one_coronal_slice(qtbot):
    volume = _volume()
    seg, _, tumour = _segmentation(volume)
    app = Harness(qtbot, volume, seg, axis="coronal")
    app.selected = (app.segmentation_id, tumour)
    app.view.set_tool(BrushTool(app, radius_mm=5.0))
    centre = app.view.to_widget(volume.index_to_lps(np.array([32.0, app.view.index, 8.0]))[0]).toPoint()
    drag(qtbot, app.view.view, [centre, centre + QPoint(40, 5)])
    painted = np.argwhere(seg.labels == tumour)
    assert len(painted) > 20
    assert set(painted[:, 1]) == {app.view.index}  # one j (coronal) layer
    assert len(set(painted[:, 0])) >= 3  # several axial slices: it spans the coronal plane


def test_no_selected_segment_is_reported_and_changes_nothing(qtbot):
    volume = _volume()
    seg, _, _ = _segmentation(volume)
    app = Harness(qtbot, volume, seg)
    app.view.set_tool(BrushTool(app))
    count = len(app.history.undo_stack)
    drag(qtbot, app.view.view, STROKE[:2])
    assert len(app.history.undo_stack) == count and not seg.labels.any()
    assert len(app.errors) == 1 and "segment" in str(app.errors[0][1])
    app.view.set_tool(SeedTool(app))
    qtbot.mouseClick(app.view.view, Qt.MouseButton.LeftButton, pos=STROKE[0])
    assert len(app.errors) == 2 and len(app.history.undo_stack) == count


def test_escape_cancels_a_stroke(qtbot):
    volume = _volume()
    seg, liver, _ = _segmentation(volume)
    app = Harness(qtbot, volume, seg)
    app.selected = (app.segmentation_id, liver)
    tool = BrushTool(app)
    app.view.set_tool(tool)
    qtbot.mousePress(app.view.view, Qt.MouseButton.LeftButton, pos=STROKE[0])
    qtbot.mouseMove(app.view.view, STROKE[1])
    assert len(tool.stroke) == 2
    qtbot.keyClick(app.view.view, Qt.Key.Key_Escape)
    qtbot.mouseRelease(app.view.view, Qt.MouseButton.LeftButton, pos=STROKE[1])
    assert not tool.stroke and not seg.labels.any()


def _spheres_volume() -> tuple[Volume, np.ndarray, np.ndarray, np.ndarray]:
    volume = _volume((24, 64, 64))
    centres = _voxel_centres(volume)
    rng = np.random.default_rng(7)
    first = volume.index_to_lps(np.array([20.0, 30.0, 12.0]))[0]
    second = volume.index_to_lps(np.array([50.0, 30.0, 12.0]))[0]  # same brightness, apart
    in_first = np.linalg.norm(centres - first, axis=-1) <= 8.0
    in_second = np.linalg.norm(centres - second, axis=-1) <= 6.0
    voxels = rng.integers(-10, 11, volume.voxels.shape)
    voxels[in_first | in_second] += 300
    volume.voxels[:] = voxels
    return volume, first, in_first, in_second


def test_a_seed_grows_the_bright_sphere_and_nothing_outside(qtbot):
    volume, first, in_first, in_second = _spheres_volume()
    seg, _, tumour = _segmentation(volume)
    app = Harness(qtbot, volume, seg)
    app.selected = (app.segmentation_id, tumour)
    tool = SeedTool(app)  # automatic range from the seed's neighbourhood
    app.view.set_tool(tool)
    app.view.set_index(12)
    count = len(app.history.undo_stack)
    click = app.view.to_widget(first)
    qtbot.mouseClick(app.view.view, Qt.MouseButton.LeftButton, pos=QPointF(click).toPoint())
    assert not app.errors
    assert len(app.history.undo_stack) == count + 1
    np.testing.assert_array_equal(seg.labels == tumour, in_first)
    lower, upper = tool.last_range
    assert 250 < lower < 300 < upper < 350
    assert not (seg.labels[in_second]).any()
    app.history.undo()
    assert not seg.labels.any()


def test_a_seed_with_a_given_range_keeps_other_segments(qtbot):
    volume, first, in_first, _ = _spheres_volume()
    seg, liver, tumour = _segmentation(volume)
    seg.labels[12, :, :] = np.where(in_first[12], liver, 0)  # one slice of it is already liver
    app = Harness(qtbot, volume, seg)
    app.selected = (app.segmentation_id, tumour)
    app.view.set_tool(SeedTool(app, (200.0, 400.0)))
    app.view.set_index(10)
    click = app.view.to_widget(first + np.array([0.0, 0.0, -5.0]))  # two slices below the centre
    qtbot.mouseClick(app.view.view, Qt.MouseButton.LeftButton, pos=QPointF(click).toPoint())
    expected_tumour = in_first.copy()
    expected_tumour[12] = False
    np.testing.assert_array_equal(seg.labels == tumour, expected_tumour)
    np.testing.assert_array_equal(
        seg.labels == liver, np.where(np.arange(24)[:, None, None] == 12, in_first, False)
    )


@pytest.mark.parametrize("bad", [(1e6, 2e6)])
def test_a_seed_that_grows_nothing_says_so(qtbot, bad):
    volume, first, _, _ = _spheres_volume()
    seg, _, tumour = _segmentation(volume)
    app = Harness(qtbot, volume, seg)
    app.selected = (app.segmentation_id, tumour)
    app.view.set_tool(SeedTool(app, bad))
    app.view.set_index(12)
    count = len(app.history.undo_stack)
    qtbot.mouseClick(app.view.view, Qt.MouseButton.LeftButton, pos=app.view.to_widget(first).toPoint())
    assert len(app.history.undo_stack) == count and "nothing changed" in app.statuses[-1]
