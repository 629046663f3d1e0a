"""The Flow dock's 3D preview under a real X server: the Y-shaped vessel of test_flow_panel (a 70 %
area stenosis on the right limb) with its surface meshes in the case, the reduced model computed,
then the lattice-Boltzmann run on a worker thread (1 mm cells, 2000 steps: seconds); its table
rows, its dashed pressure curves, the vessel surfaces coloured by WSS / pressure / speed and the
streamlines in the 3D view. Errors and cancel reach the error path; nothing edits the case."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QPushButton

from surgtwin.core.commands import AddMesh
from surgtwin.core.errors import CancelledError
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.reduced import PA_PER_MMHG
from surgtwin.core.mesh.extract import extract_meshes
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.render.snapshot import write_png
from surgtwin.ui.flow_panel import DROP_COLUMN, FLOW_COLUMN
from tests.ui.harness import ToolHarness
from tests.ui.test_flow_panel import INFLOW_ML_S, flow_panel_shown, table_rows, y_vessel, y_vessel_segments

CELL_MM = 1.0
STEPS = 2000  # the end of the inflow's start-up ramp: the full inflow, a field far from steady
VESSELS = ("aorta", "iliac_left", "iliac_right")
WAIT_MS = 120_000


@pytest.fixture
def setup(qtbot):
    labels, affine = y_vessel()
    segmentation = Segmentation(labels, affine, y_vessel_segments(), name="vessels")
    harness = ToolHarness(Scene("flow3d"))
    harness.history.execute(AddSegmentation(segmentation, "seg-1"))
    for mesh in extract_meshes(segmentation).values():
        mesh.segmentation_id = "seg-1"
        harness.history.execute(AddMesh(mesh))
    with flow_panel_shown(qtbot, harness, (480, 420), (560, 900)) as (view, panel):
        panel.inflow.setValue(INFLOW_ML_S)
        assert panel.compute()
        qtbot.waitUntil(lambda: panel.case is not None or bool(harness.errors), timeout=WAIT_MS)
        assert not harness.errors, harness.errors
        yield harness, view, panel


def run_3d(qtbot, panel, harness, cell_mm=CELL_MM, steps=STEPS, max_cells=250_000) -> None:
    panel.cell_mm.setValue(cell_mm)
    panel.max_steps.setValue(steps)
    panel.max_cells.setValue(max_cells)
    errors = len(harness.errors)
    assert panel.run_3d()
    assert not panel.run3d_button.isEnabled(), "one run at a time"
    qtbot.waitUntil(lambda: not panel.running_3d, timeout=WAIT_MS)
    if len(harness.errors) == errors:
        assert panel.flow3d is not None


def vessel_mesh_ids(harness) -> list[str]:
    return [mid for mid, mesh in harness.scene.meshes.items() if mesh.name in VESSELS]


def colours(rgb: np.ndarray) -> tuple[int, int, int]:
    """Pixels of the image that are clearly blue, clearly red, and not background."""
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    background = (np.abs(r - 20) < 8) & (np.abs(g - 23) < 8) & (np.abs(b - 28) < 8)
    return (
        int(((b > r + 60) & (b > g)).sum()),
        int(((r > b + 60) & (r > g + 30)).sum()),
        int((~background).sum()),
    )


def test_3d_run_fills_the_table_plot_and_view_and_clear_leaves_the_case_as_it_was(qtbot, setup, artifacts):
    harness, view, panel = setup
    undo_depth = len(harness.history.undo_stack)
    mesh_ids = vessel_mesh_ids(harness)
    assert len(mesh_ids) == 3
    renderer = view.scene_renderer
    own_inputs = {mid: renderer.actor(mid).GetMapper().GetInput() for mid in mesh_ids}
    opacities = {mid: renderer.actor(mid).GetProperty().GetOpacity() for mid in mesh_ids}
    vertices = {mid: harness.scene.meshes[mid].vertices.copy() for mid in mesh_ids}
    labels = harness.scene.segmentations["seg-1"].labels.copy()
    assert not panel.colour_by.isEnabled() and not panel.streamlines_box.isEnabled()

    run_3d(qtbot, panel, harness)
    assert not harness.errors, harness.errors
    result = panel.flow3d

    # --- table: the run, the ends, the stenosis next to Young–Tsai ------------------------
    (run_row,) = table_rows(panel, "3D run")
    assert f"{result.summary['cells']:,} cells of 1.00 mm" in run_row[5]
    assert f"{STEPS:,} steps" in run_row[5] and "MLUPS" in run_row[5]
    (velocity_row,) = table_rows(panel, "3D velocity")
    assert "m/s" in velocity_row[5] and "mass imbalance" in velocity_row[5]
    (inlet,) = table_rows(panel, "3D inlet")
    assert float(inlet[FLOW_COLUMN]) == pytest.approx(INFLOW_ML_S, rel=0.1)
    outlets = table_rows(panel, "3D outlet")
    assert len(outlets) == 2
    assert sum(float(o[FLOW_COLUMN]) for o in outlets) == pytest.approx(float(inlet[FLOW_COLUMN]), rel=0.05)
    assert sum("pressure outlet" in o[5] for o in outlets) == 1
    assert all(float(o[DROP_COLUMN]) > 0 for o in outlets), "pressure falls from the inlet to each outlet"
    (stenosis_3d,) = table_rows(panel, "3D stenosis")
    (stenosis_reduced,) = table_rows(panel, "Stenosis")
    assert stenosis_3d[1] == stenosis_reduced[1]
    assert float(stenosis_3d[DROP_COLUMN]) == pytest.approx(
        result.stenosis_drops_pa[0] / PA_PER_MMHG, abs=0.01
    )
    assert f"Young–Tsai {stenosis_reduced[DROP_COLUMN]} mmHg" in stenosis_3d[5]
    assert "Outlet" in panel.table.item(0, 0).text(), "the reduced rows stay first"

    # --- plot: each path's 3D curve dashed, in its reduced curve's colour ------------------
    reduced = [c for c in panel.plot.curves if not c.dashed]
    dashed = [c for c in panel.plot.curves if c.dashed]
    assert len(reduced) == len(dashed) == 2
    for n, curve in enumerate(dashed):
        assert curve.label.endswith("(3D)") and curve.colour_index == n
        assert np.all(np.isfinite(curve.pressure_mmhg)) and len(curve.pressure_mmhg) > 20
        assert curve.pressure_mmhg[0] > curve.pressure_mmhg[-1]
    plot_image = panel.plot.grab().toImage()
    assert not plot_image.isNull()

    # --- the view: WSS on the vessel surfaces, streamlines inside -----------------------------
    panel.set_colour_by("wss")
    assert panel.colour_by.currentText() == "WSS"
    assert sorted(panel.overlay.coloured_mesh_ids) == sorted(mesh_ids)
    for mid in mesh_ids:
        mapper = renderer.actor(mid).GetMapper()
        assert mapper.GetInput() is not own_inputs[mid] and mapper.GetScalarVisibility()
        shown = mapper.GetInput().GetPointData().GetScalars()
        assert shown.GetNumberOfTuples() == len(vertices[mid])
        assert own_inputs[mid].GetPointData().GetScalars() is None, "the view's own polydata stays uncoloured"
    wss = np.concatenate([result.surfaces[mid].wss_pa for mid in mesh_ids])
    assert np.all(np.isfinite(wss)) and np.all(wss >= 0) and wss.max() > 0.5
    low, high = panel.overlay.surface_range
    assert 0 <= low < high
    assert renderer.renderer.HasViewProp(panel.overlay.surface_bar)
    assert "wall shear stress" in panel.legend_label.text()

    panel.streamlines_box.setChecked(True)
    lines = panel.overlay.streamline_actor
    assert lines is not None and renderer.renderer.HasViewProp(lines)
    assert lines.GetMapper().GetInput().GetNumberOfLines() > 20
    assert renderer.renderer.HasViewProp(panel.overlay.streamline_bar)
    assert all(renderer.actor(mid).GetProperty().GetOpacity() < 0.5 for mid in mesh_ids), "see-through"
    assert "streamlines" in panel.legend_label.text()
    renderer.set_camera("anterior")
    rgb = view.image()
    write_png(rgb, artifacts / "flow3d_sample.png")
    blue, red, drawn = colours(rgb)
    assert drawn > 0.05 * rgb.shape[0] * rgb.shape[1], "the view is not blank"
    assert blue > 200 and red > 200, f"blue {blue}, red {red} pixels: more than one colour is drawn"

    # --- pressure is highest in the trunk, speed is positive -----------------------------------
    by_name = {harness.scene.meshes[mid].name: mid for mid in mesh_ids}
    panel.set_colour_by("pressure")
    pressure = {name: result.surfaces[mid].pressure_mmhg for name, mid in by_name.items()}
    assert np.median(pressure["aorta"]) > np.median(pressure["iliac_right"])
    assert np.median(pressure["aorta"]) > np.median(pressure["iliac_left"])
    assert "pressure" in panel.legend_label.text() and "mmHg" in panel.legend_label.text()
    panel.set_colour_by("speed")
    speed = np.concatenate([result.surfaces[mid].speed_m_s for mid in mesh_ids])
    assert np.all(np.isfinite(speed)) and speed.max() > 0.05
    assert panel.overlay.surface_range[1] <= result.summary["max_velocity_m_s"] + 1e-6

    # --- Clear: every overlay gone, the case untouched ---------------------------------------
    scalar_bars = (panel.overlay.surface_bar, panel.overlay.streamline_bar)
    panel.clear_button.click()
    assert panel.flow3d is None and panel.overlay.coloured_mesh_ids == []
    assert not renderer.renderer.HasViewProp(lines)
    assert not any(renderer.renderer.HasViewProp(bar) for bar in scalar_bars)
    for mid in mesh_ids:
        actor = renderer.actor(mid)
        assert actor.GetMapper().GetInput() is own_inputs[mid] and not actor.GetMapper().GetScalarVisibility()
        assert actor.GetProperty().GetOpacity() == pytest.approx(opacities[mid])
        assert np.array_equal(harness.scene.meshes[mid].vertices, vertices[mid])
    assert table_rows(panel, "3D") == [] and panel.plot.curves == []
    assert len(harness.history.undo_stack) == undo_depth
    assert np.array_equal(harness.scene.segmentations["seg-1"].labels, labels)
    assert panel.colour_by.currentData() == "none" and not panel.streamlines_box.isChecked()


def test_errors_and_cancel_are_reported_and_the_panel_keeps_working(qtbot, setup):
    harness, view, panel = setup
    # too many cells for the budget: a FlowError naming the cells, as a dialog
    run_3d(qtbot, panel, harness, cell_mm=0.5, max_cells=1_000)
    ((action, error),) = harness.errors
    assert action == "3D blood flow" and isinstance(error, FlowError) and "fluid cells" in str(error)
    assert panel.flow3d is None and panel.run3d_button.isEnabled()
    assert "did not complete" in panel.state_label.text()

    # a long run cancelled from its progress dialog
    panel.cell_mm.setValue(CELL_MM)
    panel.max_cells.setValue(250_000)
    panel.max_steps.setValue(1_000_000)
    assert panel.run_3d()
    task = harness.tasks[-1]
    qtbot.waitUntil(lambda: not task.running or task.dialog.value() > 0, timeout=WAIT_MS)
    assert task.running, harness.errors  # the lattice is stepping
    task.dialog.findChild(QPushButton).click()  # the progress dialog's Cancel
    qtbot.waitUntil(lambda: not panel.running_3d, timeout=WAIT_MS)
    assert isinstance(harness.errors[-1][1], CancelledError) and harness.errors[-1][0] == "3D blood flow"
    assert panel.flow3d is None and table_rows(panel, "3D") == []

    # Clear during a run stops it; its late answer is dropped, not reported
    assert panel.run_3d()
    task = harness.tasks[-1]
    panel.clear_button.click()
    qtbot.waitUntil(lambda: not task.running, timeout=WAIT_MS)
    assert len(harness.errors) == 2 and panel.flow3d is None and panel.case is None
    panel.inflow.setValue(INFLOW_ML_S)
    assert panel.compute()
    qtbot.waitUntil(lambda: panel.case is not None, timeout=WAIT_MS)

    # the panel still works: a run after both
    harness.errors.clear()
    run_3d(qtbot, panel, harness, steps=600)
    assert not harness.errors, harness.errors
    panel.set_streamlines(True)
    assert panel.overlay.streamline_actor is not None
    assert view.scene_renderer.renderer.HasViewProp(panel.overlay.streamline_actor)
    # a new reduced computation drops the 3D result and its overlays
    assert panel.compute()
    qtbot.waitUntil(lambda: not harness.tasks[-1].running, timeout=WAIT_MS)
    assert panel.flow3d is None and panel.case is not None and not harness.errors
    assert panel.overlay.streamline_actor is None and table_rows(panel, "3D") == []
    assert panel.run3d_button.isEnabled()
