"""The slice view driven with real mouse and key events: mapping, zoom/pan, crosshair, W/L,
previews, overlays and oblique planes."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import CT_WINDOW_PRESETS
from surgtwin.ui.slice_view import CROSSHAIR_COLOR, SliceView
from surgtwin.ui.view_tools import Preview, SliceTool
from tests.ui.harness import ct_volume, drag, show_widget

SPACING = np.array([0.8, 0.8, 2.0])  # i, j, k mm
ORIGIN = np.array([-30.0, 12.0, -140.0])


def _volume(shape_kji=(30, 50, 60)) -> Volume:
    """A ramp along i (patient left) plus a ramp along k, identity direction."""
    k, j, i = np.indices(shape_kji)
    return ct_volume((i * 10 + k * 3 - 200).astype(np.int16), SPACING, ORIGIN)


def _view(qtbot, axis: str = "axial", size=(420, 380)) -> SliceView:
    return show_widget(qtbot, SliceView(axis), size)


def _wheel(widget, position: QPointF, notches: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    event = QWheelEvent(
        position,
        widget.mapToGlobal(position),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def _grab(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * h)
    return data.reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def _expected_click_lps(view: SliceView, volume: Volume, x: int, y: int) -> np.ndarray:
    """Independent: the unzoomed axial image fits the widget centred, and its outer edge is
    half a voxel beyond the corner voxel centres (x right = +L, y down = +P)."""
    width, height = view.view.width(), view.view.height()
    nx, ny = volume.shape_ijk[0], volume.shape_ijk[1]
    scale = min(width / nx, height / ny)  # widget pixels per voxel (pixel = 0.8 mm)
    left = (width - nx * scale) / 2
    top = (height - ny * scale) / 2
    lx = ORIGIN[0] - SPACING[0] / 2 + (x - left) / scale * SPACING[0]
    py = ORIGIN[1] - SPACING[1] / 2 + (y - top) / scale * SPACING[1]
    z = ORIGIN[2] + view.index * SPACING[2]
    return np.array([lx, py, z])


def test_click_gives_the_expected_lps_point_and_zoom_pan_keep_the_mapping(qtbot):
    volume = _volume()
    view = _view(qtbot)
    view.set_data(volume, None)
    assert view.index == 15 and view.slice_count == 30
    clicks = []
    view.crosshair_moved.connect(clicks.append)
    qtbot.mouseClick(view.view, Qt.MouseButton.LeftButton, pos=QPoint(150, 120))
    assert len(clicks) == 1
    np.testing.assert_allclose(clicks[0], _expected_click_lps(view, volume, 150, 120), atol=1e-9)
    np.testing.assert_allclose(view.crosshair, clicks[0])

    points = [view.image.geometry.pixel_to_lps(r, c) for r, c in ((0, 0), (10, 33), (49, 59))]

    def round_trip() -> None:
        for p in points:
            np.testing.assert_allclose(view.to_lps(view.to_widget(p)), p, atol=1e-9)

    round_trip()
    # Ctrl+wheel zooms about the cursor: the point under it stays under it.
    cursor = QPointF(230.0, 170.0)
    under = view.to_lps(cursor)
    _wheel(view.view, cursor, 2, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom == pytest.approx(1.25**2) and view.index == 15  # zoom, not a slice change
    np.testing.assert_allclose(view.to_lps(cursor), under, atol=1e-9)
    round_trip()
    # Middle-drag pans: what was under the press point follows the mouse.
    start, end = QPoint(100, 100), QPoint(160, 140)
    grabbed = view.to_lps(QPointF(start))
    drag(qtbot, view.view, [start, end], Qt.MouseButton.MiddleButton)
    np.testing.assert_allclose(view.to_lps(QPointF(end)), grabbed, atol=1e-9)
    round_trip()
    # Shift+left-drag pans too, and places no crosshair.
    pan_before = view.pan
    drag(
        qtbot,
        view.view,
        [QPoint(200, 200), QPoint(180, 210)],
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ShiftModifier,
    )
    assert view.pan == pan_before + QPointF(-20, 10) and len(clicks) == 1
    # R resets; so does a middle double-click.
    qtbot.keyClick(view.view, Qt.Key.Key_R)
    assert view.zoom == 1.0 and view.pan == QPointF(0, 0)
    np.testing.assert_allclose(view.to_lps(QPointF(150, 120)), _expected_click_lps(view, volume, 150, 120))
    _wheel(view.view, cursor, 1, Qt.KeyboardModifier.ControlModifier)
    qtbot.mouseDClick(view.view, Qt.MouseButton.MiddleButton, pos=QPoint(50, 50))
    assert view.zoom == 1.0
    # The plain wheel changes the slice.
    _wheel(view.view, cursor, -3)
    assert view.index == 12


def test_crosshair_moves_the_other_views(qtbot):
    volume = _volume()
    views = {axis: _view(qtbot, axis, (300, 300)) for axis in ("axial", "coronal", "sagittal")}
    for view in views.values():
        view.set_data(volume, None)
    for source in views.values():
        for target in views.values():
            source.crosshair_moved.connect(target.set_crosshair)
    axial = views["axial"]
    at = axial.to_widget(volume.index_to_lps(np.array([41.0, 9.0, 15.0]))[0])
    qtbot.mouseClick(axial.view, Qt.MouseButton.LeftButton, pos=at.toPoint())
    point = axial.crosshair
    # Independent: the nearest voxel plane along each view's axis (identity grid).
    i, j, _ = np.rint((point - ORIGIN) / SPACING).astype(int)
    assert abs(i - 41) <= 1 and abs(j - 9) <= 1
    assert views["coronal"].index == j  # coronal slices count along +y (A -> P)
    assert views["sagittal"].index == i  # sagittal along +x (R -> L)
    assert axial.index == 15
    for view in views.values():
        np.testing.assert_allclose(view.crosshair, point)
    # The coronal view draws its vertical crosshair line through the point's x.
    coronal = views["coronal"]
    x = int(round(coronal.to_widget(point).x()))
    column = _grab(coronal.view)[:, x].astype(int)
    cyan = np.abs(column - [CROSSHAIR_COLOR.red(), CROSSHAIR_COLOR.green(), CROSSHAIR_COLOR.blue()]).max(
        axis=1
    )
    assert (cyan < 80).sum() > coronal.view.height() // 4
    # A crosshair set in the coronal view moves the axial slice.
    lower = volume.index_to_lps(np.array([20.0, 9.0, 4.0]))[0]
    coronal.set_crosshair(lower)
    coronal.crosshair_moved.emit(lower)
    assert axial.index == 4


def test_right_drag_changes_window_numbers_and_brightness_without_resampling(qtbot):
    volume = _volume()
    view = _view(qtbot)
    view.set_data(volume, None)
    assert view.window == CT_WINDOW_PRESETS["soft_tissue"]
    values = view.image.values
    grey_before = view.image.rgb.astype(float).mean()
    changes = []
    view.window_changed.connect(lambda w, level: changes.append((w, level)))
    # Right-drag down: level up -> darker.
    drag(qtbot, view.view, [QPoint(100, 100), QPoint(100, 160)], Qt.MouseButton.RightButton)
    width, level = view.window
    assert width == pytest.approx(400.0) and level > 40.0 + 50
    assert changes and changes[-1] == (width, level)
    assert view.image.rgb.astype(float).mean() < grey_before - 10
    assert view.image.values is values  # re-windowed, not resampled
    assert f"W {width:.0f} L {level:.0f}" in view.caption.text()
    # Right-drag to the right: a wider window.
    drag(qtbot, view.view, [QPoint(100, 100), QPoint(180, 100)], Qt.MouseButton.RightButton)
    assert view.window[0] > width + 50 and view.window[1] == pytest.approx(level)
    # Recomputed grey levels are the window formula on the same samples.
    w, lv = view.window
    expected = np.rint(np.clip((values - (lv - w / 2)) / w, 0, 1) * 255)
    assert np.abs(view.image.rgb[..., 0] - expected).max() <= 1
    view.set_window_level("bone")
    assert view.window == CT_WINDOW_PRESETS["bone"] and "bone" in view.caption.text()


def test_preview_colours_exactly_the_pixels_in_range_and_mask(qtbot):
    volume = _volume()
    view = _view(qtbot)
    view.set_data(volume, None)
    base = view.image.rgb.copy()
    values = view.image.values
    view.set_preview(Preview(color=(1.0, 0.0, 1.0), value_range=(100.0, 250.0), opacity=1.0))
    assert view.image.values is values  # no resampling for a preview
    inside = (values >= 100) & (values <= 250)
    assert 0 < inside.sum() < inside.size
    assert (view.image.rgb[inside] == [255, 0, 255]).all()
    np.testing.assert_array_equal(view.image.rgb[~inside], base[~inside])
    # A volume-grid mask restricts it further (j < 20 only on this grid).
    mask = np.zeros(volume.voxels.shape, dtype=bool)
    mask[:, :20, :] = True
    view.set_preview(Preview(color=(0.0, 1.0, 0.0), value_range=(100.0, 250.0), mask=mask, opacity=1.0))
    rows = np.arange(values.shape[0])[:, None] < 20
    chosen = inside & rows
    assert (view.image.rgb[chosen] == [0, 255, 0]).all()
    np.testing.assert_array_equal(view.image.rgb[~chosen], base[~chosen])
    view.set_preview(None)
    np.testing.assert_array_equal(view.image.rgb, base)
    with pytest.raises(ValueError, match="grid"):
        view.set_preview(Preview(mask=np.zeros((2, 2, 2), dtype=bool)))


def test_overlay_opacity_overlays_and_tool_painting(qtbot):
    volume = _volume()
    seg = Segmentation(np.zeros(volume.voxels.shape, dtype=np.uint8), volume.ijk_to_lps.copy())
    seg.segments[1] = Segment("block", (0.0, 0.0, 1.0))
    seg.labels[15, 10:20, 30:40] = 1
    view = _view(qtbot)
    view.set_data(volume, seg)
    labelled = view.image.label_map == 1
    assert labelled.sum() == 100
    view.set_overlay_opacity(1.0)
    assert (view.image.rgb[labelled] == [0, 0, 255]).all()
    view.set_overlay_opacity(0.0)
    assert (view.image.rgb[labelled][:, 0] == view.image.rgb[labelled][:, 2]).all()  # grey
    with pytest.raises(ValueError):
        view.set_overlay_opacity(1.5)
    # An in-place label edit + set_data (what the window does on a scene event) shows up.
    seg.labels[15, 30:35, 5:10] = 1
    view.set_data(volume, seg)
    assert (view.image.label_map == 1).sum() == 125

    calls = []

    class Recorder(SliceTool):
        def paint(self, painter, frame):
            calls.append(("tool", frame.axis, frame.mm_per_pixel))

        def cancel(self):
            calls.append(("cancel",))

    view.add_overlay(lambda painter, frame: calls.append(("overlay", frame.axis, frame.mm_per_pixel)))
    view.set_tool(Recorder(context=None))  # type: ignore[arg-type]
    calls.clear()
    view.view.grab()  # paints the widget now
    assert [c[0] for c in calls] == ["overlay", "tool"]
    scale = min(view.view.width() / 60, view.view.height() / 50)
    assert calls[0][2] == pytest.approx(0.8 / scale)
    qtbot.keyClick(view.view, Qt.Key.Key_Escape)
    assert calls[-1] == ("cancel",)


def test_oblique_plane_shows_the_expected_content_and_moves_along_its_normal(qtbot):
    volume = _volume((40, 60, 60))
    volume.voxels[:] = 0
    target = volume.index_to_lps(np.array([30.0, 28.0, 20.0]))[0]
    volume.voxels[20, 28, 30] = 2000
    view = _view(qtbot, "coronal", (400, 400))
    view.set_data(volume, None)
    coronal_shape = view.image.geometry.shape
    column = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    row = np.array([0.0, 0.0, -1.0])
    view.set_plane(target, column, row, "Trajectory")
    plane = view.plane
    assert plane is not None and plane.title == "Trajectory"
    np.testing.assert_allclose(plane.normal, np.cross(column, row))
    rows, cols = view.image.geometry.shape
    assert view.image.values[rows // 2, cols // 2] == pytest.approx(2000)  # centred on the target
    assert view.image.axis == "reslice" and "Trajectory" in view.caption.text()
    assert set(view.image.labels["right"]) == {"L", "P"} and view.image.labels["top"] == "S"
    centre_widget = view.to_widget(target)
    np.testing.assert_allclose(view.to_lps(centre_widget), target, atol=1e-9)
    # The wheel moves the plane by the finest spacing along its normal; the target leaves it.
    _wheel(view.view, centre_widget, 2)
    np.testing.assert_allclose(view.plane.origin - target, 2 * 0.8 * plane.normal, atol=1e-9)
    assert view.image.values[rows // 2, cols // 2] < 1000
    view.set_crosshair(target)  # back onto the target's plane
    assert view.image.values[rows // 2, cols // 2] == pytest.approx(2000)
    view.clear_plane()
    assert view.plane is None and view.image.axis == "coronal"
    assert view.image.geometry.shape == coronal_shape and view.index == 28


def test_refresh_and_rewindow_speed_on_a_512_ct(qtbot):
    """Not a timed assertion: prints the cost of a resample and of a re-window (run with -s)."""
    k = np.arange(300, dtype=np.int16)[:, None, None]
    j = np.arange(512, dtype=np.int16)[None, :, None]
    i = np.arange(512, dtype=np.int16)[None, None, :]
    voxels = ((i - 256) ** 2 // 200 + (j - 256) ** 2 // 200 + k - 1000).astype(np.int16)
    volume = ct_volume(voxels, (0.7, 0.7, 1.25))
    seg = Segmentation(np.zeros(voxels.shape, dtype=np.uint8), volume.ijk_to_lps.copy())
    seg.segments[1] = Segment("s", (1.0, 0.0, 0.0))
    seg.labels[140:160, 200:300, 200:300] = 1
    view = _view(qtbot, "axial", (600, 600))
    view.set_data(volume, seg)
    timings = {}

    def best(action) -> float:
        spent = []
        for _ in range(5):
            start = time.perf_counter()
            action()
            spent.append(time.perf_counter() - start)
        return min(spent) * 1000

    for axis in ("axial", "coronal"):
        view.axis = axis
        view.index = None
        view.refresh()
        values = view.image.values
        timings[f"{axis} refresh (resample)"] = best(view.refresh)
        timings[f"{axis} re-window"] = best(
            lambda: view.set_window_level((float(np.random.rand() * 400 + 100), 40))
        )
        timings[f"{axis} preview"] = best(lambda: view.set_preview(Preview(value_range=(-500.0, 0.0))))
        view.set_preview(None)
        values = view.image.values
        view.set_window_level("bone")
        assert view.image.values is values  # re-windowing reuses the samples
    assert view.image.label_map.shape == view.image.values.shape
    shown = view.image.values.shape
    view.set_plane(
        volume.index_to_lps(np.array([256.0, 256.0, 150.0]))[0], [1, 1, 0], [0, 0.3, -1], "oblique"
    )
    timings[f"oblique {view.image.values.shape} refresh"] = best(view.refresh)
    assert np.isfinite(view.image.values).sum() > 100_000
    print(
        f"\nslice view on 512x512x300 int16 ({shown} px):", {n: f"{ms:.1f} ms" for n, ms in timings.items()}
    )
