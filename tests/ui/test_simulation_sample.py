"""Issue 5 on the sample case in the real window: the ground-truth case (liver, spine as
"bone"), the liver grasped at its front edge and dragged forward with the bone holding it;
the view deforms live, the tool force pulls back, and the case itself is untouched."""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy

from surgtwin.core.segmentation.commands import SetSegmentProperties
from tests.cli_run import build_truth_case

LONG_MS = 120_000
FRONT_OF_LIVER = np.array([19.0, -89.0, -36.0])  # its most anterior voxel (LPS mm)


@pytest.fixture(scope="module")
def truth_case(tmp_path_factory: pytest.TempPathFactory):
    case = tmp_path_factory.mktemp("sim-app") / "truth.stwin"
    return build_truth_case(case)


def test_liver_dragged_forward_with_the_spine_fixed_in_the_app(qtbot, window, truth_case, artifacts):
    assert window.open_path(truth_case)
    qtbot.waitUntil(lambda: window.settled, timeout=LONG_MS)
    assert not window.shown_errors
    # Hide what covers the liver in 3D, as a user would (these are ordinary undoable edits).
    seg_id, segmentation = next(iter(window.scene.segmentations.items()))
    for name in ("skin", "fat", "muscle"):
        assert window.execute(SetSegmentProperties(seg_id, segmentation.label_of(name), visible=False))
    panel = window.simulation_panel
    panel.segment_combo.setCurrentText("liver")
    assert panel.anchors() == ["bone"]  # the spine is ticked as the anchor by default
    panel.budget_combo.setCurrentIndex(panel.budget_combo.findData(1000))
    liver_id = next(mid for mid, m in window.scene.meshes.items() if m.name == "liver")
    case_vertices = window.scene.get(liver_id).vertices.copy()
    undo_depth, state = len(window.history.undo_stack), window.tracker.state()
    with qtbot.waitSignal(panel.session.started, timeout=LONG_MS):
        assert panel.start()
    session = panel.session
    assert session.built.fixed.any()

    assert session.grasp(FRONT_OF_LIVER)
    session.drag(FRONT_OF_LIVER + np.array([0.0, -12.0, 0.0]))  # 12 mm anterior
    qtbot.waitUntil(
        lambda: session.last_frame is not None and session.last_frame.max_displacement_mm > 5.0,
        timeout=LONG_MS,
    )
    qtbot.wait(1500)
    frame = session.last_frame
    assert np.isfinite(frame.points_mm).all()
    assert frame.tool_force_n[1] > 0.005  # the liver pulls the tool back, posterior (+y)
    moved = frame.points_mm - case_vertices
    near = np.linalg.norm(case_vertices - FRONT_OF_LIVER, axis=1) < 15.0
    assert moved[near, 1].mean() < -3.0  # the grasped edge comes forward
    shown = vtk_to_numpy(
        window.view_3d.scene_renderer.actor(liver_id).GetMapper().GetInput().GetPoints().GetData()
    )
    assert np.allclose(shown, frame.points_mm, atol=1e-3)  # what the 3D view draws
    window.screenshot().save(str(artifacts / "simulation_liver_drag.png"))
    session.release()

    panel.reset()
    assert np.array_equal(window.scene.get(liver_id).vertices, case_vertices)  # a preview, not an edit
    assert len(window.history.undo_stack) == undo_depth
    assert window.tracker.state() is state  # nothing recorded by the session
