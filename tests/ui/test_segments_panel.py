"""The segments panel on a real Scene/History: every change is a command that undo reverses."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLineEdit, QStyle, QStyleOptionSlider, QWidget

from surgtwin.core.commands import AddVolume, History
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools import apply_mask
from surgtwin.core.volume import Volume
from surgtwin.ui.segment_editor import SegmentEditor
from surgtwin.ui.segments_panel import COLOR_COLUMN, SegmentsPanel
from tests.ui.harness import ToolHarness, ct_volume, show_widget

SPACING_MM = 1.0
SHAPE = (40, 56, 56)  # k, j, i
BONE_CENTRE, BONE_RADIUS, CAVITY_RADIUS = (20, 22, 20), 9.0, 3.0
VESSEL_CENTRE, VESSEL_RADIUS = (20, 30, 40), 6.0
ISLAND = (slice(6, 8), slice(8, 10), slice(8, 10))  # a 2×2×2 mm bone fragment


def _ball(centre: tuple[int, int, int], radius: float) -> np.ndarray:
    k, j, i = np.indices(SHAPE, dtype=np.float64)
    return (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius**2


def synthetic_ct() -> Volume:
    """Air around a soft-tissue body holding a hollow bone ball, a contrast vessel ball and
    a small bone fragment (voxel values in HU, 1 mm voxels)."""
    voxels = np.full(SHAPE, -1000.0, dtype=np.float32)
    voxels[2:-2, 3:-3, 3:-3] = 40.0
    voxels[_ball(BONE_CENTRE, BONE_RADIUS)] = 700.0
    voxels[_ball(BONE_CENTRE, CAVITY_RADIUS)] = 40.0  # the hole in the bone
    voxels[_ball(VESSEL_CENTRE, VESSEL_RADIUS)] = 300.0
    voxels[ISLAND] = 700.0
    return ct_volume(voxels, (SPACING_MM,) * 3, (-20.0, -30.0, 100.0), name="synthetic")


class Host(ToolHarness):
    """The window's ToolContext over a real Scene/History, with the segments panel and the
    segment editor side by side in ``widget``; the selected segment is the panel's, and scene
    changes refresh the panels coalesced, as the window does."""

    def __init__(self, scene: Scene, history: History | None = None) -> None:
        self.widget = QWidget()
        super().__init__(scene, history, parent=self.widget)
        self._timer = QTimer(self.widget)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.refresh)
        self.panel = SegmentsPanel(self)
        self.editor = SegmentEditor(self)
        self.panel.selection_changed.connect(lambda _key: self.editor.refresh())
        layout = QHBoxLayout(self.widget)
        layout.addWidget(self.panel)
        layout.addWidget(self.editor)
        scene.subscribe(lambda _event: self._timer.start())
        self.refresh()

    def refresh(self) -> None:
        self.panel.show_scene(self.scene)
        self.editor.refresh()

    def selected_segment(self) -> tuple[str, int] | None:
        return self.panel.selected()


def make_host(qtbot, *, segments: tuple[str, ...] = ("bone", "vessels")) -> Host:
    scene = Scene("test")
    history = History(scene)
    history.execute(AddVolume(synthetic_ct()))
    volume_id = next(iter(scene.volumes))
    if segments:
        segmentation = Segmentation.empty_like(scene.volumes[volume_id], reference_volume_id=volume_id)
        for name in segments:
            segmentation.add_segment(name)
        history.execute(AddSegmentation(segmentation))
    host = Host(scene, history)
    show_widget(qtbot, host.widget)
    return host


def settle(qtbot, host: Host) -> None:
    qtbot.waitUntil(lambda: not host.busy and not host._timer.isActive(), timeout=20_000)
    qtbot.wait(1)


def snapshot(scene: Scene) -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (seg_id, label, copy.deepcopy(segment.to_dict()))
        for seg_id, seg in scene.segmentations.items()
        for label, segment in seg.segments.items()
    ]


def the_segment(host: Host, name: str):
    for seg in host.scene.segmentations.values():
        for segment in seg.segments.values():
            if segment.name == name:
                return segment
    raise AssertionError(f"no segment {name!r}")


def select(qtbot, host: Host, name: str) -> None:
    item = host.panel.item_named(name)
    assert item is not None, name
    rect = host.panel.table.visualItemRect(item)
    qtbot.mouseClick(host.panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert host.panel.selected() is not None
    assert host.panel.item_named(name).isSelected()


def test_rows_show_the_scene_and_selection_survives_rebuilds(qtbot):
    host = make_host(qtbot)
    assert host.panel.count() == 2 and host.panel.names() == ["bone", "vessels"]
    seen: list = []
    host.panel.selection_changed.connect(seen.append)
    select(qtbot, host, "vessels")
    key = host.panel.selected()
    assert seen == [key] and key[1] == host.current_segmentation()[1].label_of("vessels")
    assert host.editor.target_label.text() == "Editing: vessels"
    host.refresh()  # a rebuild from the scene keeps the row selected and emits nothing new
    assert host.panel.selected() == key and seen == [key]


def test_visibility_checkbox_runs_one_command_and_undo_restores(qtbot):
    host = make_host(qtbot)
    before = snapshot(host.scene)
    host.panel.item_named("bone").setCheckState(Qt.CheckState.Unchecked)  # as test_main_window does
    settle(qtbot, host)
    assert the_segment(host, "bone").visible is False
    assert host.panel.item_named("bone").checkState() == Qt.CheckState.Unchecked
    assert len(host.history.undo_stack) == 3  # volume, segmentation, visibility
    host.history.undo()
    settle(qtbot, host)
    assert snapshot(host.scene) == before
    assert host.panel.item_named("bone").checkState() == Qt.CheckState.Checked


def _rename_in_place(qtbot, host: Host, name: str, new_name: str) -> None:
    item = host.panel.item_named(name)
    table = host.panel.table
    table.setCurrentItem(item)
    table.editItem(item)
    editor = table.indexWidget(table.indexFromItem(item))  # the open in-place editor
    assert isinstance(editor, QLineEdit) and table.state() == QAbstractItemView.State.EditingState
    editor.selectAll()
    qtbot.keyClicks(editor, new_name)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    settle(qtbot, host)


def test_rename_in_place_and_refused_names(qtbot):
    host = make_host(qtbot)
    before = snapshot(host.scene)
    _rename_in_place(qtbot, host, "vessels", "aorta")
    assert host.panel.names() == ["bone", "aorta"] and not host.errors
    assert the_segment(host, "aorta").name == "aorta"
    assert host.panel.selected()[1] == host.current_segmentation()[1].label_of("aorta")

    _rename_in_place(qtbot, host, "aorta", "bone")  # taken: refused, the row reverts
    assert host.panel.names() == ["bone", "aorta"]
    assert len(host.errors) == 1 and "already exists" in str(host.errors[0][1])
    _rename_in_place(qtbot, host, "aorta", "   ")  # blank: refused before any command
    assert host.panel.names() == ["bone", "aorta"]
    assert len(host.errors) == 2 and "non-empty" in str(host.errors[1][1])
    assert len(host.history.undo_stack) == 3  # only the one good rename was recorded

    host.history.undo()
    settle(qtbot, host)
    assert snapshot(host.scene) == before and host.panel.names() == ["bone", "vessels"]


def test_colour_swatch_opens_a_dialog_whose_choice_is_one_command(qtbot):
    host = make_host(qtbot)
    before = snapshot(host.scene)
    table = host.panel.table
    rect = table.visualRect(table.model().index(1, COLOR_COLUMN))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    dialog = host.panel.color_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.setCurrentColor(QColor(0, 128, 255))
    dialog.accept()
    settle(qtbot, host)
    color = the_segment(host, "vessels").color
    assert np.allclose(color, (0.0, 128 / 255, 1.0), atol=1e-3)
    swatch = table.item(1, COLOR_COLUMN).icon().pixmap(14, 14).toImage().pixelColor(7, 7)
    # (the X server's colour depth may round the pixmap a little)
    assert np.allclose((swatch.red(), swatch.green(), swatch.blue()), (0, 128, 255), atol=4)
    host.history.undo()
    settle(qtbot, host)
    assert snapshot(host.scene) == before


def _handle_centre(slider) -> QPoint:
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    return (
        slider.style()
        .subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider)
        .center()
    )


def test_opacity_slider_drag_is_live_and_one_undo_step(qtbot):
    host = make_host(qtbot)
    select(qtbot, host, "bone")
    slider = host.panel.opacity_slider
    assert slider.isEnabled() and slider.value() == 100
    steps_before = len(host.history.undo_stack)
    seen_live: list[float] = []
    host.scene.subscribe(lambda _e: seen_live.append(the_segment(host, "bone").opacity))

    start = _handle_centre(slider)
    qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=start)
    assert slider.isSliderDown()
    for x in range(start.x() - 10, start.x() - slider.width() // 2, -10):
        qtbot.mouseMove(slider, QPoint(x, start.y()))
        qtbot.wait(5)
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=QPoint(x, start.y()))
    settle(qtbot, host)

    final = slider.value() / 100
    assert 0.2 < final < 0.9
    assert len(set(seen_live)) > 2  # the scene followed the drag, not only its end
    assert len(host.history.undo_stack) == steps_before + 1
    assert the_segment(host, "bone").opacity == pytest.approx(final)
    assert host.panel.opacity_label.text() == f"{slider.value()} %"
    host.history.undo()
    settle(qtbot, host)
    assert the_segment(host, "bone").opacity == 1.0 and slider.value() == 100
    host.history.redo()
    settle(qtbot, host)
    assert the_segment(host, "bone").opacity == pytest.approx(final)

    # A key press is a gesture of its own: one more step.
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    settle(qtbot, host)
    assert len(host.history.undo_stack) == steps_before + 2
    assert the_segment(host, "bone").opacity == pytest.approx(final + 0.1)


def test_add_creates_the_segmentation_in_one_undo_step(qtbot):
    host = make_host(qtbot, segments=())
    assert host.panel.count() == 0 and not host.panel.delete_button.isEnabled()
    assert not host.editor.threshold_apply_button.isEnabled()
    assert "Select a segment" in host.editor.threshold_apply_button.toolTip()
    qtbot.mouseClick(host.panel.add_button, Qt.MouseButton.LeftButton)
    settle(qtbot, host)
    assert host.panel.names() == ["Segment_1"] and len(host.scene.segmentations) == 1
    seg = next(iter(host.scene.segmentations.values()))
    assert seg.labels.shape == SHAPE and seg.reference_volume_id == next(iter(host.scene.volumes))
    assert host.panel.selected() == (next(iter(host.scene.segmentations)), 1)  # the new one is selected
    assert host.editor.threshold_apply_button.isEnabled()

    qtbot.mouseClick(host.panel.add_button, Qt.MouseButton.LeftButton)
    settle(qtbot, host)
    assert host.panel.names() == ["Segment_1", "Segment_2"]
    assert host.panel.selected()[1] == 2
    assert len(host.history.undo_stack) == 3

    host.history.undo()
    host.history.undo()  # the segmentation and its first segment go in one step
    settle(qtbot, host)
    assert host.panel.count() == 0 and not host.scene.segmentations
    assert host.panel.selected() is None


def test_add_without_an_image_reports_an_error(qtbot):
    host = Host(Scene("empty"))
    qtbot.addWidget(host.widget)
    assert not host.panel.add_segment()
    assert len(host.errors) == 1 and "open an image" in str(host.errors[0][1])


def test_delete_removes_segment_and_voxels_undo_restores(qtbot):
    host = make_host(qtbot)
    seg = host.current_segmentation()[1]
    cube = np.zeros(SHAPE, dtype=bool)
    cube[10:14, 10:14, 10:14] = True
    host.history.execute(apply_mask(seg, seg.label_of("bone"), cube))
    settle(qtbot, host)
    labels_before = seg.labels.copy()
    before = snapshot(host.scene)
    select(qtbot, host, "bone")
    qtbot.mouseClick(host.panel.delete_button, Qt.MouseButton.LeftButton)
    settle(qtbot, host)
    assert host.panel.names() == ["vessels"] and not np.any(seg.labels[cube])
    assert host.panel.selected() is not None  # the next row is selected
    host.history.undo()
    settle(qtbot, host)
    assert snapshot(host.scene) == before and np.array_equal(seg.labels, labels_before)
    assert host.panel.names() == ["bone", "vessels"]
