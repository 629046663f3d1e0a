"""Scene, commands and undo/redo history (tier 1: no display, fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from surgtwin.core.commands import (
    COMMANDS,
    AddVolume,
    Command,
    History,
    RemoveVolume,
    RenameVolume,
    command_from_dict,
)
from surgtwin.core.errors import CommandError
from surgtwin.core.findings import Finding
from surgtwin.core.scene import Scene, SceneEvent
from surgtwin.core.volume import Volume


def small_volume(name: str = "v", value: int = 0) -> Volume:
    return Volume(np.full((2, 3, 4), value, dtype=np.int16), np.diag([0.5, 0.5, 2.0, 1.0]), name=name)


def names(scene: Scene) -> list[tuple[str, str]]:
    return [(oid, scene.get(oid).name) for oid in scene.ids()]


# --- scene -----------------------------------------------------------------------
def test_scene_holds_volumes_by_stable_id_in_order() -> None:
    scene = Scene("liver case")
    first = scene.add(small_volume("ct"))
    second = scene.add(small_volume("mr"), "vol-mr")
    assert first.startswith("vol-") and second == "vol-mr"
    assert scene.ids() == [first, second] == list(scene.volumes)
    assert scene.ids("volume") == [first, second]
    assert scene.kind_of(first) == "volume" and len(scene) == 2 and first in scene
    assert scene.title == "liver case" and scene.created.endswith("+00:00")


def test_scene_refuses_bad_and_duplicate_ids_and_unknown_lookups() -> None:
    scene = Scene()
    scene.add(small_volume(), "vol-1")
    with pytest.raises(ValueError, match="already"):
        scene.add(small_volume(), "vol-1")
    with pytest.raises(ValueError, match="invalid object id"):
        scene.add(small_volume(), "../evil")
    with pytest.raises(KeyError, match="vol-2"):
        scene.get("vol-2")
    with pytest.raises(TypeError):
        scene.add(object())


def test_observers_get_events_and_can_unsubscribe() -> None:
    scene = Scene()
    events: list[SceneEvent] = []
    unsubscribe = scene.subscribe(events.append)
    oid = scene.add(small_volume())
    scene.set_name(oid, "renamed")
    scene.title = "new title"
    scene.remove(oid)
    assert events == [("added", oid), ("changed", oid), ("metadata", None), ("removed", oid)]
    kind, object_id = events[0]  # events unpack as (kind, object_id)
    assert kind == "added" and object_id == oid
    unsubscribe()
    scene.add(small_volume())
    assert len(events) == 4


def test_a_failing_observer_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    scene = Scene()
    seen: list[SceneEvent] = []

    def broken(event: SceneEvent) -> None:
        raise RuntimeError("view crashed")

    scene.subscribe(broken)
    scene.subscribe(seen.append)
    scene.add(small_volume(), "vol-1")
    assert seen == [("added", "vol-1")] and "view crashed" in caplog.text


def test_provenance_entries_carry_time_and_software_version() -> None:
    scene = Scene()
    entry = scene.record("import_dicom", folder="/data/ct", series=3)
    assert scene.provenance == [entry]
    assert set(entry) == {"action", "time", "software_version", "parameters"}
    assert entry["parameters"] == {"folder": "/data/ct", "series": 3}


# --- commands ----------------------------------------------------------------------
def test_commands_on_missing_objects_raise_and_leave_scene_unchanged() -> None:
    scene = Scene()
    scene.add(small_volume("ct"), "vol-1")
    events: list[SceneEvent] = []
    scene.subscribe(events.append)
    for command in (RemoveVolume("vol-9"), RenameVolume("vol-9", "x"), AddVolume(small_volume(), "vol-1")):
        with pytest.raises(CommandError, match=r"vol-9|vol-1") as info:
            command.apply(scene)
        assert "cannot" in str(info.value)
    assert names(scene) == [("vol-1", "ct")] and events == []


def test_remove_undo_restores_the_same_object_at_the_same_place() -> None:
    scene = Scene()
    history = History(scene)
    volumes = [small_volume(n) for n in "abc"]
    for i, v in enumerate(volumes):
        history.execute(AddVolume(v, f"vol-{i}"))
    history.execute(RemoveVolume("vol-1"))
    assert scene.ids() == ["vol-0", "vol-2"]
    history.undo()
    assert scene.ids() == ["vol-0", "vol-1", "vol-2"] and scene.get("vol-1") is volumes[1]


def test_history_undo_redo_and_new_command_clears_redo() -> None:
    scene = Scene()
    history = History(scene)
    assert not history.can_undo() and not history.can_redo()
    history.execute(AddVolume(small_volume("ct"), "vol-1"))
    history.execute(RenameVolume("vol-1", "arterial"))
    assert names(scene) == [("vol-1", "arterial")]
    assert history.undo().describe() == "rename volume to 'arterial'"
    assert names(scene) == [("vol-1", "ct")] and history.can_redo()
    history.redo()
    assert names(scene) == [("vol-1", "arterial")]
    history.undo()
    history.execute(RenameVolume("vol-1", "venous"))
    assert not history.can_redo()
    with pytest.raises(CommandError, match="nothing to redo"):
        history.redo()
    history.undo()
    history.undo()
    assert len(scene) == 0
    with pytest.raises(CommandError, match="nothing to undo"):
        history.undo()
    actions = [p["action"] for p in scene.provenance]
    assert actions == ["add_volume", "rename_volume", "undo", "redo", "undo", "rename_volume", "undo", "undo"]


def test_failed_command_is_not_recorded_in_history() -> None:
    scene = Scene()
    history = History(scene)
    with pytest.raises(CommandError):
        history.execute(RenameVolume("vol-1", "x"))
    assert not history.can_undo() and scene.provenance == []


def test_history_limit_drops_oldest_steps() -> None:
    scene = Scene()
    history = History(scene, limit=2)
    for i in range(4):
        history.execute(AddVolume(small_volume(), f"vol-{i}"))
    history.undo()
    history.undo()
    assert not history.can_undo() and scene.ids() == ["vol-0", "vol-1"]


# --- serialisation -----------------------------------------------------------------
def test_every_command_kind_round_trips_through_json() -> None:
    volume = small_volume("ct", 7)
    volume.findings.append(Finding("gantry_tilt", "tilted", "/a.dcm"))
    scene = Scene()
    history = History(scene)
    commands: list[Command] = [AddVolume(volume), RenameVolume("", "arterial"), RemoveVolume("")]
    history.execute(commands[0])
    oid = commands[0].object_id
    commands[1] = RenameVolume(oid, "arterial")
    commands[2] = RemoveVolume(oid)
    history.execute(commands[1])
    history.execute(commands[2])
    assert {c.kind for c in commands} == {"add_volume", "rename_volume", "remove_volume"} <= set(COMMANDS)
    for command in commands:
        data = json.loads(json.dumps(command.to_dict()))
        rebuilt = command_from_dict(data, volumes={oid: volume})
        assert type(rebuilt) is type(command) and rebuilt.to_dict() == command.to_dict()
    assert "voxels" not in json.dumps(commands[0].to_dict())


def test_replaying_serialised_commands_rebuilds_the_scene() -> None:
    """What a session peer or a rehearsal replay does."""
    source = Scene()
    history = History(source)
    vols = {"vol-a": small_volume("a"), "vol-b": small_volume("b")}
    for oid, v in vols.items():
        history.execute(AddVolume(v, oid))
    history.execute(RenameVolume("vol-a", "renamed"))
    history.execute(RemoveVolume("vol-b"))
    wire = [json.dumps(c.to_dict()) for c in history.undo_stack]
    replica = Scene()
    for message in wire:
        data = json.loads(message)
        copies = {oid: Volume(v.voxels.copy(), v.ijk_to_lps, name=v.name) for oid, v in vols.items()}
        command_from_dict(data, volumes=copies).apply(replica)
    assert names(replica) == names(source) == [("vol-a", "renamed")]


def test_command_from_dict_refuses_bad_input() -> None:
    with pytest.raises(CommandError, match="unknown command"):
        command_from_dict({"command": "teleport"})
    with pytest.raises(CommandError, match="no 'command'"):
        command_from_dict({"object_id": "vol-1"})
    with pytest.raises(CommandError, match="malformed"):
        command_from_dict({"command": "rename_volume"})
    added = AddVolume(small_volume(), "vol-1").to_dict()
    with pytest.raises(CommandError, match="carries no voxels"):
        command_from_dict(added)
    wrong = Volume(np.zeros((3, 3, 3), np.float32), np.eye(4))
    with pytest.raises(CommandError, match="the command describes"):
        command_from_dict(added, volumes={"vol-1": wrong})


# --- property: random edit sequences match a trivial model ---------------------------
class HistoryMachine(RuleBasedStateMachine):
    """The model is a list of snapshots [(id, name), ...] and a cursor into it."""

    def __init__(self) -> None:
        super().__init__()
        self.scene = Scene()
        self.history = History(self.scene)
        self.states: list[list[tuple[str, str]]] = [[]]
        self.cursor = 0
        self.counter = 0

    @property
    def current(self) -> list[tuple[str, str]]:
        return self.states[self.cursor]

    def _push(self, state: list[tuple[str, str]]) -> None:
        self.states = [*self.states[: self.cursor + 1], state]
        self.cursor += 1

    @rule(name=st.text(max_size=5))
    def add(self, name: str) -> None:
        self.counter += 1
        oid = f"vol-{self.counter}"
        self.history.execute(AddVolume(small_volume(name), oid))
        self._push([*self.current, (oid, name)])

    @precondition(lambda self: self.current)
    @rule(data=st.data(), name=st.text(max_size=5))
    def rename(self, data: st.DataObject, name: str) -> None:
        i = data.draw(st.integers(0, len(self.current) - 1))
        oid = self.current[i][0]
        self.history.execute(RenameVolume(oid, name))
        self._push([(o, name if o == oid else n) for o, n in self.current])

    @precondition(lambda self: self.current)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(self.current) - 1))
        self.history.execute(RemoveVolume(self.current[i][0]))
        self._push(self.current[:i] + self.current[i + 1 :])

    @rule(name=st.text(max_size=3), which=st.sampled_from(["rename", "remove"]))
    def edit_missing(self, name: str, which: str) -> None:
        command = RenameVolume("vol-missing", name) if which == "rename" else RemoveVolume("vol-missing")
        with pytest.raises(CommandError):
            self.history.execute(command)

    @rule()
    def undo(self) -> None:
        assert self.history.can_undo() == (self.cursor > 0)
        if self.cursor == 0:
            with pytest.raises(CommandError):
                self.history.undo()
        else:
            self.history.undo()
            self.cursor -= 1

    @rule()
    def redo(self) -> None:
        assert self.history.can_redo() == (self.cursor < len(self.states) - 1)
        if self.history.can_redo():
            self.history.redo()
            self.cursor += 1

    @invariant()
    def scene_matches_model(self) -> None:
        assert names(self.scene) == self.current


HistoryMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_history_matches_model = HistoryMachine.TestCase
