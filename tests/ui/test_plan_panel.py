"""The Plan panel: measurements of the case's planning objects, edits through commands,
split by a cut plane, and the reslice planes along a trajectory."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from surgtwin.core.plan import CutPlane, Ruler, Trajectory
from surgtwin.core.plan.commands import AddPlanObject
from surgtwin.ui.plan_panel import PlanPanel, reslice_planes
from surgtwin.ui.plan_tools import AngleTool, CutPlaneTool, RulerTool, TrajectoryTool
from tests.ui.harness import ToolHarness
from tests.ui.test_plan_tools import ORIGIN, SPHERES, at, centre_lps, make_case


@pytest.fixture
def parent(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def case(parent):
    scene, history = make_case()
    return ToolHarness(scene, history, parent=parent)


@pytest.fixture
def panel(case, qtbot):
    widget = PlanPanel(case)
    qtbot.addWidget(widget)
    widget.resize(420, 500)
    widget.show()
    return widget


def rows(panel: PlanPanel) -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (measurement, {child name: child text})"""
    out = {}
    for i in range(panel.tree.topLevelItemCount()):
        item = panel.tree.topLevelItem(i)
        children = {item.child(n).text(0): item.child(n).text(1) for n in range(item.childCount())}
        out[item.text(0)] = (item.text(1), children)
    return out


def number(text: str) -> float:
    return float(re.search(r"-?\d+(\.\d+)?", text).group())


def segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from a point to the segment a-b (independent of the core's code)."""
    d = b - a
    t = float(np.clip((point - a) @ d / (d @ d), 0.0, 1.0))
    return float(np.linalg.norm(point - (a + t * d)))


def test_tool_buttons_hand_out_new_tools(case, qtbot):
    given = []
    panel = PlanPanel(case, on_tool=given.append)
    qtbot.addWidget(panel)
    expected = {
        "Ruler": RulerTool,
        "Angle": AngleTool,
        "Trajectory": TrajectoryTool,
        "Cut plane": CutPlaneTool,
    }
    for label, cls in expected.items():
        with qtbot.waitSignal(panel.tool_requested) as signal:
            qtbot.mouseClick(panel.tool_buttons[label], Qt.MouseButton.LeftButton)
        assert type(signal.args[0]) is cls
        assert signal.args[0].context is case
    assert [type(t) for t in given] == list(expected.values())


def test_list_shows_measurements_and_edits_are_undoable(case, panel, qtbot):
    tool = RulerTool(case)
    tool.press(at(ORIGIN + [0, 0, 5]))
    tool.release(at(ORIGIN + [30, 40, 5]))  # 50 mm
    angle = AngleTool(case)
    for p in ([10, 0, 5], [0, 0, 5], [0, 10, 5]):
        angle.press(at(ORIGIN + p))
    qtbot.waitUntil(lambda: len(rows(panel)) == 2)
    shown = rows(panel)
    assert shown["Ruler 1"][0] == "50.0 mm"
    assert shown["Angle 1"][0] == "90.0°"
    # Rename by editing the row: one EditPlanObject; undo restores the name.
    ruler_id = next(i for i, p in case.scene.plans.items() if isinstance(p, Ruler))
    panel.item_of(ruler_id).setText(0, "Tumour width")
    assert case.scene.get(ruler_id).name == "Tumour width"
    qtbot.waitUntil(lambda: "Tumour width" in rows(panel))
    case.history.undo()
    qtbot.waitUntil(lambda: "Ruler 1" in rows(panel))
    # Hide with the checkbox (undoable), then delete; undo puts it back.
    panel.item_of(ruler_id).setCheckState(0, Qt.CheckState.Unchecked)
    assert case.scene.get(ruler_id).visible is False
    qtbot.waitUntil(lambda: panel.item_of(ruler_id).checkState(0) == Qt.CheckState.Unchecked)
    panel.select(ruler_id)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert ruler_id not in case.scene
    qtbot.waitUntil(lambda: set(rows(panel)) == {"Angle 1"})
    case.history.undo()
    assert ruler_id in case.scene
    qtbot.waitUntil(lambda: "Ruler 1" in rows(panel))
    assert not case.errors


def test_trajectory_clearances_to_each_sphere(case, panel, qtbot):
    # Beside sphere A (10 mm from its centre), ending short of sphere B.
    entry, target = ORIGIN + [2.0, 34.0, 24.0], ORIGIN + [26.0, 34.0, 24.0]
    tool = TrajectoryTool(case)
    tool.press(at(entry))
    tool.press(at(target, [0, 1, 0], "coronal"))
    # Through sphere B.
    tool.press(at(ORIGIN + [34.0, 10.0, 24.0]))
    tool.press(at(ORIGIN + [34.0, 40.0, 24.0]))
    qtbot.waitUntil(lambda: {"Trajectory 1", "Trajectory 2"} <= set(rows(panel)))
    shown = rows(panel)
    length, clearances = shown["Trajectory 1"]
    assert number(length) == pytest.approx(24.0, abs=0.05)
    assert list(clearances) == ["sphere_a", "sphere_b"]  # nearest first
    for name, (centre, radius) in SPHERES.items():
        expected = segment_distance(ORIGIN + centre, entry, target) - radius
        assert number(clearances[name]) == pytest.approx(expected, abs=1.0), name
    assert "CROSSES" not in " ".join(clearances.values())
    _, through = shown["Trajectory 2"]
    assert list(through) == ["sphere_b", "sphere_a"]
    assert through["sphere_b"].startswith("CROSSES")
    # It enters B where the path meets the sphere: 14 mm from the entry less the radius.
    assert number(through["sphere_b"].split("at")[1]) == pytest.approx(14.0 - 5.0, abs=1.0)
    expected_a = segment_distance(centre_lps("sphere_a"), ORIGIN + [34, 10, 24], ORIGIN + [34, 40, 24]) - 7
    assert number(through["sphere_a"]) == pytest.approx(expected_a, abs=1.0)
    assert not case.errors


def test_big_segmentations_are_measured_in_the_background(case, qtbot):
    panel = PlanPanel(case, background_voxels=0)  # every label map counts as big
    qtbot.addWidget(panel)
    case.execute(AddPlanObject(Trajectory(entry=ORIGIN + [2, 34, 24], target=ORIGIN + [26, 34, 24])))
    qtbot.waitUntil(lambda: "Trajectory" in rows(panel))
    assert len(case.tasks) == 1  # through run_task, not on the GUI thread
    qtbot.waitUntil(lambda: "sphere_a" in rows(panel)["Trajectory"][1], timeout=5000)
    assert number(rows(panel)["Trajectory"][1]["sphere_a"]) == pytest.approx(3.0, abs=1.0)
    panel.refresh()
    assert len(case.tasks) == 1  # cached: not measured again


def make_cut(case, panel, qtbot) -> str:
    """A cut plane drawn across the middle of sphere A with the cut-plane tool."""
    case.selected = ("seg-1", 1)
    tool = CutPlaneTool(case)
    c = centre_lps("sphere_a")
    tool.press(at(c + [-12.0, -5.0, 0.0]))
    tool.release(at(c + [12.0, 5.0, 0.0]))
    plane_id = next(iter(case.scene.plans))
    qtbot.waitUntil(lambda: panel.item_of(plane_id) is not None)
    return plane_id


def test_cut_plane_through_the_middle_halves_the_sphere(case, panel, qtbot):
    make_cut(case, panel, qtbot)
    summary, sides = rows(panel)["Cut plane 1"]
    assert summary.startswith("sphere_a")
    seg = case.scene.get("seg-1")
    sphere_ml = seg.volume_ml(1)
    assert sphere_ml == pytest.approx(4 / 3 * np.pi * 7.0**3 / 1000, rel=0.05)
    positive, negative = number(sides["normal side"]), number(sides["other side"])
    assert positive + negative == pytest.approx(sphere_ml, abs=0.01)
    assert positive == pytest.approx(negative, rel=0.05)
    assert number(sides["total"]) == pytest.approx(sphere_ml, abs=0.01)


def test_split_makes_two_segments_and_one_undo_restores(case, panel, qtbot):
    plane_id = make_cut(case, panel, qtbot)
    seg = case.scene.get("seg-1")
    labels_before, count_before = seg.labels.copy(), seg.voxel_count(1)
    panel.select(plane_id)
    assert panel.split_button.isEnabled()
    steps = len(case.history.undo_stack)
    qtbot.mouseClick(panel.split_button, Qt.MouseButton.LeftButton)
    assert not case.errors
    assert [s.name for s in seg.segments.values()] == ["sphere_a", "sphere_b", "sphere_a (cut)"]
    new_label = seg.label_of("sphere_a (cut)")
    assert seg.voxel_count(1) + seg.voxel_count(new_label) == count_before
    assert seg.voxel_count(new_label) == pytest.approx(count_before / 2, rel=0.1)
    assert f"{seg.volume_ml(1):.1f} mL" in case.statuses[-1]
    assert f"{seg.volume_ml(new_label):.1f} mL" in case.statuses[-1]
    assert len(case.history.undo_stack) == steps + 1
    # The cached volumes are stale after the edit: the normal side is now (nearly) empty.
    qtbot.waitUntil(lambda: number(rows(panel)["Cut plane 1"][1]["normal side"]) < 0.2 * count_before / 1000)
    case.history.undo()
    assert list(seg.segments) == [1, 2]
    np.testing.assert_array_equal(seg.labels, labels_before)


def test_a_cut_plane_without_a_segment_is_bound_with_use_selected_segment(case, panel, qtbot):
    case.execute(AddPlanObject(CutPlane(point=centre_lps("sphere_b"), normal=(0.0, 1.0, 0.0)), "plan-cut"))
    qtbot.waitUntil(lambda: panel.item_of("plan-cut") is not None)
    assert "no segment" in rows(panel)["Cut plane"][0]
    panel.select("plan-cut")
    assert panel.split_selected() is False  # nothing to split: an error report, nothing changed
    assert case.errors and "not applied to a segment" in str(case.errors[-1][1])
    assert len(case.scene.get("seg-1").segments) == 2
    case.selected = ("seg-1", 2)
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert case.scene.get("plan-cut").segment_label == 2
    qtbot.waitUntil(lambda: rows(panel)["Cut plane"][0].startswith("sphere_b"))


def test_reslice_planes_contain_or_face_the_path_at_the_slider_distance(case, panel, qtbot):
    entry, target = ORIGIN + [4.0, 8.0, 10.0], ORIGIN + [30.0, 26.0, 40.0]
    case.execute(AddPlanObject(Trajectory(entry=entry, target=target), "plan-path"))
    qtbot.waitUntil(lambda: panel.item_of("plan-path") is not None)
    panel.select("plan-path")
    path = Trajectory(entry=entry, target=target)
    with qtbot.waitSignal(panel.reslice_requested) as signal:
        qtbot.mouseClick(panel.reslice_button, Qt.MouseButton.LeftButton)

    def check(planes, distance):
        assert len(planes) == 3
        axis = path.direction
        for origin, column, row, title in planes:
            np.testing.assert_allclose(origin, path.point_at(distance), atol=0.06)
            assert np.linalg.norm(column) == pytest.approx(1.0)
            assert np.linalg.norm(row) == pytest.approx(1.0)
            assert float(column @ row) == pytest.approx(0.0, abs=1e-12)
            assert isinstance(title, str) and title
        (_, c0, r0, _), *containing = planes
        normal = np.cross(c0, r0)
        assert abs(float(normal @ axis)) == pytest.approx(1.0)  # the probe's eye faces along the path
        normals = []
        for origin, column, row, _ in containing:
            normal = np.cross(column, row)
            normals.append(normal)
            for p in (entry, target):  # the path lies in both planes
                assert float((p - origin) @ normal) == pytest.approx(0.0, abs=1e-9)
        assert float(normals[0] @ normals[1]) == pytest.approx(0.0, abs=1e-12)

    check(signal.args[0], path.length_mm)  # starts at the target
    assert panel.back_button.isEnabled()
    with qtbot.waitSignal(panel.reslice_requested) as signal:
        panel.slider.setValue(panel.slider.value() // 4)
    check(signal.args[0], panel.reslice_distance_mm)
    assert panel.reslice_distance_mm == pytest.approx(path.length_mm / 4, abs=0.1)
    with qtbot.waitSignal(panel.reslice_cleared):
        qtbot.mouseClick(panel.back_button, Qt.MouseButton.LeftButton)
    assert panel.resliced_id is None
    # Removing the resliced trajectory returns the views to normal as well.
    panel.reslice("plan-path", 5.0)
    case.history.undo()
    with qtbot.waitSignal(panel.reslice_cleared):
        pass
    assert panel.resliced_id is None


def test_reslice_planes_are_right_for_a_path_along_x():
    path = Trajectory(entry=(0.0, 0.0, 0.0), target=(50.0, 0.0, 0.0))
    planes = reslice_planes(path, 20.0)
    np.testing.assert_allclose(planes[0][0], (20.0, 0.0, 0.0))
    facing = np.cross(planes[0][1], planes[0][2])
    np.testing.assert_allclose(np.abs(facing), (1.0, 0.0, 0.0), atol=1e-12)
    for _, column, row, _ in planes[1:]:
        assert abs(float(np.cross(column, row) @ (1.0, 0.0, 0.0))) == pytest.approx(0.0, abs=1e-12)


def test_while_the_window_is_busy_measuring_waits_then_happens(case, qtbot):
    case.busy_elsewhere = True  # e.g. a one-click twin is running
    panel = PlanPanel(case, background_voxels=0)
    qtbot.addWidget(panel)
    case.execute(AddPlanObject(Trajectory(entry=ORIGIN + [2, 34, 24], target=ORIGIN + [26, 34, 24])))
    qtbot.waitUntil(lambda: "Trajectory" in rows(panel))
    assert rows(panel)["Trajectory"][1]["clearances"].startswith("waiting")
    assert case.tasks == []
    case.busy_elsewhere = False
    qtbot.waitUntil(lambda: "sphere_a" in rows(panel)["Trajectory"][1], timeout=5000)
    assert len(case.tasks) == 1
