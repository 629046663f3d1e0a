"""Segmentations in the scene: commands, undo/redo, one stroke = one step, bounded memory."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from surgtwin.core.commands import (
    COMMANDS,
    AddMesh,
    Command,
    CommandGroup,
    History,
    RemoveMesh,
    command_from_dict,
)
from surgtwin.core.errors import CommandError, SegmentationError
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.scene import Scene, SceneEvent
from surgtwin.core.segmentation.commands import (
    AddSegment,
    AddSegmentation,
    EditLabels,
    RemoveSegment,
    RemoveSegmentation,
    SetSegmentProperties,
)
from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.segmentation.tools import apply_mask, paint, split_islands

SHAPE = (6, 8, 10)


def new_seg() -> Segmentation:
    return Segmentation(np.zeros(SHAPE, np.uint8), np.diag([0.8, 0.8, 2.0, 1.0]), name="organs")


def seg_scene() -> tuple[Scene, History, Segmentation]:
    scene = Scene()
    history = History(scene)
    seg = new_seg()
    history.execute(AddSegmentation(seg, "seg-1"))
    return scene, history, seg


def tetra() -> SurfaceMesh:
    v = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return SurfaceMesh(v, f, "aorta", (0.9, 0.2, 0.2), 1, "seg-1")


def test_scene_holds_segmentations_and_meshes_with_their_own_id_prefixes() -> None:
    scene = Scene()
    seg_id = scene.add(new_seg())
    mesh_id = scene.add(tetra())
    assert seg_id.startswith("seg-") and mesh_id.startswith("mesh-")
    assert scene.kind_of(seg_id) == "segmentation" and scene.kind_of(mesh_id) == "mesh"
    assert list(scene.segmentations) == [seg_id] and list(scene.meshes) == [mesh_id]


def test_segment_commands_undo_and_redo_exactly() -> None:
    scene, history, seg = seg_scene()
    events: list[SceneEvent] = []
    scene.subscribe(events.append)
    history.execute(AddSegment(seg, "liver", terminology={"scheme": "SCT", "code": "10200004"}))
    history.execute(AddSegment(seg, "aorta", (1.0, 0.0, 0.0)))
    assert [s.name for s in seg.segments.values()] == ["liver", "aorta"] and list(seg.segments) == [1, 2]
    mask = np.zeros(SHAPE, bool)
    mask[1:3, 2:5, 3:7] = True
    history.execute(apply_mask(seg, 1, mask))
    history.execute(SetSegmentProperties(seg, 1, name="hepar", color=(0.1, 0.2, 0.3), visible=False))
    assert seg.segments[1].name == "hepar" and not seg.segments[1].visible
    history.execute(RemoveSegment(seg, 1))
    assert 1 not in seg.segments and not seg.labels.any()
    history.undo()
    assert list(seg.segments) == [1, 2] and np.array_equal(seg.labels == 1, mask)
    history.undo()
    assert seg.segments[1].name == "liver" and seg.segments[1].visible
    assert seg.segments[1].color == pytest.approx((0.86, 0.55, 0.40))
    history.undo()
    assert not seg.labels.any()
    history.redo()
    assert np.array_equal(seg.labels == 1, mask)
    assert all(e == ("changed", "seg-1") for e in events)


def test_commands_naming_missing_objects_or_segments_fail_and_change_nothing() -> None:
    scene, history, seg = seg_scene()
    history.execute(AddSegment(seg, "liver"))
    before = (seg.labels.copy(), dict(seg.segments), list(scene.provenance))
    bad: list[Command] = [
        RemoveSegment("seg-1", 9),
        SetSegmentProperties("seg-1", 9, name="x"),
        RemoveSegment("seg-9", 1),
        AddSegment("seg-9", "x"),
        AddSegment("seg-1", "liver"),  # name taken
        AddSegment("seg-1", "kidney", label=1),  # label taken
        RemoveSegmentation("seg-9"),
        RemoveMesh("seg-1"),  # wrong kind
        AddSegmentation(new_seg(), "seg-1"),
        EditLabels("seg-1", (0, 0, 0), np.zeros((1, 1, 1), np.uint8), np.full((1, 1, 1), 5, np.uint8)),
        EditLabels("seg-1", (5, 7, 9), np.zeros((2, 1, 1), np.uint8), np.ones((2, 1, 1), np.uint8)),
        EditLabels(new_seg(), (0, 0, 0), np.zeros((1, 1, 1), np.uint8), np.ones((1, 1, 1), np.uint8)),
    ]
    for command in bad:
        with pytest.raises(CommandError, match="cannot"):
            history.execute(command)
    assert np.array_equal(seg.labels, before[0]) and seg.segments == before[1]
    assert scene.provenance == before[2] and len(history.undo_stack) == 2


@pytest.mark.parametrize(
    "color", [(255, 0, 0), (0.5, 0.5), (0.1, float("nan"), 0.2), (0.1, float("inf"), 0.2), (-0.1, 0, 0)]
)
def test_segment_colours_must_be_rgb_in_0_to_1(color: tuple[float, ...]) -> None:
    with pytest.raises(SegmentationError, match="must be RGB in 0..1"):
        Segment("liver", color)  # type: ignore[arg-type]
    seg = new_seg()
    with pytest.raises(SegmentationError, match="must be RGB in 0..1"):
        seg.add_segment("liver", color)  # type: ignore[arg-type]
    assert not seg.segments
    with pytest.raises(SegmentationError, match=r"colour \(255, 0, 0\) must be RGB in 0..1"):
        Segment("liver", (255, 0, 0))  # type: ignore[arg-type]


def test_segment_names_are_non_empty_and_unique_within_a_segmentation() -> None:
    seg = new_seg()
    for blank in ("", "  "):
        with pytest.raises(SegmentationError, match="non-empty"):
            seg.add_segment(blank)
    seg.add_segment("liver")
    with pytest.raises(SegmentationError, match="already exists"):
        seg.add_segment("liver")
    with pytest.raises(SegmentationError, match="already exists"):
        seg.insert_segment(5, Segment("liver", (0.1, 0.2, 0.3)))
    with pytest.raises(SegmentationError, match="unique"):
        Segmentation(seg.labels, seg.ijk_to_lps, {1: Segment("a", (0, 0, 0)), 2: Segment("a", (1, 1, 1))})
    assert list(seg.segments) == [1]


def test_commands_refuse_repeated_names_and_bad_colours() -> None:
    scene, history, seg = seg_scene()
    history.execute(AddSegment(seg, "liver"))
    history.execute(AddSegment(seg, "aorta"))
    with pytest.raises(CommandError, match="already exists"):
        history.execute(SetSegmentProperties(seg, 2, name="liver"))
    with pytest.raises(CommandError, match="must be RGB in 0..1"):
        SetSegmentProperties(seg, 2, color=(255, 0, 0))
    with pytest.raises(CommandError, match="non-empty"):
        SetSegmentProperties(seg, 2, name=" ")
    with pytest.raises(CommandError, match="must be RGB in 0..1"):
        history.execute(AddSegment(seg, "kidney", (0.0, 2.0, 0.0)))
    with pytest.raises(CommandError, match="already exists"):
        history.execute(AddSegment(seg, "aorta"))
    history.execute(SetSegmentProperties(seg, 2, name="aorta"))  # its own name is not a clash
    assert [s.name for s in seg.segments.values()] == ["liver", "aorta"] and len(history.undo_stack) == 4


def test_stale_edit_is_refused() -> None:
    scene, history, seg = seg_scene()
    history.execute(AddSegment(seg, "a"))
    mask = np.zeros(SHAPE, bool)
    mask[0, 0, 0] = True
    first, second = apply_mask(seg, 1, mask), apply_mask(seg, 1, mask)
    history.execute(first)
    with pytest.raises(CommandError, match="changed since this edit was made"):
        history.execute(second)


def test_one_brush_stroke_is_one_undo_step_and_its_memory_is_the_box() -> None:
    seg = Segmentation(np.zeros((64, 256, 256), np.uint8), np.diag([0.7, 0.7, 2.5, 1.0]))
    scene = Scene()
    history = History(scene)
    history.execute(AddSegmentation(seg))
    history.execute(AddSegment(seg, "vessel"))
    centers = [(20.0 + 2 * n, 40.0 + n, 50.0) for n in range(30)]
    stroke = paint(seg, 1, centers, 3.0)
    history.execute(stroke)
    assert len(history.undo_stack) == 3
    box = stroke.old.shape
    # Box of the stroke: extent + 2 radii along each axis, in voxels (+1 for rounding).
    assert box[0] <= 6 / 2.5 + 2 and box[1] <= (29 + 6) / 0.7 + 2 and box[2] <= (58 + 6) / 0.7 + 2
    assert stroke.nbytes == 2 * np.prod(box) and stroke.nbytes < seg.labels.nbytes / 50
    painted = seg.labels.copy()
    assert painted.any()
    history.undo()
    assert not seg.labels.any()
    history.redo()
    assert np.array_equal(seg.labels, painted)


def test_label_above_255_widens_the_map_and_undo_narrows_it_back() -> None:
    scene, history, seg = seg_scene()
    history.execute(AddSegment(seg, "high", label=300))
    assert seg.labels.dtype == np.uint16
    history.undo()
    assert seg.labels.dtype == np.uint8


def test_split_islands_is_one_undo_step() -> None:
    scene, history, seg = seg_scene()
    history.execute(AddSegment(seg, "bone"))
    seg.labels[0:2, 0:2, 0:2] = 1
    seg.labels[4:6, 5:8, 6:10] = 1
    seg.labels[3, 0, 9] = 1
    before = seg.labels.copy()
    command = split_islands(seg, 1)
    assert isinstance(command, CommandGroup)
    history.execute(command)
    assert [s.name for s in seg.segments.values()] == ["bone", "bone_2", "bone_3"]
    assert (seg.labels == 1).sum() == 24 and (seg.labels == 2).sum() == 8 and (seg.labels == 3).sum() == 1
    history.undo()
    assert np.array_equal(seg.labels, before) and list(seg.segments) == [1]


def test_mesh_commands() -> None:
    scene = Scene()
    history = History(scene)
    mesh = tetra()
    history.execute(AddMesh(mesh, "mesh-1"))
    history.execute(RemoveMesh("mesh-1"))
    assert "mesh-1" not in scene
    history.undo()
    assert scene.get("mesh-1") is mesh
    with pytest.raises(CommandError, match="needs a mesh"):
        AddMesh(new_seg())


def test_every_command_round_trips_through_json_with_its_bulk_data() -> None:
    scene, history, seg = seg_scene()
    commands: list[Command] = [history.undo_stack[0]]
    for make in (
        lambda: AddSegment(seg, "liver", terminology={"scheme": "SCT", "code": "1", "meaning": "Liver"}),
        lambda: SetSegmentProperties(seg, 1, color=(0.5, 0.5, 0.5), name="hepar"),
        lambda: paint(seg, 1, [(2.0, 2.0, 2.0), (4.0, 3.0, 2.0)], 1.5),
        lambda: paint(seg, 1, [(2.0, 2.0, 9.0)], 0.5),
        lambda: split_islands(seg, 1),
        lambda: RemoveSegment(seg, 1),
        lambda: AddMesh(tetra(), "mesh-1"),
        lambda: RemoveMesh("mesh-1"),
        lambda: RemoveSegmentation("seg-1"),
    ):
        command = make()
        history.execute(command)
        commands.append(command)
    kinds = {c.kind for c in commands} | {"add_volume", "remove_volume", "rename_volume", "command_group"}
    plan_kinds = {"add_plan_object", "remove_plan_object", "edit_plan_object"}  # test_plan_commands.py
    assert kinds == set(COMMANDS) - plan_kinds
    for command in commands:
        data = json.loads(json.dumps(command.to_dict()))
        assert "labels" not in data or not isinstance(data["labels"], list)
        rebuilt = command_from_dict(data, bulk=command.bulk_data())
        assert type(rebuilt) is type(command) and rebuilt.to_dict() == command.to_dict()


def test_replaying_serialised_edits_on_a_replica_gives_the_same_labels() -> None:
    scene, history, seg = seg_scene()
    replica_seg = new_seg()
    replica = Scene()
    wire = []
    for make in (
        lambda: AddSegment(seg, "a"),
        lambda: AddSegment(seg, "b"),
        lambda: paint(seg, 1, [(3.0, 3.0, 4.0)], 2.0),
        lambda: paint(seg, 2, [(5.0, 4.0, 4.0), (7.0, 4.0, 6.0)], 1.0),
        lambda: paint(seg, 1, [(3.0, 3.0, 4.0)], 1.0, erase=True),
    ):
        command = make()
        history.execute(command)
        wire.append((json.dumps(command.to_dict()), command.bulk_data()))
    replica.add(replica_seg, "seg-1")
    for message, bulk in wire:
        command_from_dict(json.loads(message), bulk=bulk).apply(replica)
    assert np.array_equal(replica_seg.labels, seg.labels) and replica_seg.segments == seg.segments


def test_apply_mask_validates() -> None:
    seg = new_seg()
    seg.add_segment("a")
    with pytest.raises(SegmentationError, match="no segment with label 4"):
        apply_mask(seg, 4, np.zeros(SHAPE, bool))
    with pytest.raises(SegmentationError, match="mode must be"):
        apply_mask(seg, 1, np.zeros(SHAPE, bool), "xor")  # type: ignore[arg-type]
    with pytest.raises(SegmentationError, match="shape"):
        apply_mask(seg, 1, np.zeros((2, 2, 2), bool))
    with pytest.raises(SegmentationError, match="does not fit"):
        apply_mask(seg, 1, np.ones((2, 2, 2), bool), start=(5, 0, 0))
    assert apply_mask(seg, 1, np.zeros(SHAPE, bool)).is_empty


# --- property: random edit sequences against a numpy model ---------------------------------
class EditMachine(RuleBasedStateMachine):
    """Model: a list of (labels array, segment names) snapshots and a cursor."""

    def __init__(self) -> None:
        super().__init__()
        self.scene, self.history, self.seg = seg_scene()
        self.history.clear()
        self.states: list[tuple[np.ndarray, dict[int, str]]] = [(self.seg.labels.copy(), {})]
        self.cursor = 0
        self.count = 0

    @property
    def labels(self) -> np.ndarray:
        return self.states[self.cursor][0]

    @property
    def names(self) -> dict[int, str]:
        return self.states[self.cursor][1]

    def _push(self, labels: np.ndarray, names: dict[int, str]) -> None:
        self.states = [*self.states[: self.cursor + 1], (labels, names)]
        self.cursor += 1

    @rule()
    def add_segment(self) -> None:
        self.count += 1
        command = AddSegment(self.seg, f"s{self.count}")
        self.history.execute(command)
        assert command.label is not None
        self._push(self.labels.copy(), {**self.names, command.label: f"s{self.count}"})

    @precondition(lambda self: self.names)
    @rule(data=st.data(), mode=st.sampled_from(["add", "remove", "replace"]), overwrite=st.booleans())
    def edit(self, data: st.DataObject, mode: str, overwrite: bool) -> None:
        label = data.draw(st.sampled_from(sorted(self.names)))
        lo = [data.draw(st.integers(0, n - 1)) for n in SHAPE]
        hi = [data.draw(st.integers(a + 1, n)) for a, n in zip(lo, SHAPE, strict=True)]
        mask = np.zeros(SHAPE, bool)
        mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
        mask &= data.draw(st.sampled_from([True, False])) | (np.indices(SHAPE).sum(0) % 2 == 0)
        command = apply_mask(self.seg, label, mask, mode, overwrite=overwrite)  # type: ignore[arg-type]
        expected = self.labels.copy()
        if mode == "remove":
            expected[mask & (expected == label)] = 0
        else:
            if mode == "replace":
                expected[(expected == label) & ~mask] = 0
            expected[mask & (overwrite | (expected == 0) | (expected == label))] = label
        self.history.execute(command)
        assert command.nbytes <= 2 * mask.size
        self._push(expected, dict(self.names))

    @precondition(lambda self: self.names)
    @rule(data=st.data())
    def remove_segment(self, data: st.DataObject) -> None:
        label = data.draw(st.sampled_from(sorted(self.names)))
        self.history.execute(RemoveSegment(self.seg, label))
        expected = self.labels.copy()
        expected[expected == label] = 0
        self._push(expected, {k: v for k, v in self.names.items() if k != label})

    @rule()
    def undo(self) -> None:
        if self.cursor:
            self.history.undo()
            self.cursor -= 1

    @rule()
    def redo(self) -> None:
        if self.cursor < len(self.states) - 1:
            self.history.redo()
            self.cursor += 1

    @invariant()
    def matches_model(self) -> None:
        assert np.array_equal(self.seg.labels, self.labels)
        assert {k: s.name for k, s in self.seg.segments.items()} == self.names


EditMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_edits_match_numpy_model = EditMachine.TestCase


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_segment_opacity_is_a_number_in_0_to_1(bad: object) -> None:
    with pytest.raises(CommandError, match="opacity"):
        SetSegmentProperties("seg-1", 1, opacity=bad)
    with pytest.raises(SegmentationError, match="opacity"):
        Segment("liver", (1.0, 0.0, 0.0), opacity=bad)  # type: ignore[arg-type]


def test_segment_opacity_is_undoable_and_saved_in_the_case(tmp_path) -> None:
    from surgtwin.core.case import load_case, save_case

    scene, history, seg = seg_scene()
    history.execute(AddSegment(seg, "liver"))
    history.execute(SetSegmentProperties(seg, 1, opacity=0.35))
    assert seg.segments[1].opacity == 0.35
    save_case(scene, tmp_path / "c.stwin")
    history.undo()
    assert seg.segments[1].opacity == 1.0
    loaded = load_case(tmp_path / "c.stwin")
    assert loaded.get("seg-1").segments[1].opacity == 0.35
