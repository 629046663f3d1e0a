"""The simulation panel's tools under a real X server, on a soft box ("liver") resting on a
bone slab, seen from the front (the anterior camera): a sphere and an instrument shaft (capsule)
pressed with the mouse, a retraction plane, pins at clicked points, and the deformed surface
exported and read back. The case itself must never change."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PySide6.QtCore import QPoint

from tests.ui.test_simulation_panel import (
    QtLeft,
    box_case_shown,
    liver_mesh_id,
    shown_points,
    start,
    to_widget,
)


@pytest.fixture
def setup(qtbot):
    with box_case_shown(qtbot) as shown:
        yield shown


def front_point(rest: np.ndarray, x: float, z: float) -> np.ndarray:
    """The vertex of the box's front (anterior, smallest y) face nearest (x, z)."""
    front = rest[rest[:, 1] < rest[:, 1].min() + 0.5]
    return front[np.argmin(np.abs(front[:, 0] - x) + np.abs(front[:, 2] - z))]


def near(rest: np.ndarray, point: np.ndarray, radius: float) -> np.ndarray:
    return np.linalg.norm(rest - point, axis=1) < radius


def frame_shows(panel, check) -> bool:
    frame = panel.session.last_frame
    return frame is not None and bool(check(frame))


def until_tool(qtbot, panel, tool: str, timeout: int = 10000) -> None:
    qtbot.waitUntil(
        lambda: panel.session.last_frame is not None and panel.session.last_frame.tool == tool,
        timeout=timeout,
    )


def test_sphere_and_shaft_pressed_with_the_mouse_push_the_tissue_in(setup, qtbot) -> None:
    harness, view, panel = setup
    mesh_id = liver_mesh_id(harness)
    case_vertices = harness.scene.get(mesh_id).vertices.copy()
    rest = shown_points(view, mesh_id)
    camera = view.scene_renderer.renderer.GetActiveCamera()
    camera_before = camera.GetPosition()
    start(qtbot, panel)
    widget = view.interactor.interactor

    panel.set_tool("sphere")
    panel.tool_radius.setValue(10.0)
    panel.press_depth.setValue(3.0)
    panel.drag_button.setChecked(True)
    target = front_point(rest, 0.0, 0.0)
    press = to_widget(view, target)
    qtbot.mousePress(widget, QtLeft(), pos=press)
    assert panel.dragger.dragging and panel.session.tool is not None, "the press hit the front face"
    assert np.allclose(panel.dragger.pick_normal, [0, -1, 0], atol=0.3), "the front face faces anterior"
    assert panel.session.glyphs.tool_actor is not None, "the sphere is drawn"
    until_tool(qtbot, panel, "sphere")
    qtbot.wait(1500)
    frame = panel.session.last_frame
    moved = shown_points(view, mesh_id) - rest
    dent = moved[near(rest, target, 3.0), 1].mean()
    print(
        f"\nsphere: dent {dent:.2f} mm, force {np.round(frame.tool_force_n, 4)} N, "
        f"{frame.steps_per_second:.0f} steps/s"
    )
    assert dent > 2.0, "the tissue under the sphere goes in (posterior, +y)"
    assert frame.tool_force_n[1] < -1e-3, "the tissue pushes the sphere back out (anterior, -y)"
    assert "sphere" in panel.force_label.text() and "N" in panel.force_label.text()

    # the sphere follows the mouse across the screen
    centre_before = panel.session.tool.centre_m.copy()
    for step in range(1, 6):
        qtbot.mouseMove(widget, press + QPoint(6 * step, 0))
        qtbot.wait(40)
    qtbot.wait(1000)
    moved_by = (panel.session.tool.centre_m - centre_before) * 1000
    later = to_widget(view, target + moved_by)
    assert later.x() - press.x() > 20 and abs(later.y() - press.y()) < 3
    qtbot.mouseRelease(widget, QtLeft(), pos=press + QPoint(30, 0))
    assert panel.session.tool is None and panel.session.glyphs.tool_actor is None, "lifted on release"
    qtbot.waitUntil(lambda: panel.session.last_frame.tool_force_n is None, timeout=5000)

    # the shaft: a line pressed across the screen (along x), left in place on release
    panel.set_tool("capsule")
    panel.tool_radius.setValue(4.0)
    panel.press_depth.setValue(3.0)
    panel.shaft_length.setValue(24.0)
    panel.keep_tool_check.setChecked(True)
    target = front_point(rest, 0.0, 4.0)
    qtbot.mousePress(widget, QtLeft(), pos=to_widget(view, target))
    shaft = panel.session.tool
    assert shaft is not None and shaft.kind == "capsule"
    assert abs(shaft.direction[0]) > 0.9, "the shaft lies across the screen"
    qtbot.mouseRelease(widget, QtLeft(), pos=to_widget(view, target))
    until_tool(qtbot, panel, "capsule")
    qtbot.wait(1500)
    frame = panel.session.last_frame
    moved = shown_points(view, mesh_id) - rest
    along = [moved[near(rest, target + [dx, 0, 0], 2.5), 1].mean() for dx in (-9.0, 0.0, 9.0)]
    beside = moved[near(rest, target + [0, 0, -14.0], 2.5), 1].mean()  # below the shaft (radius 6.7)
    print(
        f"capsule: along the shaft {np.round(along, 2)} mm, beside it {beside:.2f} mm, "
        f"force {np.round(frame.tool_force_n, 4)} N"
    )
    assert min(along) > 1.2, "a line of tissue under the shaft goes in"
    assert beside < 0.5 * min(along)
    assert frame.tool == "capsule" and frame.tool_force_n[1] < -1e-3
    panel.lift_button.click()
    assert panel.session.tool is None
    qtbot.waitUntil(lambda: panel.session.last_frame.tool_force_n is None, timeout=5000)

    assert camera.GetPosition() == camera_before, "the tools pressed the tissue instead of rotating"
    assert np.array_equal(harness.scene.get(mesh_id).vertices, case_vertices)
    assert harness.errors == []


def test_retraction_plane_and_pins_at_clicked_points(setup, qtbot) -> None:
    harness, view, panel = setup
    mesh_id = liver_mesh_id(harness)
    rest = shown_points(view, mesh_id)
    start(qtbot, panel)
    widget = view.interactor.interactor
    panel.drag_button.setChecked(True)

    # pin the upper left of the front face, then pull the upper right forward
    panel.set_tool("pin")
    panel.pin_radius.setValue(5.0)
    pinned = front_point(rest, -12.0, 8.0)
    qtbot.mouseClick(widget, QtLeft(), pos=to_widget(view, pinned))
    assert len(panel.session.pin_points_mm) == 1 and panel.session.glyphs.pins_actor is not None
    qtbot.waitUntil(lambda: frame_shows(panel, lambda f: f.pinned_nodes > 0), timeout=5000)
    assert "1 point" in panel.pins_label.text()
    pulled = front_point(rest, 12.0, 8.0)
    assert panel.session.grasp(pulled)
    panel.session.drag(pulled + [0.0, -12.0, 0.0])
    qtbot.wait(2000)
    moved = shown_points(view, mesh_id) - rest
    held = np.abs(moved[near(rest, pinned, 2.0)]).max()
    print(
        f"\npinned: {panel.session.last_frame.pinned_nodes} nodes, moved {held:.2f} mm while the grasp moved "
        f"{-moved[near(rest, pulled, 3.0), 1].mean():.2f} mm"
    )
    assert -moved[near(rest, pulled, 3.0), 1].mean() > 5.0
    assert held < 0.5, "the pinned tissue stays"
    panel.clear_pins_button.click()
    qtbot.waitUntil(lambda: frame_shows(panel, lambda f: f.pinned_nodes == 0), timeout=5000)
    qtbot.wait(1500)
    moved = shown_points(view, mesh_id) - rest
    freed = np.abs(moved[near(rest, pinned, 2.0)]).max()
    print(f"unpinned: it moved {freed:.2f} mm")
    assert freed > held + 0.5, "without the pin the tissue there follows the pull"
    assert panel.pins_label.text() == "Pins: none"
    panel.session.release()

    # the retraction plane: the front face's tangent plane pushed 3 mm in, left in place
    panel.set_tool("plane")
    panel.press_depth.setValue(3.0)
    panel.keep_tool_check.setChecked(True)
    target = front_point(rest, 0.0, 0.0)
    qtbot.mouseClick(widget, QtLeft(), pos=to_widget(view, target))
    plane = panel.session.tool
    assert plane is not None and plane.kind == "plane" and plane.direction[1] > 0.9
    until_tool(qtbot, panel, "plane")
    qtbot.wait(2500)
    frame = panel.session.last_frame
    moved = shown_points(view, mesh_id) - rest
    front = (rest[:, 1] < rest[:, 1].min() + 0.5) & (np.abs(rest[:, 0]) < 10) & (np.abs(rest[:, 2]) < 6)
    print(
        f"plane: front face in by {moved[front, 1].mean():.2f} mm, force {np.round(frame.tool_force_n, 4)} N"
    )
    assert moved[front, 1].mean() > 1.5, "the front face is pushed back (posterior)"
    assert frame.tool_force_n[1] < -1e-3 and "plane" in panel.force_label.text()
    assert harness.errors == []


def test_deformed_surface_is_exported_and_reads_back(setup, qtbot, tmp_path) -> None:
    harness, view, panel = setup
    mesh_id = liver_mesh_id(harness)
    case_vertices = harness.scene.get(mesh_id).vertices.copy()
    faces = harness.scene.get(mesh_id).faces
    assert not panel.export_button.isEnabled()
    assert panel.export_deformed(tmp_path / "early.ply") is None  # nothing runs yet: told, not written
    assert "no simulation is running" in str(harness.errors[-1][1]) and not (tmp_path / "early.ply").exists()
    harness.errors.clear()

    start(qtbot, panel)
    rest = shown_points(view, mesh_id)
    pulled = front_point(rest, 0.0, 8.0)
    assert panel.session.grasp(pulled)
    panel.session.drag(pulled + [0.0, -10.0, 0.0])
    qtbot.waitUntil(
        lambda: panel.session.last_frame is not None and panel.session.last_frame.max_displacement_mm > 4,
        timeout=10000,
    )
    assert panel.export_button.isEnabled()
    shown = panel.session.last_frame.points_mm

    ply = panel.export_deformed(tmp_path / "liver_deformed.ply")
    read = trimesh.load(ply, process=False)
    assert len(read.vertices) == len(case_vertices) and len(read.faces) == len(faces)
    assert np.array_equal(read.faces, faces)
    assert np.allclose(read.vertices, shown, atol=1e-3)  # float32 in the file
    assert np.abs(read.vertices - case_vertices).max() > 3.0, "the file holds the deformed shape"

    stl = trimesh.load(panel.export_deformed(tmp_path / "liver_deformed.stl"), process=False)
    assert len(stl.faces) == len(faces)
    assert np.allclose(np.asarray(stl.triangles), shown[faces], atol=1e-3)

    obj_path = panel.export_deformed(tmp_path / "liver_deformed.obj")
    assert (tmp_path / "liver_deformed.mtl").exists()
    obj = trimesh.load(obj_path, process=False, force="mesh")
    assert len(obj.faces) == len(faces)
    assert np.allclose(np.sort(obj.vertices, axis=0), np.sort(shown, axis=0), atol=1e-3)

    panel.session.release()
    assert panel.export_deformed(tmp_path / "liver.vtk") is None
    assert ".ply, .stl or .obj" in str(harness.errors[-1][1])
    assert np.array_equal(harness.scene.get(mesh_id).vertices, case_vertices), "the case is not edited"
