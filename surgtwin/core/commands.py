"""Commands: every edit of a scene, reversible and serialisable.

One mechanism for undo/redo, collaboration (peers exchange ``to_dict()``), recording
and replay of rehearsals, scripting and provenance. A command validates the scene
before touching it, so a command that cannot apply raises :class:`CommandError` and
leaves the scene unchanged.

Serialised commands reference objects by id. Bulk data (voxels, label arrays, mesh
arrays) never goes into ``to_dict()`` (which is also what the provenance log keeps);
``bulk_data()`` hands it out by key, and whoever rebuilds the command supplies it
(``command_from_dict(data, bulk=command.bulk_data())``), e.g. from a case file or a
peer's bulk-data channel.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from surgtwin.core.errors import CommandError
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.scene import Scene, is_valid_object_id
from surgtwin.core.volume import Volume

# Modules whose commands register themselves on import; loaded before rebuilding one.
_COMMAND_MODULES = ("surgtwin.core.segmentation.commands", "surgtwin.core.plan.commands")

COMMANDS: dict[str, type[Command]] = {}


def register_command(cls: type[Command]) -> type[Command]:
    """Class decorator: make ``cls`` rebuildable by :func:`command_from_dict`."""
    if cls.kind in COMMANDS:
        raise ValueError(f"command kind {cls.kind!r} registered twice")
    COMMANDS[cls.kind] = cls
    return cls


class Command(ABC):
    kind: ClassVar[str]  # stable name in serialised form; never rename

    @abstractmethod
    def apply(self, scene: Scene) -> None: ...

    @abstractmethod
    def revert(self, scene: Scene) -> None: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; always has ``"command": kind``."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> Command:
        """Rebuild from ``to_dict()`` output; ``bulk`` maps keys to what ``bulk_data()`` gave."""

    def bulk_data(self) -> dict[str, Any]:
        """Arrays/objects ``to_dict()`` refers to by key (never put in JSON)."""
        return {}

    def describe(self) -> str:
        """Short label for an undo menu ("Undo rename volume")."""
        return self.kind.replace("_", " ")


def load_command_modules() -> None:
    """Import the modules that register the core's other commands (segmentation edits)."""
    for name in _COMMAND_MODULES:
        importlib.import_module(name)


def command_from_dict(
    data: Mapping[str, Any],
    volumes: Mapping[str, Any] | None = None,
    *,
    bulk: Mapping[str, Any] | None = None,
) -> Command:
    """Rebuild a command from ``to_dict()`` output; ``bulk`` (or, for volumes, the older
    name ``volumes``) supplies the bulk data by key."""
    if not isinstance(data, Mapping) or not isinstance(data.get("command"), str):
        raise CommandError("not a serialised command: it has no 'command' name")
    load_command_modules()
    cls = COMMANDS.get(data["command"])
    if cls is None:
        raise CommandError(f"unknown command {data['command']!r} (made by a newer surgtwin?)")
    try:
        return cls.from_dict(data, {**(volumes or {}), **(bulk or {})})
    except (KeyError, TypeError, ValueError) as exc:
        raise CommandError(f"malformed {data['command']!r} command: {exc!r}") from exc


# --- helpers --------------------------------------------------------------------
def require_object(scene: Scene, object_id: str, cls: type, kind: str, action: str) -> Any:
    """The ``cls`` object ``object_id``, or :class:`CommandError` saying why not."""
    if object_id not in scene:
        raise CommandError(f"cannot {action}: there is no object {object_id!r} in this case")
    obj = scene.get(object_id)
    if not isinstance(obj, cls):
        raise CommandError(f"cannot {action}: {object_id!r} is a {scene.kind_of(object_id)}, not a {kind}")
    return obj


def _require_volume(scene: Scene, object_id: str, action: str) -> Volume:
    volume: Volume = require_object(scene, object_id, Volume, "volume", action)
    return volume


def describe_volume(volume: Volume) -> dict[str, Any]:
    """Everything about a volume except its voxels (JSON-ready)."""
    return {
        "name": volume.name,
        "modality": volume.modality,
        "units": volume.units,
        "dtype": volume.voxels.dtype.str,
        "shape": list(volume.voxels.shape),
        "ijk_to_lps": volume.ijk_to_lps.tolist(),
        "provenance": volume.provenance,
        "findings": [f.to_dict() for f in volume.findings],
        "decisions": list(volume.decisions),
    }


def describe_mesh(mesh: SurfaceMesh) -> dict[str, Any]:
    """Everything about a mesh except its arrays (JSON-ready)."""
    return {
        "name": mesh.name,
        "color": [float(c) for c in mesh.color],
        "segment_label": mesh.segment_label,
        "segmentation_id": mesh.segmentation_id,
        "vertex_count": len(mesh.vertices),
        "triangle_count": mesh.triangle_count,
        "provenance": mesh.provenance,
    }


# --- adding and removing whole objects ------------------------------------------
class AddObject(Command):
    """Add an object (held by the command, so redo re-adds the same object).

    Subclasses name the ``object_kind`` and how to describe and check the object.
    """

    object_kind: ClassVar[str]
    object_type: ClassVar[type]
    bulk_noun: ClassVar[str] = "data"  # "voxels": said when the bulk data is missing

    def __init__(self, obj: Any, object_id: str | None = None, index: int | None = None) -> None:
        if object_id is not None and not is_valid_object_id(object_id):
            raise CommandError(f"invalid object id {object_id!r}")
        if not isinstance(obj, self.object_type):
            raise CommandError(f"{self.kind} needs a {self.object_kind}, got {type(obj).__name__}")
        self.obj: Any = obj
        self.object_id = object_id  # fixed on first apply, so redo and peers reuse it
        self.index = index

    @classmethod
    def describe_object(cls, obj: Any) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def check_supplied(cls, obj: Any, described: Mapping[str, Any]) -> str | None:
        """Why the supplied bulk object does not fit ``described`` (None when it does)."""
        return None

    def apply(self, scene: Scene) -> None:
        if self.object_id is not None and self.object_id in scene:
            raise CommandError(
                f"cannot add {self.object_kind}: an object with id {self.object_id!r} is already in this case"
            )
        self.object_id = scene.add(self.obj, self.object_id, index=self.index)

    def revert(self, scene: Scene) -> None:
        if self.object_id is None:
            raise CommandError(f"cannot undo adding a {self.object_kind} that was never added")
        require_object(
            scene, self.object_id, self.object_type, self.object_kind, f"undo adding a {self.object_kind}"
        )
        scene.remove(self.object_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.kind,
            "object_id": self.object_id,
            "index": self.index,
            self.object_kind: self.describe_object(self.obj),
        }

    def bulk_data(self) -> dict[str, Any]:
        return {} if self.object_id is None else {self.object_id: self.obj}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> AddObject:
        object_id = data["object_id"]
        obj = bulk.get(object_id) if object_id is not None else None
        if not isinstance(obj, cls.object_type):
            raise CommandError(
                f"{cls.kind} for {object_id!r} carries no {cls.bulk_noun}; "
                f"pass the {cls.object_kind} in 'bulk'"
            )
        problem = cls.check_supplied(obj, data[cls.object_kind])
        if problem is not None:
            raise CommandError(f"the {cls.object_kind} supplied for {object_id!r} {problem}")
        return cls(obj, object_id, data.get("index"))

    def describe(self) -> str:
        return f"add {self.object_kind} {getattr(self.obj, 'name', '')!r}"


class RemoveObject(Command):
    object_kind: ClassVar[str]
    object_type: ClassVar[type]

    def __init__(self, object_id: str) -> None:
        self.object_id = object_id
        self._removed: Any = None  # kept for revert
        self._index: int | None = None

    def apply(self, scene: Scene) -> None:
        require_object(
            scene, self.object_id, self.object_type, self.object_kind, f"remove {self.object_kind}"
        )
        self._index = scene.index_of(self.object_id)
        self._removed = scene.remove(self.object_id)

    def revert(self, scene: Scene) -> None:
        if self._removed is None:
            raise CommandError(f"cannot undo removing {self.object_id!r}: it was never removed")
        if self.object_id in scene:
            raise CommandError(f"cannot undo removing {self.object_id!r}: that id is in use again")
        scene.add(self._removed, self.object_id, index=self._index)

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.kind, "object_id": self.object_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> RemoveObject:
        return cls(str(data["object_id"]))


# --- volume commands ------------------------------------------------------------
@register_command
class AddVolume(AddObject):
    kind = "add_volume"
    object_kind = "volume"
    object_type = Volume
    bulk_noun = "voxels"

    def __init__(self, volume: Volume, object_id: str | None = None, index: int | None = None) -> None:
        super().__init__(volume, object_id, index)

    @property
    def volume(self) -> Volume:
        volume: Volume = self.obj
        return volume

    @classmethod
    def describe_object(cls, obj: Any) -> dict[str, Any]:
        return describe_volume(obj)

    @classmethod
    def check_supplied(cls, obj: Any, described: Mapping[str, Any]) -> str | None:
        voxels = obj.voxels
        if list(voxels.shape) != list(described["shape"]) or voxels.dtype != np.dtype(described["dtype"]):
            return (
                f"is {voxels.dtype}{list(voxels.shape)}, "
                f"the command describes {described['dtype']}{described['shape']}"
            )
        return None


@register_command
class RemoveVolume(RemoveObject):
    kind = "remove_volume"
    object_kind = "volume"
    object_type = Volume


@register_command
class RenameVolume(Command):
    kind = "rename_volume"

    def __init__(self, object_id: str, new_name: str, old_name: str | None = None) -> None:
        self.object_id = object_id
        self.new_name = new_name
        self.old_name = old_name  # learnt on apply

    def apply(self, scene: Scene) -> None:
        volume = _require_volume(scene, self.object_id, "rename volume")
        self.old_name = volume.name
        scene.set_name(self.object_id, self.new_name)

    def revert(self, scene: Scene) -> None:
        _require_volume(scene, self.object_id, "undo renaming a volume")
        if self.old_name is None:
            raise CommandError(f"cannot undo renaming {self.object_id!r}: it was never renamed")
        scene.set_name(self.object_id, self.old_name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.kind,
            "object_id": self.object_id,
            "new_name": self.new_name,
            "old_name": self.old_name,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> RenameVolume:
        return cls(str(data["object_id"]), str(data["new_name"]), data.get("old_name"))

    def describe(self) -> str:
        return f"rename volume to {self.new_name!r}"


# --- mesh commands ----------------------------------------------------------------
@register_command
class AddMesh(AddObject):
    kind = "add_mesh"
    object_kind = "mesh"
    object_type = SurfaceMesh
    bulk_noun = "vertices or faces"

    @classmethod
    def describe_object(cls, obj: Any) -> dict[str, Any]:
        return describe_mesh(obj)

    @classmethod
    def check_supplied(cls, obj: Any, described: Mapping[str, Any]) -> str | None:
        found = (len(obj.vertices), obj.triangle_count)
        expected = (described["vertex_count"], described["triangle_count"])
        if found != tuple(expected):
            return f"has {found[0]} vertices and {found[1]} triangles, the command describes {expected}"
        return None


@register_command
class RemoveMesh(RemoveObject):
    kind = "remove_mesh"
    object_kind = "mesh"
    object_type = SurfaceMesh


# --- several commands as one undo step --------------------------------------------
@register_command
class CommandGroup(Command):
    """Commands applied in order and undone in reverse as one step (e.g. "split islands":
    add N segments, then one label edit). All or nothing: a failing member reverts the
    ones before it."""

    kind = "command_group"

    def __init__(self, commands: list[Command], label: str = "") -> None:
        self.commands = list(commands)
        self.label = label

    def apply(self, scene: Scene) -> None:
        done: list[Command] = []
        try:
            for command in self.commands:
                command.apply(scene)
                done.append(command)
        except CommandError:
            for command in reversed(done):
                command.revert(scene)
            raise

    def revert(self, scene: Scene) -> None:
        done: list[Command] = []
        try:
            for command in reversed(self.commands):
                command.revert(scene)
                done.append(command)
        except CommandError:
            for command in reversed(done):
                command.apply(scene)
            raise

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.kind, "label": self.label, "commands": [c.to_dict() for c in self.commands]}

    def bulk_data(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for command in self.commands:
            merged.update(command.bulk_data())
        return merged

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> CommandGroup:
        return cls([command_from_dict(d, bulk=bulk) for d in data["commands"]], str(data.get("label", "")))

    def describe(self) -> str:
        return self.label or "; ".join(c.describe() for c in self.commands)


# --- history --------------------------------------------------------------------
class History:
    """Undo/redo stacks over one scene; each step is recorded in the scene's provenance."""

    def __init__(self, scene: Scene, limit: int | None = None) -> None:
        self.scene = scene
        self.limit = limit  # max undo steps kept (None: unlimited)
        self._undo: list[Command] = []
        self._redo: list[Command] = []

    def execute(self, command: Command) -> None:
        command.apply(self.scene)  # raises before anything is recorded
        self._undo.append(command)
        self._redo.clear()
        if self.limit is not None and len(self._undo) > self.limit:
            del self._undo[: len(self._undo) - self.limit]
        self.scene.record(command.kind, **command.to_dict())

    def undo(self) -> Command:
        if not self._undo:
            raise CommandError("nothing to undo")
        command = self._undo[-1]
        command.revert(self.scene)  # a failure leaves both stacks as they were
        self._redo.append(self._undo.pop())
        self.scene.record("undo", command=command.to_dict())
        return command

    def redo(self) -> Command:
        if not self._redo:
            raise CommandError("nothing to redo")
        command = self._redo[-1]
        command.apply(self.scene)
        self._undo.append(self._redo.pop())
        self.scene.record("redo", command=command.to_dict())
        return command

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_stack(self) -> tuple[Command, ...]:
        return tuple(self._undo)

    @property
    def redo_stack(self) -> tuple[Command, ...]:
        return tuple(self._redo)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()


__all__ = [
    "COMMANDS",
    "AddMesh",
    "AddObject",
    "AddVolume",
    "Command",
    "CommandGroup",
    "History",
    "RemoveMesh",
    "RemoveObject",
    "RemoveVolume",
    "RenameVolume",
    "command_from_dict",
    "describe_mesh",
    "describe_volume",
    "load_command_modules",
    "register_command",
    "require_object",
]
