"""MeshUpdater: meshes follow paint edits and their undo, rebuilt in a worker thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

import surgtwin.ui.mesh_updater as mesh_updater
from surgtwin.core.commands import AddMesh
from surgtwin.core.errors import MeshError
from surgtwin.core.mesh import extract_meshes
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation, EditLabels
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools.edit import apply_mask
from surgtwin.ui.mesh_updater import FAILED_TEXT, UPDATING_TEXT, MeshUpdater
from tests.ui.harness import ToolHarness

SHAPE = (32, 40, 40)
VOXEL_MM3 = 1.0 * 1.0 * 1.25


@pytest.fixture
def case(qtbot):
    k, j, i = np.indices(SHAPE, dtype=np.float64)
    ball = (k - 16) ** 2 * 1.25**2 + (j - 20) ** 2 + (i - 18) ** 2 <= 9.0**2
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[ball] = 1
    affine = np.diag([1.0, 1.0, 1.25, 1.0])
    seg = Segmentation(labels, affine, name="test")
    seg.add_segment("organ")
    scene = Scene("updater")
    context = ToolHarness(scene)
    assert context.execute(AddSegmentation(seg, "seg-1"))
    mesh = extract_meshes(seg)[1]
    mesh.segmentation_id = "seg-1"
    assert context.execute(AddMesh(mesh, "mesh-1"))
    context.history.clear()
    updater = MeshUpdater(context, scene, delay_ms=100)
    yield context, updater
    updater.close()


def _paint(context: ToolHarness, start=(12, 14, 24), size=(8, 8, 10)) -> EditLabels:
    seg = context.scene.get("seg-1")
    mask = np.zeros(SHAPE, dtype=bool)
    mask[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] = True
    return apply_mask(seg, 1, mask, "add", tool="paint")


def _label_ml(context: ToolHarness) -> float:
    return context.scene.get("seg-1").voxel_count(1) * VOXEL_MM3 / 1000.0


def _recording(monkeypatch, delay_s: float = 0.0) -> list[int]:
    """Wrap the rebuild so the test learns which thread ran it (and can make it slow)."""
    threads: list[int] = []
    real = mesh_updater.rebuild_meshes

    def rebuild(snapshot, progress=None):
        threads.append(threading.get_ident())
        time.sleep(delay_s)
        return real(snapshot, progress)

    monkeypatch.setattr(mesh_updater, "rebuild_meshes", rebuild)
    return threads


def test_a_paint_stroke_and_its_undo_reach_the_mesh_from_a_worker_thread(case, qtbot, monkeypatch) -> None:
    context, updater = case
    threads = _recording(monkeypatch, delay_s=0.3)
    mesh = context.scene.get("mesh-1")
    before_ml, before_vertices = mesh.volume_ml(), mesh.vertices
    states: list[bool] = []
    updater.out_of_date_changed.connect(states.append)

    assert context.execute(_paint(context))
    assert updater.pending and updater.status_text == UPDATING_TEXT
    ticks: list[float] = []
    ticker = QTimer()
    ticker.timeout.connect(lambda: ticks.append(time.monotonic()))
    ticker.start(20)
    with qtbot.waitSignal(updater.updated, timeout=10_000) as updated:
        pass
    ticker.stop()
    assert updated.args == [["mesh-1"]]
    assert not updater.pending and updater.status_text == ""
    assert states == [True, False]
    assert threads and all(t != threading.get_ident() for t in threads)
    assert len(ticks) >= 5  # the GUI thread kept running its timers while the rebuild slept 0.3 s
    assert context.scene.get("mesh-1") is mesh
    assert mesh.vertices is not before_vertices and len(mesh.vertices) != len(before_vertices)
    assert mesh.volume_ml() == pytest.approx(_label_ml(context), rel=0.03)
    assert len(context.history.undo_stack) == 1  # the rebuild is no undo step

    context.history.undo()
    assert updater.flush(10.0)
    assert context.history.can_redo()  # and it does not clear the redo stack
    assert mesh.volume_ml() == pytest.approx(before_ml, rel=1e-3)
    assert len(mesh.vertices) == len(before_vertices)
    assert not context.errors


def test_strokes_in_quick_succession_make_one_rebuild(case, qtbot, monkeypatch) -> None:
    context, follower = case
    follower.close()
    updater = MeshUpdater(context, context.scene, delay_ms=1_000)
    try:
        threads = _recording(monkeypatch)
        assert context.execute(_paint(context))
        qtbot.wait(50)  # well inside the pause
        assert context.execute(_paint(context, start=(2, 2, 2), size=(4, 4, 4)))
        saved: list[float] = []
        updater.when_idle(lambda: saved.append(context.scene.get("mesh-1").volume_ml()))
        assert not saved  # waits for the meshes
        assert updater.flush(10.0)
        assert len(threads) == 1
        assert saved == [context.scene.get("mesh-1").volume_ml()]
        assert context.scene.get("mesh-1").volume_ml() == pytest.approx(_label_ml(context), rel=0.03)
    finally:
        updater.close()


def test_an_edit_during_a_rebuild_is_not_lost(case, qtbot, monkeypatch) -> None:
    context, updater = case
    threads = _recording(monkeypatch, delay_s=0.4)
    assert context.execute(_paint(context))
    qtbot.waitUntil(lambda: bool(threads), timeout=5_000)  # the first rebuild is under way
    assert context.execute(_paint(context, start=(2, 2, 2), size=(5, 5, 5)))
    assert updater.flush(15.0)
    assert len(threads) >= 2
    assert context.scene.get("mesh-1").volume_ml() == pytest.approx(_label_ml(context), rel=0.03)


def test_a_failed_rebuild_is_reported_and_the_next_edit_works_again(case, qtbot, monkeypatch) -> None:
    context, updater = case
    real = mesh_updater.rebuild_meshes

    def broken(snapshot, progress=None):
        raise MeshError("no memory left for the surface")

    monkeypatch.setattr(mesh_updater, "rebuild_meshes", broken)
    texts: list[str] = []
    updater.status_changed.connect(texts.append)
    assert context.execute(_paint(context))
    assert updater.flush(10.0)
    assert texts == [UPDATING_TEXT, FAILED_TEXT]
    assert [action for action, _ in context.errors] == ["Update 3D meshes"]
    assert updater.out_of_date and updater.status_text == FAILED_TEXT

    monkeypatch.setattr(mesh_updater, "rebuild_meshes", real)
    assert context.execute(_paint(context, start=(2, 2, 2), size=(4, 4, 4)))
    assert updater.flush(10.0)
    assert not updater.out_of_date
    assert context.scene.get("mesh-1").volume_ml() == pytest.approx(_label_ml(context), rel=0.03)


def test_results_wait_while_the_window_is_busy(qtbot, case) -> None:
    context, follower = case
    follower.close()  # only the busy-aware updater below follows the scene
    busy = [True]
    updater = MeshUpdater(context, context.scene, delay_ms=10, is_busy=lambda: busy[0])
    try:
        mesh = context.scene.get("mesh-1")
        before = mesh.vertices
        assert context.execute(_paint(context))
        assert not updater.flush(1.5)  # rebuilt, but held
        assert mesh.vertices is before and updater.pending
        busy[0] = False
        assert updater.flush(5.0)
        assert mesh.volume_ml() == pytest.approx(_label_ml(context), rel=0.03)
    finally:
        updater.close()


def test_another_scene_drops_the_old_one(case, qtbot) -> None:
    context, updater = case
    mesh = context.scene.get("mesh-1")
    before = mesh.vertices
    assert context.execute(_paint(context))
    updater.set_scene(Scene("other"))
    assert not updater.pending
    qtbot.wait(300)
    assert mesh.vertices is before  # the old case's edit no longer reaches its meshes


def test_the_3d_view_follows_an_erased_segment_and_its_undo(case, qtbot) -> None:
    from surgtwin.render.scene_view import SceneRenderer

    context, updater = case
    renderer = SceneRenderer(context.scene)
    try:
        points = renderer.actor("mesh-1").GetMapper().GetInput().GetNumberOfPoints()
        assert points > 0
        seg = context.scene.get("seg-1")
        assert context.execute(apply_mask(seg, 1, seg.labels == 1, "remove", tool="erase"))
        assert updater.flush(10.0)
        mesh = context.scene.get("mesh-1")
        assert len(mesh.vertices) == 0  # an empty surface, not an error and not removed
        assert renderer.actor("mesh-1").GetMapper().GetInput().GetNumberOfPoints() == 0
        context.history.undo()
        assert updater.flush(10.0)
        assert renderer.actor("mesh-1").GetMapper().GetInput().GetNumberOfPoints() == points
        assert not context.errors
    finally:
        renderer.close()
