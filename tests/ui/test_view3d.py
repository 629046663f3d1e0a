"""The interactive 3D view under a real X server: volume rendering, clipping, picking,
3D scissors and screenshots, on a real Scene / History through the shared ToolContext harness."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage

from surgtwin.core.commands import AddMesh, AddVolume
from surgtwin.core.mesh import extract_meshes
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.model import Segment, Segmentation
from tests.render.imaging import color_pixels
from tests.render.test_volume_rendering import BALL_LPS, GRIDS, grid, phantom
from tests.ui.harness import ToolHarness, show_widget, view3d_to_widget

N = 48
RADIUS = 15.0
RED = (0.9, 0.2, 0.2)


def ball_segmentation() -> Segmentation:
    """A red ball of radius 15 mm centred on LPS (0, 0, 0), 1 mm voxels (centres at ±0.5 ...)."""
    ijk_to_lps = grid(np.eye(3), n=N, step=1.0)
    k, j, i = np.mgrid[:N, :N, :N]
    c = (N - 1) / 2.0
    labels = ((i - c) ** 2 + (j - c) ** 2 + (k - c) ** 2 < RADIUS**2).astype(np.uint8)
    return Segmentation(labels, ijk_to_lps, {1: Segment("ball", RED)}, name="test")


def voxel_x(seg: Segmentation) -> np.ndarray:
    """LPS x of every voxel centre, shaped like the labels."""
    i = np.arange(seg.labels.shape[2])
    return np.broadcast_to(seg.ijk_to_lps[0, 0] * i + seg.ijk_to_lps[0, 3], seg.labels.shape)


@pytest.fixture
def case() -> tuple[ToolHarness, str]:
    harness = ToolHarness(Scene("view3d"))
    seg = ball_segmentation()
    harness.history.execute(AddSegmentation(seg))
    seg_id = harness.scene.ids("segmentation")[0]
    mesh = extract_meshes(seg)[1]
    mesh.segmentation_id = seg_id
    harness.history.execute(AddMesh(mesh))
    harness.selected = (seg_id, 1)
    return harness, seg_id


@pytest.fixture
def view(qtbot):
    from surgtwin.ui.view3d import View3D

    widget = show_widget(qtbot, View3D(), (420, 320))
    assert widget.interactive, "the UI tier runs the interactive (GLX) 3D view"
    yield widget
    widget.close_view()


def show(view, harness: ToolHarness) -> np.ndarray:
    view.set_context(harness)
    view.set_scene(harness.scene)
    return view.image()


to_widget = view3d_to_widget


def test_pick_returns_the_segment_and_a_surface_point(view, case, qtbot) -> None:
    harness, seg_id = case
    show(view, harness)
    front = np.array([0.0, -RADIUS, 0.0])  # the ball's most anterior point faces the camera
    x, y = to_widget(view, front)
    result = view.pick_at(x, y)
    assert result is not None
    assert result["segment"] == "ball" and result["segmentation_id"] == seg_id and result["label"] == 1
    assert result["mesh_id"] in harness.scene.ids("mesh")
    lps = np.array(result["lps"])
    assert abs(np.linalg.norm(lps) - RADIUS) < 1.5, lps  # on the surface (voxel staircase smoothed)
    assert np.linalg.norm(lps - front) < 2.0, lps
    assert view.pick_at(3, 3) is None  # the empty corner

    with qtbot.waitSignal(view.picked, timeout=2000) as signal:
        qtbot.mouseClick(
            view.interactor.interactor,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.ShiftModifier,
            QPoint(round(x), round(y)),
        )
    assert signal.args[0]["segment"] == "ball"

    view.set_pick_mode(True)
    with qtbot.waitSignal(view.picked, timeout=2000):
        qtbot.mouseClick(
            view.interactor.interactor, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y))
        )


def test_clipping_hides_the_half_beyond_the_plane(view, case) -> None:
    harness, _ = case
    whole = show(view, harness)
    ratio = whole.shape[1] / view.interactor.interactor.width()
    split = int(round(to_widget(view, (0.0, 0.0, 0.0))[0] * ratio))

    def halves(rgb: np.ndarray) -> tuple[int, int]:
        red = color_pixels(rgb, RED)
        return int(red[:, :split].sum()), int(red[:, split:].sum())

    left0, right0 = halves(whole)
    assert left0 > 2000 and right0 > 2000

    view.set_clipping(True, normal=(1.0, 0.0, 0.0), position_mm=0.0)  # keeps x > 0: patient left
    left, right = halves(view.image())
    assert left < 0.03 * left0 and right > 0.8 * right0, (left, right, left0, right0)

    view.set_clipping_axis("sagittal", 0.5, flip=True)  # the middle of the ball; keeps the right
    left, right = halves(view.image())
    assert right < 0.03 * right0 and left > 0.8 * left0, (left, right)

    view.set_clipping_axis("sagittal", 0.0)  # at the ball's right edge: everything kept
    left, right = halves(view.image())
    assert left > 0.8 * left0 and right > 0.8 * right0

    view.set_clipping(False)
    assert view.clipping_plane is None
    assert halves(view.image()) == (left0, right0)


def test_volume_rendering_follows_the_case(view) -> None:
    harness = ToolHarness(Scene("view3d"))
    show(view, harness)
    assert view.set_volume_rendering("ct_bone") is False  # no volume yet: remembered
    harness.history.execute(AddVolume(phantom(GRIDS["i_mirrored"])))
    assert view.volume_rendering is not None and view.volume_preset == "ct_bone"
    rgb = view.image()
    bg = np.rint(np.array(view.scene_renderer.renderer.GetBackground()) * 255.0)
    lit = np.any(np.abs(rgb.astype(np.int16) - bg) > 12, axis=-1)
    centre_x, centre_y = to_widget(view, (0.0, 0.0, 0.0))
    ball_x, ball_y = to_widget(view, BALL_LPS)
    ratio = rgb.shape[1] / view.interactor.interactor.width()
    rows, cols = np.nonzero(lit)
    assert lit.sum() > 150
    assert cols.mean() > centre_x * ratio + 10  # patient left on screen right (anterior view)
    assert abs(cols.mean() - ball_x * ratio) < 6 and abs(rows.mean() - ball_y * ratio) < 6

    view.set_clipping(True, normal=(-1.0, 0.0, 0.0), position_mm=0.0)  # keep x < 0: cuts the ball
    clipped = view.image()
    assert not np.any(np.abs(clipped.astype(np.int16) - bg) > 12)
    view.set_clipping(False)

    view.set_volume_rendering("ct_soft_tissue")
    assert view.volume_rendering.preset == "ct_soft_tissue"
    harness.history.undo()  # the volume leaves the case: so does its rendering
    assert view.volume_rendering is None
    harness.history.redo()
    assert view.volume_rendering is not None
    view.set_volume_rendering(None)
    assert view.volume_rendering is None
    assert not np.any(np.abs(view.image().astype(np.int16) - bg) > 12)


def _lasso_right_half(view) -> list[tuple[float, float]]:
    cx, cy = to_widget(view, (0.0, 0.0, 0.0))
    edge_x, _ = to_widget(view, (RADIUS + 8.0, 0.0, 0.0))
    reach = edge_x - cx
    return [(cx, cy - reach), (cx + reach, cy - reach), (cx + reach, cy + reach), (cx, cy + reach)]


def test_scissors_polygon_removes_the_lassoed_half_in_one_undo_step(view, case) -> None:
    harness, seg_id = case
    show(view, harness)
    seg: Segmentation = harness.scene.get(seg_id)
    before = seg.labels.copy()
    command = view.scissors_polygon(_lasso_right_half(view))
    assert harness.execute(command)
    x = voxel_x(seg)
    ball = before == 1
    assert np.array_equal(seg.labels == 1, ball & (x < 0))  # exactly the patient-left half is gone
    assert np.count_nonzero(ball & (x > 0)) > 5000
    harness.history.undo()
    assert np.array_equal(seg.labels, before)


def test_scissors_lasso_gesture_is_one_command(view, case, qtbot) -> None:
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    harness, seg_id = case
    show(view, harness)
    seg: Segmentation = harness.scene.get(seg_id)
    before = seg.labels.copy()
    camera = view.scene_renderer.renderer.GetActiveCamera()
    position = camera.GetPosition()
    view.set_scissors_mode(True, erase_inside=False)  # keep inside: the left half of the screen goes
    widget = view.interactor.interactor
    corners = _lasso_right_half(view)
    path = [corners[0]] + [
        tuple(np.add(a, (np.subtract(b, a)) * t))
        for a, b in zip(corners, corners[1:], strict=False)
        for t in np.linspace(0.1, 1.0, 6)
    ]

    def send(kind, point, button, buttons) -> None:
        event = QMouseEvent(
            kind,
            QPointF(*point),
            widget.mapToGlobal(QPointF(*point)),
            button,
            buttons,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(widget, event)

    left = Qt.MouseButton.LeftButton
    send(QMouseEvent.Type.MouseButtonPress, path[0], left, left)
    for point in path[1:]:
        send(QMouseEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, left)
    send(QMouseEvent.Type.MouseButtonRelease, path[-1], left, Qt.MouseButton.NoButton)

    assert harness.errors == []
    assert len(harness.history.undo_stack) == 3  # segmentation, mesh, and the one cut
    x = voxel_x(seg)
    assert np.array_equal(seg.labels == 1, (before == 1) & (x > 0))
    assert camera.GetPosition() == position  # the drag cut, it did not rotate
    harness.history.undo()
    assert np.array_equal(seg.labels, before)


def test_scissors_without_a_selected_segment_reports_and_changes_nothing(view, case) -> None:
    harness, seg_id = case
    show(view, harness)
    harness.selected = None
    from surgtwin.core.errors import SegmentationError

    with pytest.raises(SegmentationError, match="Segments panel"):
        view.scissors_polygon(_lasso_right_half(view))


def test_save_screenshot_writes_the_view(view, case, tmp_path) -> None:
    harness, _ = case
    rgb = show(view, harness)
    path = view.save_screenshot(tmp_path / "shots" / "view3d.png")
    image = QImage(str(path))
    assert not image.isNull()
    assert (image.width(), image.height()) == (rgb.shape[1], rgb.shape[0])
    assert color_pixels(rgb, RED).sum() > 4000


def test_controls_panel_drives_the_view(view, case, qtbot) -> None:
    from surgtwin.ui.view3d_controls import View3DControls

    harness, _ = case
    harness.history.execute(AddVolume(phantom(GRIDS["plain"])))
    show(view, harness)
    controls = View3DControls(view)
    qtbot.addWidget(controls)
    controls.volume_box.setCurrentIndex(controls.volume_box.findData("ct_angio"))
    assert view.volume_preset == "ct_angio" and view.volume_rendering is not None
    controls.clip_axis.setCurrentText("coronal")
    controls.clip_slider.setValue(controls.clip_slider.maximum() // 4)
    assert view.clipping_plane is None  # not until "Clip" is ticked
    controls.clip_box.setChecked(True)
    plane = view.clipping_plane
    assert plane is not None and plane.GetNormal() == (0.0, 1.0, 0.0)
    low, high = view._content_bounds()
    assert plane.GetOrigin()[1] == pytest.approx(low[1] + 0.25 * (high[1] - low[1]))
    controls.clip_box.setChecked(False)
    assert view.clipping_plane is None
    controls.pick_button.setChecked(True)
    assert view.pick_mode
    controls.scissors_inside.setCurrentIndex(1)
    controls.scissors_button.setChecked(True)
    assert view.scissors_mode and not view.scissors_erase_inside and not view.pick_mode
    controls.volume_box.setCurrentIndex(0)
    assert view.volume_rendering is None and harness.errors == []
