"""Meshes follow label edits: re-mesh what an edit touched, in place, never as an undo step."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.case.format import load_case, save_case
from surgtwin.core.commands import AddMesh, History
from surgtwin.core.mesh import MeshOptions, extract_meshes
from surgtwin.core.mesh.sync import (
    MeshSync,
    apply_rebuilt_meshes,
    changed_labels,
    mesh_segments,
    rebuild_meshes,
    rebuild_segment_meshes,
)
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegment, AddSegmentation, SetSegmentProperties
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools.edit import apply_mask
from tests.core.mesh_shapes import grid, rotation

SHAPE = (40, 48, 48)  # k, j, i
SPACING = (1.0, 1.0, 1.5)  # i, j, k mm: anisotropic on purpose
PAINT_START = (16, 17, 22)  # k, j, i of the painted block: half in the organ sphere
PAINT_SIZE = (10, 10, 14)


def _sphere(center_kji: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    k, j, i = np.indices(SHAPE, dtype=np.float64)
    sk, sj, si = SPACING[2], SPACING[1], SPACING[0]
    c = center_kji
    return ((k - c[0]) * sk) ** 2 + ((j - c[1]) * sj) ** 2 + ((i - c[2]) * si) ** 2 <= radius_mm**2


def _case(affine: np.ndarray | None = None) -> tuple[Scene, History, str, dict[int, str]]:
    """A scene with two sphere segments (labels 1 and 2), each with its mesh."""
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[_sphere((20, 24, 16), 12.0)] = 1
    labels[_sphere((20, 34, 34), 6.0)] = 2
    seg = Segmentation(labels, affine if affine is not None else grid(SHAPE, SPACING), name="test")
    seg.add_segment("organ")
    seg.add_segment("tumour")
    scene = Scene("sync")
    history = History(scene)
    history.execute(AddSegmentation(seg, "seg-1"))
    mesh_ids: dict[int, str] = {}
    for label, mesh in extract_meshes(seg).items():
        mesh.segmentation_id = "seg-1"
        mesh_ids[label] = f"mesh-{label}"
        history.execute(AddMesh(mesh, mesh_ids[label]))
    history.clear()
    return scene, history, "seg-1", mesh_ids


def _paint(scene: Scene, label: int, start=PAINT_START, size=PAINT_SIZE):
    seg = scene.get("seg-1")
    mask = np.zeros(SHAPE, dtype=bool)
    mask[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] = True
    return apply_mask(seg, label, mask, "add", tool="paint")


def _sync(sync: MeshSync, segmentation_id: str = "seg-1") -> list[str] | None:
    snapshot = sync.snapshot(segmentation_id)
    assert snapshot is not None
    return sync.apply(rebuild_meshes(snapshot))


def test_painting_a_block_grows_the_mesh_by_the_painted_volume_and_undo_restores_it() -> None:
    scene, history, seg_id, meshes = _case()
    sync = MeshSync(scene)
    mesh = scene.get(meshes[1])
    before_ml, before_vertices = mesh.volume_ml(), mesh.vertices.copy()
    edit = _paint(scene, 1)
    painted_ml = edit.changed_voxels * scene.get(seg_id).voxel_volume_mm3 / 1000.0
    assert painted_ml > 0.1 * before_ml  # a change big enough to measure
    history.execute(edit)

    assert _sync(sync) == [meshes[1]]  # only the edited segment is re-meshed
    assert scene.get(meshes[1]) is mesh  # in place: same object, same id
    assert mesh.volume_ml() - before_ml == pytest.approx(painted_ml, rel=0.05)
    assert len(history.undo_stack) == 1 and not history.can_redo()  # no extra undo step

    history.undo()
    assert history.can_redo()
    assert _sync(sync) == [meshes[1]]
    assert history.can_redo()  # re-meshing after undo keeps the redo stack
    assert mesh.volume_ml() == pytest.approx(before_ml, rel=1e-3)
    assert len(mesh.vertices) == len(before_vertices)


def test_a_paint_over_another_segment_remeshes_both_and_nothing_else() -> None:
    scene, history, seg_id, meshes = _case()
    sync = MeshSync(scene)
    tumour = scene.get(meshes[2])
    tumour_ml = tumour.volume_ml()
    # a block over the tumour, painted as organ: the tumour loses what the organ gains
    history.execute(_paint(scene, 1, start=(16, 28, 28), size=(8, 6, 6)))
    assert sorted(_sync(sync) or []) == sorted(meshes.values())
    assert tumour.volume_ml() < 0.9 * tumour_ml

    history.execute(SetSegmentProperties(seg_id, 1, color=(0.1, 0.2, 0.3)))
    assert _sync(sync) == []  # a colour change moves no voxel: nothing re-meshed


def test_a_result_made_before_a_further_edit_is_dropped() -> None:
    scene, history, seg_id, meshes = _case()
    sync = MeshSync(scene)
    history.execute(_paint(scene, 1))
    snapshot = sync.snapshot(seg_id)
    assert snapshot is not None
    history.execute(_paint(scene, 1, start=(2, 2, 2), size=(3, 3, 3)))  # while it was being re-meshed
    mesh = scene.get(meshes[1])
    vertices = mesh.vertices
    assert sync.apply(rebuild_meshes(snapshot)) is None
    assert mesh.vertices is vertices  # untouched

    # the next snapshot sees both edits (the reference is still the pre-edit labels)
    expected = scene.get(seg_id).voxel_count(1) * scene.get(seg_id).voxel_volume_mm3 / 1000.0
    assert _sync(sync) == [meshes[1]]
    assert mesh.volume_ml() == pytest.approx(expected, rel=0.03)


def test_a_change_that_moves_no_voxel_does_not_make_a_result_stale() -> None:
    scene, history, seg_id, meshes = _case()
    sync = MeshSync(scene)
    history.execute(_paint(scene, 1))
    snapshot = sync.snapshot(seg_id)
    history.execute(SetSegmentProperties(seg_id, 2, name="lesion"))
    assert sync.revision(seg_id) > snapshot.revision
    assert sync.apply(rebuild_meshes(snapshot)) == [meshes[1]]


def test_an_erased_segment_keeps_an_empty_mesh_and_undo_brings_it_back() -> None:
    scene, history, seg_id, meshes = _case()
    sync = MeshSync(scene)
    seg = scene.get(seg_id)
    tumour = scene.get(meshes[2])
    before_ml = tumour.volume_ml()
    history.execute(apply_mask(seg, 2, seg.labels == 2, "remove"))
    assert _sync(sync) == [meshes[2]]
    assert meshes[2] in scene and len(tumour.vertices) == 0 and tumour.triangle_count == 0
    history.undo()
    assert _sync(sync) == [meshes[2]]
    assert tumour.volume_ml() == pytest.approx(before_ml, rel=1e-3)


def test_a_segment_painted_from_scratch_gets_no_mesh() -> None:
    scene, history, seg_id, _meshes = _case()
    sync = MeshSync(scene)
    add = AddSegment(seg_id, "new")
    history.execute(add)
    history.execute(_paint(scene, add.label, start=(2, 2, 2), size=(5, 5, 5)))  # away from the others
    count = len(scene.meshes)
    assert _sync(sync) == []
    assert len(scene.meshes) == count


def test_the_new_geometry_is_what_the_case_saves(tmp_path) -> None:
    scene, history, seg_id, meshes = _case()
    sync = MeshSync(scene)
    history.execute(_paint(scene, 1))
    _sync(sync)
    mesh = scene.get(meshes[1])
    save_case(scene, tmp_path / "case.stwin")
    loaded = load_case(tmp_path / "case.stwin")
    again = loaded.get(meshes[1])
    assert again.segmentation_id == seg_id and again.segment_label == 1 and again.name == mesh.name
    np.testing.assert_array_equal(again.vertices, mesh.vertices)
    np.testing.assert_array_equal(again.faces, mesh.faces)
    assert again.provenance["rebuilt_after_label_edit"]["box_kji"] is not None


def test_the_box_mesh_equals_the_whole_map_mesh_on_an_oblique_grid() -> None:
    affine = grid(SHAPE, SPACING, origin=(-30.0, 12.0, 100.0), rot=rotation((1.0, 2.0, 0.5), 25.0))
    scene, _history, seg_id, _meshes = _case(affine)
    seg = scene.get(seg_id)
    options = MeshOptions()
    whole, _ = mesh_segments(seg.labels, seg.ijk_to_lps, [2], options, whole=True)
    boxed, box = mesh_segments(seg.labels, seg.ijk_to_lps, [2], options)
    assert box is not None and np.prod([s.stop - s.start for s in box]) < 0.2 * seg.labels.size
    assert boxed[2].triangle_count == whole[2].triangle_count
    np.testing.assert_allclose(boxed[2].vertices.mean(axis=0), whole[2].vertices.mean(axis=0), atol=1e-6)
    assert boxed[2].volume_ml() == pytest.approx(whole[2].volume_ml(), rel=1e-6)


def test_synchronous_rebuild_uses_the_recorded_options_and_applies_in_place() -> None:
    scene, history, seg_id, meshes = _case()
    history.execute(_paint(scene, 2, start=(30, 30, 30), size=(6, 6, 6)))
    rebuilt = rebuild_segment_meshes(scene, seg_id, {2})
    assert set(rebuilt) == {meshes[2]}
    assert rebuilt[meshes[2]].provenance["options"] == MeshOptions().as_dict()
    tumour = scene.get(meshes[2])
    assert apply_rebuilt_meshes(scene, rebuilt) == [meshes[2]]
    expected = scene.get(seg_id).voxel_count(2) * scene.get(seg_id).voxel_volume_mm3 / 1000.0
    assert tumour.volume_ml() == pytest.approx(expected, rel=0.03)


def test_changed_labels_names_what_gained_or_lost_voxels() -> None:
    before = np.zeros((4, 4, 4), dtype=np.uint8)
    before[0] = 1
    after = before.copy()
    after[0, 0, 0] = 3
    after[2, 2, 2] = 2
    assert changed_labels(before, after) == {1, 2, 3}
    assert changed_labels(before, before.copy()) == set()
    assert changed_labels(None, after) is None
    assert changed_labels(before[:2], after) is None
