"""The segment editor on a synthetic CT with a known structure: each operation is one undo
step computed off the GUI thread, and its result is checked against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from surgtwin.core.segmentation.presets import CT_PRESETS
from surgtwin.core.segmentation.tools import apply_mask
from surgtwin.ui.segment_editor import ISLANDS, MARGIN, SMOOTHING, THRESHOLD
from tests.ui.test_segments_panel import (
    BONE_CENTRE,
    BONE_RADIUS,
    CAVITY_RADIUS,
    ISLAND,
    VESSEL_CENTRE,
    VESSEL_RADIUS,
    Host,
    _ball,
    make_host,
    select,
    settle,
)


def _segmentation(host: Host):
    return host.current_segmentation()[1]


def _mask(host: Host, name: str) -> np.ndarray:
    seg = _segmentation(host)
    return seg.labels == seg.label_of(name)


def _click(qtbot, button) -> None:
    assert button.isEnabled(), button.toolTip()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _run(qtbot, host: Host, button) -> None:
    """Click an operation's button: it runs as a background task, then one command."""
    steps, errors = len(host.history.undo_stack), len(host.errors)
    _click(qtbot, button)
    assert host.busy  # computed off the GUI thread
    settle(qtbot, host)
    assert len(host.errors) == errors, host.errors
    assert len(host.history.undo_stack) == steps + 1


def _threshold(qtbot, host: Host, lower: float, upper: float) -> None:
    editor = host.editor
    editor.sections.setCurrentIndex(THRESHOLD)
    editor.lower_spin.setValue(lower)
    editor.upper_spin.setValue(upper)
    _run(qtbot, host, editor.threshold_apply_button)


def _bone_host(qtbot) -> Host:
    """A host whose "bone" segment is selected and thresholded from the CT (600 to 800 HU)."""
    host = make_host(qtbot)
    select(qtbot, host, "bone")
    _threshold(qtbot, host, 600.0, 800.0)
    return host


def _equivalent_radius(mask: np.ndarray) -> float:
    return (3 * np.count_nonzero(mask) / (4 * math.pi)) ** (1 / 3)  # 1 mm voxels


def test_threshold_preview_follows_the_range_and_apply_gives_exactly_the_range(qtbot):
    host = make_host(qtbot)
    editor = host.editor
    select(qtbot, host, "vessels")
    editor.sections.setCurrentIndex(ISLANDS)
    editor.sections.setCurrentIndex(THRESHOLD)  # opening the section starts the preview
    preview = host.previews[-1]
    assert preview is not None and preview.value_range == editor.threshold_range()
    assert preview.color == pytest.approx(_segmentation(host).segments[2].color)

    editor.preset_combo.setCurrentIndex(editor.preset_combo.findData("contrast_vessels"))
    preset = CT_PRESETS["contrast_vessels"]
    assert host.previews[-1].value_range == (preset.lower_hu, preset.upper_hu)
    editor.upper_spin.setValue(650.0)  # a custom range: the preset shows "Custom"
    assert host.previews[-1].value_range == (preset.lower_hu, 650.0)
    assert editor.preset_combo.currentData() is None
    assert host.scene.segmentations and not _segmentation(host).labels.any()  # nothing applied yet

    _run(qtbot, host, editor.threshold_apply_button)
    assert host.previews[-1] is None and not editor.previewing
    voxels = host.current_volume()[1].voxels
    expected = (voxels >= preset.lower_hu) & (voxels <= 650.0)  # the vessel ball, not the bone
    assert expected.any() and np.array_equal(_mask(host, "vessels"), expected)
    assert np.array_equal(expected, _ball(VESSEL_CENTRE, VESSEL_RADIUS))

    host.history.undo()
    settle(qtbot, host)
    assert not _segmentation(host).labels.any()


def test_preview_is_cleared_by_cancel_and_by_a_new_selection(qtbot):
    host = make_host(qtbot)
    editor = host.editor
    select(qtbot, host, "bone")
    editor.lower_spin.setValue(500.0)
    assert host.previews[-1] is not None and editor.previewing
    _click(qtbot, editor.threshold_cancel_button)
    assert host.previews[-1] is None and not editor.previewing
    editor.lower_spin.setValue(400.0)
    assert host.previews[-1].value_range == (400.0, editor.upper_spin.value())
    select(qtbot, host, "vessels")
    assert host.previews[-1] is None and not editor.previewing
    assert not host.history.undo_stack[-1].kind.startswith("edit")  # the preview changed nothing


def test_keep_largest_remove_small_and_split_islands(qtbot):
    host = _bone_host(qtbot)
    editor = host.editor
    bone = _mask(host, "bone")
    assert bone[ISLAND].all()
    shell = bone.copy()
    shell[ISLAND] = False

    editor.sections.setCurrentIndex(ISLANDS)
    _run(qtbot, host, editor.keep_largest_button)
    assert np.array_equal(_mask(host, "bone"), shell)  # only the fragment went
    host.history.undo()
    settle(qtbot, host)
    assert np.array_equal(_mask(host, "bone"), bone)

    editor.island_size_spin.setValue(20.0)  # the fragment is 8 mm³
    _run(qtbot, host, editor.remove_small_button)
    assert np.array_equal(_mask(host, "bone"), shell)
    host.history.undo()
    settle(qtbot, host)

    editor.island_size_spin.setValue(1.0)
    _run(qtbot, host, editor.split_button)
    assert host.panel.names() == ["bone", "vessels", "bone_2"]
    assert np.array_equal(_mask(host, "bone"), shell)
    fragment = _mask(host, "bone_2")
    assert np.count_nonzero(fragment) == 8 and fragment[ISLAND].all()
    host.history.undo()  # the new segment and the label edit go in one step
    settle(qtbot, host)
    assert host.panel.names() == ["bone", "vessels"] and np.array_equal(_mask(host, "bone"), bone)


def test_margin_grows_and_shrinks_the_radius_by_the_distance(qtbot):
    host = make_host(qtbot)
    editor = host.editor
    select(qtbot, host, "vessels")
    _threshold(qtbot, host, 250.0, 350.0)
    before = _equivalent_radius(_mask(host, "vessels"))
    assert before == pytest.approx(VESSEL_RADIUS, abs=0.3)

    editor.sections.setCurrentIndex(MARGIN)
    editor.margin_spin.setValue(2.0)
    _run(qtbot, host, editor.margin_button)
    assert _equivalent_radius(_mask(host, "vessels")) - before == pytest.approx(2.0, abs=0.3)
    host.history.undo()
    settle(qtbot, host)

    editor.margin_combo.setCurrentIndex(editor.margin_combo.findData("shrink"))
    editor.margin_spin.setValue(3.0)
    _run(qtbot, host, editor.margin_button)
    assert before - _equivalent_radius(_mask(host, "vessels")) == pytest.approx(3.0, abs=0.3)


def test_grow_leaves_other_segments_alone_unless_overwrite_is_ticked(qtbot):
    host = _bone_host(qtbot)
    editor = host.editor
    select(qtbot, host, "vessels")
    _threshold(qtbot, host, 250.0, 350.0)
    bone = _mask(host, "bone")
    editor.sections.setCurrentIndex(MARGIN)
    editor.margin_spin.setValue(8.0)  # the balls' surfaces are 6.5 mm apart
    _run(qtbot, host, editor.margin_button)
    assert (
        np.array_equal(_mask(host, "bone"), bone) and (_mask(host, "vessels") & _ball(BONE_CENTRE, 11)).any()
    )
    host.history.undo()
    settle(qtbot, host)

    editor.overwrite_check.setChecked(True)
    _run(qtbot, host, editor.margin_button)
    taken = bone & ~_mask(host, "bone")
    assert taken.any() and _mask(host, "vessels")[taken].all()


def test_fill_holes_fills_the_cavity_exactly(qtbot):
    host = _bone_host(qtbot)
    editor = host.editor
    bone = _mask(host, "bone")
    cavity = _ball(BONE_CENTRE, CAVITY_RADIUS)
    assert not bone[cavity].any()
    editor.sections.setCurrentIndex(4)
    _run(qtbot, host, editor.fill_button)
    assert np.array_equal(_mask(host, "bone"), bone | cavity)


def test_smoothing_rounds_corners_and_median_drops_a_stray_voxel(qtbot):
    host = make_host(qtbot)
    editor = host.editor
    select(qtbot, host, "vessels")
    seg = _segmentation(host)
    label = seg.label_of("vessels")
    start = np.zeros(seg.labels.shape, dtype=bool)
    start[10:22, 10:22, 10:22] = True  # a cube
    start[30, 45, 45] = True  # and a stray voxel
    host.history.execute(apply_mask(seg, label, start))
    settle(qtbot, host)

    editor.sections.setCurrentIndex(SMOOTHING)
    editor.smooth_size_spin.setValue(1.0)
    _run(qtbot, host, editor.smooth_button)  # Gaussian
    smoothed = _mask(host, "vessels")
    assert not smoothed[10, 10, 10] and smoothed[16, 16, 16]  # a corner rounded off, the core kept
    assert not smoothed[30, 45, 45]
    assert np.count_nonzero(smoothed) == pytest.approx(12**3, rel=0.15)
    host.history.undo()
    settle(qtbot, host)

    editor.smooth_method_combo.setCurrentIndex(editor.smooth_method_combo.findData("median"))
    _run(qtbot, host, editor.smooth_button)
    median = _mask(host, "vessels")
    assert not median[30, 45, 45] and median[16, 16, 16] and not median[10, 10, 10]


def test_failing_operations_report_an_error_and_change_nothing(qtbot):
    host = _bone_host(qtbot)
    editor = host.editor
    labels = _segmentation(host).labels.copy()
    steps = len(host.history.undo_stack)

    editor.lower_spin.setValue(900.0)  # above the upper bound
    _click(qtbot, editor.threshold_apply_button)
    settle(qtbot, host)
    assert len(host.errors) == 1 and "above the upper" in str(host.errors[0][1])

    editor.sections.setCurrentIndex(SMOOTHING)
    editor.smooth_method_combo.setCurrentIndex(editor.smooth_method_combo.findData("median"))
    editor.smooth_size_spin.setValue(0.2)  # below half a voxel
    _click(qtbot, editor.smooth_button)
    settle(qtbot, host)
    assert len(host.errors) == 2 and "below half a voxel" in str(host.errors[1][1])

    assert np.array_equal(_segmentation(host).labels, labels)
    assert len(host.history.undo_stack) == steps
    assert editor.isEnabled()  # still usable: a good operation works afterwards
    editor.sections.setCurrentIndex(ISLANDS)
    _run(qtbot, host, editor.keep_largest_button)


def test_threshold_inside_another_segment_only_changes_that_region(qtbot):
    host = _bone_host(qtbot)
    editor = host.editor
    host.editor.fill_holes()
    settle(qtbot, host)
    select(qtbot, host, "vessels")
    editor.within_combo.setCurrentIndex(editor.within_combo.findData(1))
    assert host.previews[-1].mask is not None and np.array_equal(host.previews[-1].mask, _mask(host, "bone"))
    _threshold(qtbot, host, 0.0, 100.0)  # soft tissue: only the bone's filled cavity qualifies
    assert np.array_equal(_mask(host, "vessels"), _ball(BONE_CENTRE, CAVITY_RADIUS))
    assert not (_mask(host, "bone") & _ball(BONE_CENTRE, CAVITY_RADIUS)).any()
    assert np.count_nonzero(_mask(host, "bone")) > 4 / 3 * math.pi * (BONE_RADIUS - 1) ** 3 * 0.8
