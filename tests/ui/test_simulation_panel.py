"""The simulation panel under a real X server: a soft box ("liver") resting on a bone slab, a
live deformation session on a solver thread, dragged through the session API and with real
mouse events in the interactive 3D view. The case itself must never change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QTimer
from vtkmodules.util.numpy_support import vtk_to_numpy

from surgtwin.core.commands import AddMesh
from surgtwin.core.mesh import extract_meshes
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.model import Segment, Segmentation
from tests.ui.harness import ToolHarness, show_widget, view3d_to_widget

N = 36
VOXEL_MM = 2.0
# liver: a 40 x 32 x 30 mm box; bone: a slab under its inferior face (k is the S axis)
LIVER = (slice(11, 26), slice(8, 24), slice(8, 28))  # (k, j, i)
BONE = (slice(6, 11), slice(6, 26), slice(6, 30))


def box_case() -> tuple[ToolHarness, str]:
    labels = np.zeros((N, N, N), dtype=np.uint8)
    labels[BONE] = 2
    labels[LIVER] = 1
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    affine[:3, 3] = (-N, -N, -N)  # centred on the origin
    seg = Segmentation(
        labels, affine, {1: Segment("liver", (0.7, 0.3, 0.2)), 2: Segment("bone", (0.9, 0.9, 0.8))}, name="t"
    )
    harness = ToolHarness(Scene("simulation"))
    harness.history.execute(AddSegmentation(seg))
    seg_id = harness.scene.ids("segmentation")[0]
    for mesh in extract_meshes(seg).values():
        mesh.segmentation_id = seg_id
        harness.history.execute(AddMesh(mesh))
    return harness, seg_id


@contextmanager
def box_case_shown(qtbot) -> Iterator[tuple[ToolHarness, object, object]]:
    """The box case in the interactive 3D view with the simulation panel over it, as
    (harness, view, panel); the session and the view closed afterwards."""
    from surgtwin.ui.simulation_panel import SimulationPanel
    from surgtwin.ui.view3d import View3D

    harness, _ = box_case()
    view = show_widget(qtbot, View3D(), (480, 400))
    assert view.interactive, "the UI tier runs the interactive (GLX) 3D view"
    view.set_context(harness)
    view.set_scene(harness.scene)
    panel = show_widget(qtbot, SimulationPanel(harness, view))
    harness.parent = panel
    yield harness, view, panel
    panel.close_session()
    view.close_view()


@pytest.fixture
def setup(qtbot):
    with box_case_shown(qtbot) as shown:
        yield shown


def liver_mesh_id(harness: ToolHarness) -> str:
    return next(mid for mid, m in harness.scene.meshes.items() if m.segment_label == 1)


def shown_points(view, mesh_id: str) -> np.ndarray:
    poly = view.scene_renderer.actor(mesh_id).GetMapper().GetInput()
    return vtk_to_numpy(poly.GetPoints().GetData()).copy()


def start(qtbot, panel, budget: int = 500) -> None:
    panel.segment_combo.setCurrentText("liver")
    panel.budget_combo.setCurrentIndex(panel.budget_combo.findData(budget))
    with qtbot.waitSignal(panel.session.started, timeout=30000):
        assert panel.start()


class Heartbeat:
    """A 5 ms GUI timer; the longest gap between its ticks is the longest GUI stall."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.max_gap = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now

    def start(self) -> None:
        self.last = time.perf_counter()
        self.max_gap = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.max_gap


def wait_frames(qtbot, session, seconds: float, heartbeat: Heartbeat | None = None) -> None:
    """Let the solver run ``seconds`` with the event loop turning (frames applied)."""
    if heartbeat is not None:
        heartbeat.start()
    qtbot.wait(int(seconds * 1000))
    assert session.last_frame is not None, "the GUI showed no frame"


def test_panel_lists_meshed_segments_and_anchors_bone_by_default(setup) -> None:
    harness, view, panel = setup
    names = [panel.segment_combo.itemText(i) for i in range(panel.segment_combo.count())]
    assert names == ["bone", "liver"]
    assert panel.anchors() == ["bone"]
    panel.segment_combo.setCurrentText("liver")
    assert panel.config().material is None  # the liver preset, chosen by the session
    assert panel.youngs_kpa.value() == pytest.approx(4.1)


def test_session_drag_deforms_the_view_only_and_reset_restores_it(setup, qtbot) -> None:
    harness, view, panel = setup
    mesh_id = liver_mesh_id(harness)
    scene_vertices = harness.scene.get(mesh_id).vertices.copy()
    undo_before = harness.history.undo_stack
    rest = shown_points(view, mesh_id)
    own_polydata = view.scene_renderer.actor(mesh_id).GetMapper().GetInput()

    start(qtbot, panel)
    session = panel.session
    built = session.built
    assert built.fixed.any() and built.anchored_by["bone"] == int(built.fixed.sum())
    assert 8 <= built.mesh.element_count <= 500

    top = rest[:, 2].max()
    grasp = rest[np.argmax(rest[:, 2] - 0.05 * np.abs(rest[:, 0]) - 0.05 * np.abs(rest[:, 1]))]
    pull = np.array([15.0, 0.0, 0.0])  # towards the patient's left, in the anterior view's plane
    heartbeat = Heartbeat()
    assert session.grasp(grasp)
    session.drag(grasp + pull)
    wait_frames(qtbot, session, 2.0, heartbeat)
    stall_ms = heartbeat.stop() * 1000
    frame = session.last_frame
    print(
        f"\nAPI drag: {built.mesh.element_count} elements, {frame.steps_per_second:.0f} steps/s "
        f"({frame.steps} steps), longest GUI stall {stall_ms:.0f} ms, "
        f"tool force {np.round(frame.tool_force_n, 4)} N, max displacement {frame.max_displacement_mm:.1f} mm"
    )

    shown = shown_points(view, mesh_id)
    moved = shown - rest
    assert np.isfinite(shown).all()
    near_grasp = np.linalg.norm(rest - grasp, axis=1) < 6.0
    near_anchor = rest[:, 2] < rest[:, 2].min() + 1.5
    assert moved[near_grasp, 0].mean() > 5.0, "the grasped tissue follows the drag"
    assert np.abs(moved[near_anchor]).max() < 1.5, "tissue on the bone stays"
    assert top > rest[:, 2].min() + 20
    assert frame.tool_force_n is not None and frame.tool_force_n[0] < -1e-4, "the tissue pulls back"
    assert frame.max_displacement_mm > 8.0
    mapper = view.scene_renderer.actor(mesh_id).GetMapper()
    assert mapper.GetScalarVisibility() and mapper.GetInput().GetPointData().GetScalars() is not None
    assert "mm" in panel.legend_label.text() and "N" in panel.force_label.text()

    panel.colour_combo.setCurrentText("stress")
    qtbot.waitUntil(lambda: session.last_frame.colour_by == "stress", timeout=5000)
    stress = vtk_to_numpy(mapper.GetInput().GetPointData().GetScalars())
    assert np.isfinite(stress).all() and stress.max() > 0.0
    assert "kPa" in panel.legend_label.text()

    # the case is untouched: same vertices, no undo step
    assert np.array_equal(harness.scene.get(mesh_id).vertices, scene_vertices)
    assert harness.history.undo_stack == undo_before
    assert harness.errors == []

    session.release()
    qtbot.wait(300)
    panel.reset_button.click()
    assert not session.running
    assert view.scene_renderer.actor(mesh_id).GetMapper().GetInput() is own_polydata
    assert np.array_equal(shown_points(view, mesh_id), rest)
    assert not mapper.GetScalarVisibility()
    assert np.array_equal(harness.scene.get(mesh_id).vertices, scene_vertices)


def to_widget(view, lps) -> QPoint:
    x, y = view3d_to_widget(view, lps)
    return QPoint(round(x), round(y))


def test_mouse_drag_in_drag_mode_pulls_the_tissue(setup, qtbot) -> None:
    harness, view, panel = setup
    mesh_id = liver_mesh_id(harness)
    rest = shown_points(view, mesh_id)
    camera = view.scene_renderer.renderer.GetActiveCamera()
    camera_before = camera.GetPosition()
    start(qtbot, panel)
    panel.drag_button.setChecked(True)

    # the front face's upper middle, as seen from the anterior camera
    front = rest[rest[:, 1] < rest[:, 1].min() + 1.0]
    target = front[np.argmin(np.abs(front[:, 0]) + np.abs(front[:, 2] - (rest[:, 2].max() - 6.0)))]
    press = to_widget(view, target)
    widget = view.interactor.interactor
    qtbot.mousePress(widget, QtLeft(), pos=press)
    assert panel.dragger.dragging, "the press hit the liver's surface"
    heartbeat = Heartbeat()
    heartbeat.start()
    for step in range(1, 11):
        qtbot.mouseMove(widget, press + QPoint(4 * step, 0))  # to the screen's right
        qtbot.wait(60)
    qtbot.wait(1200)
    stall_ms = heartbeat.stop() * 1000
    frame = panel.session.last_frame
    grasp_world = panel.dragger.grasp_point
    shown = shown_points(view, mesh_id)
    moved = shown - rest
    near_grasp = np.linalg.norm(rest - grasp_world, axis=1) < 6.0
    screen_right = (
        to_widget(view, grasp_world + moved[near_grasp].mean(axis=0)).x() - to_widget(view, grasp_world).x()
    )
    print(
        f"\nmouse drag: longest GUI stall {stall_ms:.0f} ms, {frame.steps_per_second:.0f} steps/s, "
        f"tool force {np.round(frame.tool_force_n, 4)} N, grasped tissue moved {screen_right} px right"
    )
    assert screen_right > 15, "the grasped tissue follows the mouse across the screen"
    near_anchor = rest[:, 2] < rest[:, 2].min() + 1.5
    assert np.abs(moved[near_anchor]).max() < 1.5
    assert frame.tool_force_n is not None and np.linalg.norm(frame.tool_force_n) > 1e-4
    assert camera.GetPosition() == camera_before, "the drag grasped the tissue instead of rotating"
    qtbot.mouseRelease(widget, QtLeft(), pos=press + QPoint(40, 0))
    assert not panel.dragger.dragging
    assert np.isfinite(shown).all() and harness.errors == []


def QtLeft():  # noqa: N802 - reads like the Qt constant it returns
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_new_case_and_missing_material_are_handled(setup, qtbot) -> None:
    harness, view, panel = setup
    mesh_id = liver_mesh_id(harness)
    rest = shown_points(view, mesh_id)
    start(qtbot, panel)
    assert panel.session.grasp(rest[np.argmax(rest[:, 2])])
    qtbot.waitUntil(lambda: panel.session.last_frame is not None, timeout=5000)
    panel.set_scene(harness.scene)  # the window opens another case
    assert not panel.session.running
    assert np.array_equal(shown_points(view, mesh_id), rest)
    # bone has no preset: the user is told to choose a material, nothing starts
    panel.segment_combo.setCurrentText("bone")
    panel.set_anchors([])
    assert not panel.start()
    assert harness.errors and "material" in str(harness.errors[-1][1])
    # the liver with no anchor ticked: refused, a free organ would only drift away
    panel.segment_combo.setCurrentText("liver")
    panel.set_anchors([])
    assert not panel.start()
    assert "nothing holds 'liver'" in str(harness.errors[-1][1])
