"""The flow panel under a real X server: a Y-shaped vessel (trunk and two limbs, a 70 % area
stenosis on the patient's right limb) as a segmentation, the reduced model computed on a worker
thread, its table, pressure plot and 3D centreline overlay; the case itself must never change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from PySide6.QtCore import Qt

from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.ui.flow_panel import COLUMNS, FLOW_COLUMN, STENTED_COLUMN
from tests.ui.harness import ToolHarness, show_widget

SPACING_MM = 0.6
ROOT, FORK = np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 30.0])
RIGHT_END, LEFT_END = np.array([-18.0, 0.0, 62.0]), np.array([18.0, 0.0, 62.0])  # LPS: +x is left
STENOSIS_AT = 0.55  # fraction of the right limb
INFLOW_ML_S = 12.0


def _distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to segment a–b and the foot point's distance from a (mm)."""
    ab = b - a
    t = np.clip(((points - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1), t * np.linalg.norm(ab)


def y_vessel() -> tuple[np.ndarray, np.ndarray]:
    """Labels (k, j, i) of the Y on an axis-aligned grid: 1 trunk (aorta), 2 right limb, 3 left."""
    lo, hi = np.array([-24.0, -6.0, -5.0]), np.array([24.0, 6.0, 67.0])
    shape = np.ceil((hi - lo) / SPACING_MM).astype(int) + 1
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape[::-1]), indexing="ij")
    points = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1) * SPACING_MM + lo
    right_distance, along = _distance(points, FORK, RIGHT_END)
    limb_mm = np.linalg.norm(RIGHT_END - FORK)
    phase = np.clip((along - STENOSIS_AT * limb_mm) / 12.0, -0.5, 0.5)
    narrowing = 1.0 + (np.sqrt(0.3) - 1.0) * 0.5 * (1.0 + np.cos(2 * np.pi * phase))  # 70 % area
    labels = np.zeros(len(points), dtype=np.uint8)
    labels[_distance(points, FORK, LEFT_END)[0] <= 3.2] = 3
    labels[right_distance <= 3.2 * narrowing] = 2
    labels[_distance(points, ROOT, FORK)[0] <= 4.5] = 1
    affine = np.eye(4)
    affine[:3, :3] *= SPACING_MM
    affine[:3, 3] = lo
    return labels.reshape(k.shape), affine


def y_vessel_segments() -> dict[int, Segment]:
    """The segments of :func:`y_vessel`'s labels."""
    return {
        1: Segment("aorta", (0.8, 0.2, 0.2)),
        2: Segment("iliac_right", (0.8, 0.3, 0.2)),
        3: Segment("iliac_left", (0.8, 0.3, 0.3)),
    }


@contextmanager
def flow_panel_shown(
    qtbot, harness: ToolHarness, view_size: tuple[int, int], panel_size: tuple[int, int]
) -> Iterator[tuple[object, object]]:
    """The 3D view and the flow panel over the harness's case, as (view, panel); the session
    and the view closed afterwards."""
    from surgtwin.ui.flow_panel import FlowPanel
    from surgtwin.ui.view3d import View3D

    view = show_widget(qtbot, View3D(), view_size)
    view.set_context(harness)
    view.set_scene(harness.scene)
    panel = show_widget(qtbot, FlowPanel(harness, view), panel_size)
    harness.parent = panel
    yield view, panel
    panel.close_session()
    view.close_view()


@pytest.fixture
def setup(qtbot):
    labels, affine = y_vessel()
    segments = {**y_vessel_segments(), 4: Segment("liver", (0.6, 0.3, 0.2))}
    harness = ToolHarness(Scene("flow"))
    harness.history.execute(AddSegmentation(Segmentation(labels, affine, segments, name="vessels")))
    with flow_panel_shown(qtbot, harness, (400, 360), (520, 760)) as (view, panel):
        yield harness, view, panel


def compute(qtbot, panel, harness) -> None:
    assert panel.compute()
    qtbot.waitUntil(lambda: panel.case is not None or bool(harness.errors), timeout=20_000)
    assert not harness.errors, harness.errors


def table_rows(panel, kind: str) -> list[list[str]]:
    rows = []
    for r in range(panel.table.rowCount()):
        cells = [panel.table.item(r, c).text() if panel.table.item(r, c) else "" for c in range(len(COLUMNS))]
        if cells[0].startswith(kind):
            rows.append(cells)
    return rows


def right_limb_branch(panel) -> int:
    tree = panel.case.tree
    ends = {b: tree.branches[b].points_lps[-1] for b in tree.outlet_branches}
    return min(ends, key=lambda b: np.linalg.norm(ends[b] - RIGHT_END))


def test_vessel_segments_are_checked_by_default(setup) -> None:
    _harness, _view, panel = setup
    assert panel.chosen_segments() == ["aorta", "iliac_left", "iliac_right"]
    assert not panel.stent_button.isEnabled() and not panel.clear_button.isEnabled()


def test_compute_shows_outlets_stenosis_plot_and_overlay_without_touching_the_case(qtbot, setup) -> None:
    harness, view, panel = setup
    undo_depth, labels_before = len(harness.history.undo_stack), harness.scene.segmentations
    labels_copy = {k: v.labels.copy() for k, v in labels_before.items()}
    panel.inflow.setValue(INFLOW_ML_S)
    compute(qtbot, panel, harness)

    outlets = table_rows(panel, "Outlet")
    assert len(outlets) == 2
    flows = [float(row[FLOW_COLUMN]) for row in outlets]
    assert sum(flows) == pytest.approx(INFLOW_ML_S, abs=0.02)
    stenoses = table_rows(panel, "Stenosis")
    assert len(stenoses) == 1
    right = right_limb_branch(panel)
    assert int(stenoses[0][1]) == right
    assert "% area" in stenoses[0][5] and float(stenoses[0][4]) > 0.0
    # the stenosed (right) limb carries less flow than the healthy one
    flow_of = {int(row[1]): float(row[FLOW_COLUMN]) for row in outlets}
    assert flow_of[right] < min(flow_of.values()) + 1e-9 < max(flow_of.values())

    curves = panel.plot.curves
    assert len(curves) == 2
    for curve in curves:
        assert curve.pressure_mmhg[0] > curve.pressure_mmhg[-1]
        assert np.all(np.diff(curve.pressure_mmhg) <= 1e-9), "pressure never rises downstream"
    assert sum(len(c.markers_mm) for c in curves) == 1
    image = panel.plot.grab().toImage()
    red = image.pixelColor(*_marker_pixel(panel.plot, curves))
    assert red.red() > 150 and red.green() < 100, "the stenosis marker is drawn"

    renderer = view.scene_renderer.renderer
    actor = panel.centreline_actor
    assert actor is not None and renderer.HasViewProp(actor)
    shown = actor.GetMapper().GetInput()
    assert shown.GetNumberOfLines() == len(panel.case.tree.branches)
    scalars = shown.GetPointData().GetScalars()
    assert scalars.GetRange()[1] > scalars.GetRange()[0]

    panel.clear_button.click()
    assert not renderer.HasViewProp(actor) and panel.centreline_actor is None
    assert panel.table.rowCount() == 0 and panel.plot.curves == []
    assert len(harness.history.undo_stack) == undo_depth
    for seg_id, labels in labels_copy.items():
        assert np.array_equal(harness.scene.segmentations[seg_id].labels, labels)


def _marker_pixel(plot, curves) -> tuple[int, int]:
    curve = next(c for c in curves if c.markers_mm)
    at = plot.to_widget(curve.markers_mm[0], curve.pressure_at(curve.markers_mm[0]))
    ratio = plot.devicePixelRatioF()
    return int(at.x() * ratio), int((at.y() - 7) * ratio)


def test_stent_all_raises_the_stenosed_limbs_flow(qtbot, setup) -> None:
    harness, _view, panel = setup
    panel.inflow.setValue(INFLOW_ML_S)
    compute(qtbot, panel, harness)
    assert panel.stent_button.isEnabled()
    panel.stent_button.click()
    right = right_limb_branch(panel)
    before = {int(r[1]): float(r[FLOW_COLUMN]) for r in table_rows(panel, "Outlet")}
    after = {int(r[1]): float(r[STENTED_COLUMN]) for r in table_rows(panel, "Outlet")}
    assert after[right] > before[right]
    assert sum(after.values()) == pytest.approx(INFLOW_ML_S, abs=0.02)


def test_default_inflow_follows_the_inlet_velocity_rule(qtbot, setup) -> None:
    harness, _view, panel = setup
    compute(qtbot, panel, harness)
    inlet_radius_m = float(panel.case.tree.branches[0].radius_mm[:5].mean()) * 1e-3
    expected_ml_s = 0.2 * np.pi * inlet_radius_m**2 * 1e6
    assert panel.case.inflow_ml_s == pytest.approx(expected_ml_s)
    assert 9.0 < expected_ml_s < 16.0  # r ≈ 4.5 mm at 0.2 m/s


def test_a_new_case_removes_the_overlay_and_lists_its_segments(qtbot, setup) -> None:
    harness, view, panel = setup
    compute(qtbot, panel, harness)
    actor, renderer = panel.centreline_actor, view.scene_renderer.renderer
    other = Scene("other")
    harness.scene = other
    view.set_scene(other)
    panel.set_scene(other)
    assert not renderer.HasViewProp(actor) and panel.case is None
    assert panel.segment_list.count() == 0 and not panel.compute_button.isEnabled()


def test_bad_choices_are_reported_and_nothing_runs(qtbot, setup) -> None:
    harness, _view, panel = setup
    panel.inlet_edit.setText("1, 2")
    assert not panel.compute()
    panel.inlet_edit.setText("")
    panel.set_segments([])
    assert not panel.compute()
    assert [action for action, _ in harness.errors] == ["Blood flow", "Blood flow"]
    assert panel.case is None and not harness.tasks
    item = panel.segment_list.item(0)
    item.setCheckState(Qt.CheckState.Checked)
    assert panel.chosen_segments() == [item.text()]


def test_the_cardiac_cycle_box_solves_the_computed_case_over_a_heartbeat(qtbot, setup, artifacts) -> None:
    """After Compute, Solve cycle runs the pulsatile reduced model on a worker: the inlet's
    systolic/diastolic pressure straddle the steady one, the stenosis peaks above its mean drop,
    and the plot has the inlet and both outlets over one cycle. Clear forgets it."""
    harness, _view, panel = setup
    box = panel.cycle_box
    assert not box.solve_button.isEnabled() and not box.solve()
    panel.inflow.setValue(INFLOW_ML_S)
    compute(qtbot, panel, harness)
    assert box.solve_button.isEnabled()
    panel.plot_tabs.setCurrentWidget(box)
    box.heart_rate.setValue(60)
    box.solve_button.click()
    qtbot.waitUntil(lambda: box.summary is not None or bool(harness.errors), timeout=20_000)
    assert not harness.errors, harness.errors
    summary = box.summary
    inlet = summary["inlet_pressure_mmhg"]
    steady_mmhg = panel.case.result.inlet_pressure_pa / 133.322387415
    assert inlet["diastolic"] < steady_mmhg < inlet["systolic"] and summary["heart_rate_bpm"] == 60
    (stenosis,) = summary["stenoses"]
    assert stenosis["pressure_drop_mmhg"]["peak"] > stenosis["pressure_drop_mmhg"]["mean"] > 0
    assert "/" in box.readings.text() and "at peak" in box.readings.text()
    curves = box.plot.curves
    assert [c.label.split()[0] for c in curves] == ["inlet", "outlet", "outlet"]
    assert curves[0].distance_mm[-1] == pytest.approx(1000.0)  # one cycle at 60 beats/min, in ms
    assert max(curves[0].pressure_mmhg) == pytest.approx(inlet["systolic"])
    assert box.grab().save(str(artifacts / "cardiac_cycle_box.png"))
    panel.clear_button.click()
    assert box.summary is None and box.plot.curves == [] and not box.solve_button.isEnabled()
