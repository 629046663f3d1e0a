"""Issue 4's scenario, driven through the real window like a person: open the sample case →
one-click twin → paint a stroke and undo it → measure a distance → place a trajectory →
save → reopen and find everything as it was. Mouse strokes are real Qt mouse events on the
slice views; shortcuts are real key presses.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from surgtwin.core.plan.objects import Ruler, Trajectory
from tests.ui.harness import drag

LONG_MS = 120_000


def _press(qtbot, window, key, modifiers=Qt.KeyboardModifier.ControlModifier) -> None:
    """A shortcut, typed into the active window (window shortcuts need it to be active)."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, key, modifiers)


def _settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.settled, timeout=LONG_MS)
    assert not window.shown_errors, [e.text for e in window.shown_errors]


def _widget_point(view, lps: np.ndarray) -> QPoint:
    return view.to_widget(np.asarray(lps, dtype=float)).toPoint()


def _centre_lps(view) -> np.ndarray:
    rows, cols = view.image.geometry.shape
    return view.image.geometry.pixel_to_lps(rows / 2, cols / 2)


def _labels(window) -> np.ndarray:
    return next(iter(window.scene.segmentations.values())).labels.copy()


def test_open_twin_paint_undo_measure_plan_save_reopen(qtbot, window, sample_dicom, tmp_path, artifacts):
    # Open the sample case and build its twin (Segment → One-click twin, Ctrl+T).
    assert window.open_path(sample_dicom / "dicom")
    _settle(qtbot, window)
    _press(qtbot, window, Qt.Key.Key_T)
    assert window.busy
    _settle(qtbot, window)
    assert {"skin", "bone", "vessels"} <= set(window.segments_panel.names())
    meshes_before = len(window.scene.meshes)
    assert meshes_before >= 3

    # Paint one stroke into "vessels" with the brush in the axial view, then Ctrl+Z.
    seg_id, segmentation = next(iter(window.scene.segmentations.items()))
    vessels = next(label for label, s in segmentation.segments.items() if s.name == "vessels")
    assert window.segments_panel.select((seg_id, vessels))
    window.tool_actions["Paint"].trigger()
    window.brush_radius.setValue(4.0)
    axial = window.slice_views["axial"]
    centre = _centre_lps(axial)
    stroke = [centre + np.array([dx, 30.0, 0.0]) for dx in (-20.0, -10.0, 0.0, 10.0)]
    before = _labels(window)
    undo_depth = len(window.history.undo_stack)
    drag(qtbot, axial.view, [_widget_point(axial, p) for p in stroke])
    _settle(qtbot, window)
    after = _labels(window)
    painted = (after == vessels) & (before != vessels)
    # a 4 mm brush along a 30 mm stroke on one slice: roughly 2·4·30 mm² of pixels
    spacing = window.volume[1].spacing
    painted_mm2 = painted.sum() * spacing[0] * spacing[1]
    assert 120 < painted_mm2 < 400, painted_mm2
    assert len(np.unique(np.nonzero(painted)[0])) == 1  # one axial slice
    assert len(window.history.undo_stack) == undo_depth + 1  # the stroke is one undo step
    _press(qtbot, window, Qt.Key.Key_Z)
    _settle(qtbot, window)
    assert np.array_equal(_labels(window), before)

    # Measure a distance with the ruler (press, drag, release) in the axial view.
    window.tool_actions["Ruler"].trigger()
    start, end = centre + np.array([-25.0, 0.0, 0.0]), centre + np.array([15.0, 30.0, 0.0])
    drag(qtbot, axial.view, [_widget_point(axial, start), _widget_point(axial, (start + end) / 2),
                             _widget_point(axial, end)])  # fmt: skip
    _settle(qtbot, window)
    rulers = [p for p in window.scene.plans.values() if isinstance(p, Ruler)]
    assert len(rulers) == 1
    mm_per_pixel = axial.frame().mm_per_pixel
    assert abs(rulers[0].length_mm - 50.0) < 2 * mm_per_pixel + 0.5

    # Place a trajectory: entry clicked in the axial view, target in the coronal view.
    window.tool_actions["Trajectory"].trigger()
    entry = centre + np.array([60.0, -40.0, 0.0])
    qtbot.mouseClick(axial.view, Qt.MouseButton.LeftButton, pos=_widget_point(axial, entry))
    coronal = window.slice_views["coronal"]
    target = _centre_lps(coronal)
    qtbot.mouseClick(coronal.view, Qt.MouseButton.LeftButton, pos=_widget_point(coronal, target))
    _settle(qtbot, window)
    trajectories = [p for p in window.scene.plans.values() if isinstance(p, Trajectory)]
    assert len(trajectories) == 1
    trajectory = trajectories[0]
    assert np.linalg.norm(np.asarray(trajectory.entry) - entry) < 2 * mm_per_pixel + 0.5
    # The plan panel lists the clearance to the anatomy; reslice the views along the path.
    trajectory_id = next(k for k, p in window.scene.plans.items() if p is trajectory)
    qtbot.waitUntil(lambda: isinstance(window.plan_panel.clearances(trajectory_id), dict), timeout=LONG_MS)
    window.plan_panel.select(trajectory_id)
    window.plan_panel.reslice(trajectory_id)
    assert all(view.plane is not None for view in window.slice_views.values())
    direction = np.asarray(trajectory.target) - np.asarray(trajectory.entry)
    assert abs(abs(window.slice_views["axial"].plane.normal @ direction) - np.linalg.norm(direction)) < 1e-6
    window.screenshot().save(str(artifacts / "scenario_planned.png"))
    window.plan_panel.clear_reslice()
    assert all(view.plane is None for view in window.slice_views.values())

    # Save as a case, then reopen it in the same window and find everything as it was.
    labels_saved = _labels(window)
    plans_saved = {p.name: p.to_dict() for p in window.scene.plans.values()}
    case = tmp_path / "scenario.stwin"
    assert window.save_to(case)
    _settle(qtbot, window)
    assert case.is_file() and window.case_path == case and not window.tracker.dirty
    assert window.open_path(case)
    _settle(qtbot, window)
    assert window.case_path == case
    assert np.array_equal(_labels(window), labels_saved)
    assert {p.name: p.to_dict() for p in window.scene.plans.values()} == plans_saved
    assert len(window.scene.meshes) == meshes_before
    assert {"skin", "bone", "vessels"} <= set(window.segments_panel.names())
    assert window.plan_panel.tree.topLevelItemCount() == 2  # the ruler and the trajectory
    assert window.save_questions == []  # nothing unsaved was at stake when reopening
