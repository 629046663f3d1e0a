"""3D view of the sample case's twin: real off-screen rendering, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.commands import AddMesh, History
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation, SetSegmentProperties
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.render import RenderError, SceneRenderer, render_3d_snapshot, snapshot_view
from surgtwin.render.scene_view import BACKGROUND
from tests.render.conftest import SHOWN
from tests.render.imaging import background_fraction, color_pixels

SIZE = (480, 360)
# Segments whose colour is saturated enough to be found by hue (bone is near white).
COLOURFUL = ["liver", "aorta", "vena_cava", "stomach", "gallbladder", "spleen", "kidney_left"]
MIN_PIXELS = 300  # each colourful organ covers at least this many pixels in the anterior view


@pytest.fixture()
def twin(sample_truth: Segmentation, sample_meshes: dict) -> tuple[Scene, History, str, dict[str, str]]:
    """A scene built through commands: the ground-truth segmentation and the SHOWN meshes."""
    scene = Scene("sample")
    history = History(scene)
    seg = Segmentation(
        sample_truth.labels.copy(),
        sample_truth.ijk_to_lps.copy(),
        {k: type(s).from_dict(s.to_dict()) for k, s in sample_truth.segments.items()},
        name="truth",
    )
    history.execute(AddSegmentation(seg))
    seg_id = scene.ids("segmentation")[0]
    mesh_ids = {}
    for mesh in sample_meshes.values():
        mesh.segmentation_id = seg_id
        command = AddMesh(mesh)
        history.execute(command)
        mesh_ids[mesh.name] = command.object_id
    return scene, history, seg_id, mesh_ids


def _count(rgb: np.ndarray, seg: Segmentation, name: str) -> int:
    return int(color_pixels(rgb, seg.segments[seg.label_of(name)].color, hue_tol=3.0).sum())


def test_snapshot_shows_every_visible_segment(twin, artifacts) -> None:
    scene, _, seg_id, _ = twin
    path = artifacts / "sample_twin_anterior.png"
    rgb = render_3d_snapshot(scene, SIZE, "anterior", path)
    print(f"\nsaved {path}")
    assert rgb.shape == (SIZE[1], SIZE[0], 3) and rgb.dtype == np.uint8
    assert path.is_file() and path.stat().st_size > 1000
    assert rgb.std() > 20.0  # not a flat picture
    covered = 1.0 - background_fraction(rgb, BACKGROUND)
    assert 0.1 < covered < 0.9, covered  # the anatomy fills the view without overflowing it
    seg = scene.get(seg_id)
    counts = {name: _count(rgb, seg, name) for name in COLOURFUL}
    assert all(n >= MIN_PIXELS for n in counts.values()), counts


def test_hiding_a_segment_removes_its_colour_and_undo_brings_it_back(twin, artifacts) -> None:
    scene, history, seg_id, _ = twin
    seg = scene.get(seg_id)
    liver = seg.label_of("liver")
    view = SceneRenderer(scene)
    try:
        before = snapshot_view(view, SIZE, "anterior")
        history.execute(SetSegmentProperties(seg_id, liver, visible=False))
        hidden = snapshot_view(view, SIZE, "anterior", artifacts / "sample_twin_liver_hidden.png")
        history.undo()
        after = snapshot_view(view, SIZE, "anterior")
    finally:
        view.close()
    assert _count(before, seg, "liver") > 10000
    assert _count(hidden, seg, "liver") < 0.01 * _count(before, seg, "liver")
    assert _count(hidden, seg, "vena_cava") >= MIN_PIXELS  # the rest is still drawn (and more of it)
    assert _count(after, seg, "liver") == _count(before, seg, "liver")


def test_colour_change_and_mesh_removal_follow_commands(twin) -> None:
    scene, history, seg_id, mesh_ids = twin
    seg = scene.get(seg_id)
    changes: list[int] = []
    view = SceneRenderer(scene, on_change=lambda: changes.append(1))
    try:
        assert sorted(view.mesh_ids()) == sorted(mesh_ids.values())
        history.execute(SetSegmentProperties(seg_id, seg.label_of("aorta"), color=(0.0, 1.0, 0.0)))
        assert view.actor(mesh_ids["aorta"]).GetProperty().GetColor() == (0.0, 1.0, 0.0)
        rgb = snapshot_view(view, SIZE, "anterior")
        assert color_pixels(rgb, (0.0, 1.0, 0.0), hue_tol=3.0).sum() >= MIN_PIXELS
        history.undo()
        assert view.actor(mesh_ids["aorta"]).GetProperty().GetColor() == pytest.approx((0.88, 0.2, 0.18))
        history.undo()  # the last AddMesh
        assert len(view.mesh_ids()) == len(mesh_ids) - 1
        history.redo()
        assert len(view.mesh_ids()) == len(mesh_ids)
        assert len(changes) == 4
    finally:
        view.close()
    assert view.mesh_ids() == [] and view.renderer.GetActors().GetNumberOfItems() == 0


def test_per_segment_opacity(twin) -> None:
    scene, _, seg_id, mesh_ids = twin
    seg = scene.get(seg_id)
    view = SceneRenderer(scene)
    try:
        view.set_segment_opacity(seg_id, seg.label_of("liver"), 0.5)
        assert view.actor(mesh_ids["liver"]).GetProperty().GetOpacity() == 0.5
        half = snapshot_view(view, SIZE, "anterior")
        view.set_segment_opacity(seg_id, seg.label_of("liver"), 0.0)
        assert not view.actor(mesh_ids["liver"]).GetVisibility()
        with pytest.raises(RenderError):
            view.set_segment_opacity(seg_id, 1, 1.5)
    finally:
        view.close()
    # Half-transparent liver: pixels mix with what lies behind, so fewer keep its pure hue.
    full = render_3d_snapshot(scene, SIZE, "anterior")
    assert 0 < _count(half, seg, "liver") < _count(full, seg, "liver")


@pytest.mark.parametrize(("camera", "liver_side"), [("anterior", "left"), ("posterior", "right")])
def test_cameras_put_the_patient_right_where_expected(twin, artifacts, camera, liver_side) -> None:
    """The liver lies in the patient's right: on screen left seen from the front."""
    scene, _, seg_id, _ = twin
    rgb = render_3d_snapshot(scene, SIZE, camera, artifacts / f"sample_twin_{camera}.png")
    liver = color_pixels(rgb, scene.get(seg_id).segments[scene.get(seg_id).label_of("liver")].color, 3.0)
    centre = np.argwhere(liver)[:, 1].mean()
    assert (centre < SIZE[0] / 2) == (liver_side == "left"), centre


def test_unknown_camera_is_refused(twin) -> None:
    with pytest.raises(RenderError, match="anterior"):
        render_3d_snapshot(twin[0], SIZE, "sideways")


def test_every_camera_preset_renders_something(twin) -> None:
    from surgtwin.render import CAMERA_PRESETS

    for camera in CAMERA_PRESETS:
        rgb = render_3d_snapshot(twin[0], (160, 120), camera)
        assert 1.0 - background_fraction(rgb, BACKGROUND) > 0.05, camera


def test_shown_names_exist(sample_truth) -> None:
    assert all(sample_truth.label_of(n) for n in SHOWN)
