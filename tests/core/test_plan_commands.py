"""Planning objects in a scene: commands, undo/redo, serialisation, case files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from surgtwin.core.case import FORMAT_VERSION, load_case, save_case
from surgtwin.core.commands import History, command_from_dict
from surgtwin.core.errors import CaseFileError, CommandError
from surgtwin.core.plan import Angle, CutPlane, Ruler, Trajectory
from surgtwin.core.plan.commands import AddPlanObject, EditPlanObject, RemovePlanObject, split_segment
from surgtwin.core.plan.geometry import cut_volumes
from surgtwin.core.scene import Scene, SceneEvent
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.model import Segment, Segmentation
from tests.core.test_plan import CENTRE, sphere_segmentation


def plan_scene() -> tuple[Scene, History]:
    scene = Scene("plans")
    history = History(scene)
    history.execute(AddSegmentation(sphere_segmentation(radius=15.0, size=35), "seg-1"))
    history.execute(AddPlanObject(Ruler(start=(0, 0, 0), end=(3, 4, 0), name="r1"), "plan-ruler"))
    history.execute(AddPlanObject(Angle(first=(1, 0, 0), vertex=(0, 0, 0), second=(0, 1, 0)), "plan-angle"))
    history.execute(
        AddPlanObject(Trajectory(entry=(0.5, -80, 3.25), target=tuple(CENTRE), name="needle"), "plan-traj")
    )
    plane = CutPlane(
        point=tuple(CENTRE + [0, 3.5, 0]), normal=(0, 1, 0), segmentation_id="seg-1", segment_label=1
    )
    history.execute(AddPlanObject(plane, "plan-cut"))
    return scene, history


def test_add_edit_remove_undo_redo() -> None:
    scene, history = plan_scene()
    events: list[SceneEvent] = []
    scene.subscribe(events.append)
    assert list(scene.plans) == ["plan-ruler", "plan-angle", "plan-traj", "plan-cut"]
    assert scene.kind_of("plan-ruler") == "plan"
    ruler = scene.get("plan-ruler")
    assert ruler.length_mm == 5.0

    history.execute(EditPlanObject("plan-ruler", end=np.array([6.0, 8.0, 0.0]), name="AP diameter"))
    assert scene.get("plan-ruler") is ruler  # edited in place: views keep their object
    assert ruler.length_mm == 10.0 and ruler.name == "AP diameter" and ruler.end == (6.0, 8.0, 0.0)
    assert events[-1] == SceneEvent("changed", "plan-ruler")
    history.undo()
    assert ruler.length_mm == 5.0 and ruler.name == "r1" and ruler.end == (3.0, 4.0, 0.0)
    history.redo()
    assert ruler.length_mm == 10.0 and ruler.name == "AP diameter"

    history.execute(RemovePlanObject("plan-angle"))
    assert "plan-angle" not in scene
    history.undo()
    assert list(scene.plans) == ["plan-ruler", "plan-angle", "plan-traj", "plan-cut"]  # same place
    while history.can_undo():
        history.undo()
    assert len(scene) == 0
    while history.can_redo():
        history.redo()
    assert scene.get("plan-ruler").length_mm == 10.0 and "plan-angle" not in scene  # removal redone


def test_bad_edits_leave_the_scene_unchanged() -> None:
    scene, history = plan_scene()
    trajectory = scene.get("plan-traj")
    before = trajectory.to_dict()
    cases = [
        (EditPlanObject("plan-traj", target=trajectory.entry), "has zero length"),
        (EditPlanObject("plan-traj", entry=(0, float("nan"), 0)), "not a finite number"),
        (EditPlanObject("plan-traj", normal=(0, 0, 1)), r"a trajectory has no fields \['normal'\]"),
        (EditPlanObject("plan-cut", normal=(0, 0, 0)), "zero normal"),
        (EditPlanObject("plan-ruler", color=(0, 0, 7)), "must be RGB"),
        (EditPlanObject("plan-nothing", name="x"), "no object 'plan-nothing'"),
        (EditPlanObject("seg-1", name="x"), "is a segmentation, not a planning object"),
        (RemovePlanObject("seg-1"), "is a segmentation, not a plan"),
    ]
    for command, message in cases:
        with pytest.raises(CommandError, match=message):
            history.execute(command)
    assert trajectory.to_dict() == before and len(history.undo_stack) == 5
    with pytest.raises(CommandError, match="at least one change"):
        EditPlanObject("plan-traj")
    with pytest.raises(CommandError, match="needs a plan"):
        AddPlanObject(Segmentation(np.zeros((1, 1, 1), np.uint8), np.eye(4)))


def test_commands_serialise_without_bulk_data_and_replay_on_a_copy() -> None:
    scene, history = plan_scene()
    history.execute(EditPlanObject("plan-traj", target=(1.0, 2.0, 3.0), visible=False))
    history.execute(RemovePlanObject("plan-angle"))
    replay_scene = Scene("replay")
    replay = History(replay_scene)
    for command in history.undo_stack:
        data = json.loads(json.dumps(command.to_dict()))
        if data["command"] == "add_segmentation":
            rebuilt = command_from_dict(data, bulk=command.bulk_data())
        else:
            assert command.bulk_data() == {}
            rebuilt = command_from_dict(data)  # no bulk needed
        replay.execute(rebuilt)
    assert list(replay_scene) == list(scene)
    for oid in scene.plans:
        assert replay_scene.get(oid).to_dict() == scene.get(oid).to_dict()
    edit = command_from_dict(history.undo_stack[-2].to_dict())
    assert isinstance(edit, EditPlanObject) and edit.previous["visible"] is True
    assert edit.describe() == "edit plan (target, visible)"
    with pytest.raises(CommandError, match="unknown planning object type"):
        command_from_dict({"command": "add_plan_object", "object_id": "p", "plan": {"type": "hologram"}})


def test_case_round_trip_is_exact_and_plans_are_json_only(tmp_path: Path) -> None:
    scene, history = plan_scene()
    history.execute(EditPlanObject("plan-angle", color=(0.125, 0.3, 0.7), name="Cobb angle"))
    path = tmp_path / "plan.stwin"
    save_case(scene, path)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = archive.namelist()
    assert manifest["format_version"] == FORMAT_VERSION == 2  # a new kind, no new layout
    assert not any(name.startswith("plan") for name in names)
    cut = next(e for e in manifest["objects"] if e["id"] == "plan-cut")
    assert cut["kind"] == "plan" and cut["type"] == "cut_plane" and cut["arrays"] == {}
    assert cut["segmentation_id"] == "seg-1" and cut["segment_label"] == 1

    again = load_case(path)
    assert list(again) == list(scene)
    for oid, plan in scene.plans.items():
        loaded = again.get(oid)
        assert type(loaded) is type(plan) and loaded == plan and loaded.to_dict() == plan.to_dict()
    save_case(again, tmp_path / "again.stwin")
    with zipfile.ZipFile(tmp_path / "again.stwin") as archive:
        objects = json.loads(archive.read("manifest.json"))["objects"]
    assert objects == manifest["objects"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda e: e.update(entry=[0, 0, "x"]), "planning object plan-traj is not valid"),
        (lambda e: e.update(target=e["entry"]), "has zero length"),
        (lambda e: e.update(type="hologram"), "unknown planning object type 'hologram'"),
        (lambda e: e.update(arrays={"x": {}}), "lists arrays"),
        (lambda e: e.pop("entry"), r"needs the points \['entry'\]"),
    ],
)
def test_damaged_plan_entries_are_refused(tmp_path: Path, damage, message: str) -> None:
    scene, _ = plan_scene()
    path = tmp_path / "plan.stwin"
    save_case(scene, path)
    with zipfile.ZipFile(path) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(content["manifest.json"])
    damage(next(e for e in manifest["objects"] if e["id"] == "plan-traj"))
    content["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    with pytest.raises(CaseFileError, match=f"cannot open case file {path}: damaged: .*{message}"):
        load_case(path)


def test_split_along_a_cut_plane_is_one_undoable_step() -> None:
    scene, history = plan_scene()
    seg: Segmentation = scene.get("seg-1")
    before = seg.labels.copy()
    expected = cut_volumes(scene.get("plan-cut"), seg)
    command = split_segment(scene, "plan-cut", "ball (resected)", (0.2, 0.2, 0.9))
    assert np.array_equal(seg.labels, before)  # nothing changes until executed
    history.execute(command)
    new = seg.label_of("ball (resected)")
    assert new == 3 and seg.segments[new].color == (0.2, 0.2, 0.9)
    removed_ml, kept_ml = seg.volume_ml(new), seg.volume_ml(1)
    assert removed_ml + kept_ml == pytest.approx(expected["total_ml"])
    assert removed_ml == pytest.approx(expected["positive_ml"], rel=0.05)
    assert np.all(seg.labels[before != 1] == before[before != 1])  # other segments untouched
    history.undo()
    assert np.array_equal(seg.labels, before) and set(seg.segments) == {1, 2}
    history.redo()
    assert seg.volume_ml(new) == removed_ml
    # the group serialises like any segmentation edit (label arrays as bulk data)
    rebuilt = command_from_dict(json.loads(json.dumps(command.to_dict())), bulk=command.bulk_data())
    assert rebuilt.to_dict() == command.to_dict()


def test_split_needs_a_plane_applied_to_an_existing_segment() -> None:
    scene, history = plan_scene()
    with pytest.raises(CommandError, match="'plan-traj' is a plan, not a cut plane"):
        split_segment(scene, "plan-traj")
    history.execute(EditPlanObject("plan-cut", segment_label=None))
    with pytest.raises(CommandError, match="not applied to a segment"):
        split_segment(scene, "plan-cut")
    history.execute(EditPlanObject("plan-cut", segment_label=9))
    with pytest.raises(CommandError, match="no segment with label 9"):
        split_segment(scene, "plan-cut")
    history.execute(EditPlanObject("plan-cut", segment_label=1))
    with pytest.raises(CommandError, match="already exists"):
        split_segment(scene, "plan-cut", "speck")
    seg: Segmentation = scene.get("seg-1")
    seg.segments[1] = Segment("ball", (1.0, 0.0, 0.0))
    assert split_segment(scene, "plan-cut").label == "split 'ball' along 'Cut plane'"
