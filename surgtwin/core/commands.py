"""Commands: every edit of a scene, reversible and serialisable.

One mechanism for undo/redo, collaboration (peers exchange ``to_dict()``), recording
and replay of rehearsals, scripting and provenance. A command validates the scene
before touching it, so a command that cannot apply raises :class:`CommandError` and
leaves the scene unchanged.

Serialised commands reference objects by id. Bulk data (voxels) never goes into
``to_dict()``; whoever rebuilds an :class:`AddVolume` supplies the volume
(``command_from_dict(data, volumes={id: volume})``), e.g. from a case file or a
peer's bulk-data channel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from surgtwin.core.errors import CommandError
from surgtwin.core.scene import Scene, is_valid_object_id
from surgtwin.core.volume import Volume

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
    def from_dict(cls, data: Mapping[str, Any], volumes: Mapping[str, Volume]) -> Command: ...

    def describe(self) -> str:
        """Short label for an undo menu ("Undo rename volume")."""
        return self.kind.replace("_", " ")


def command_from_dict(data: Mapping[str, Any], volumes: Mapping[str, Volume] | None = None) -> Command:
    """Rebuild a command from ``to_dict()`` output; ``volumes`` supplies bulk data by id."""
    if not isinstance(data, Mapping) or not isinstance(data.get("command"), str):
        raise CommandError("not a serialised command: it has no 'command' name")
    cls = COMMANDS.get(data["command"])
    if cls is None:
        raise CommandError(f"unknown command {data['command']!r} (made by a newer surgtwin?)")
    try:
        return cls.from_dict(data, volumes or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise CommandError(f"malformed {data['command']!r} command: {exc!r}") from exc


# --- helpers --------------------------------------------------------------------
def _require_volume(scene: Scene, object_id: str, action: str) -> Volume:
    if object_id not in scene:
        raise CommandError(f"cannot {action}: there is no object {object_id!r} in this case")
    obj = scene.get(object_id)
    if not isinstance(obj, Volume):
        raise CommandError(f"cannot {action}: {object_id!r} is a {scene.kind_of(object_id)}, not a volume")
    return obj


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


# --- volume commands ------------------------------------------------------------
@register_command
class AddVolume(Command):
    """Add a volume (held in memory by the command, so redo re-adds the same object)."""

    kind = "add_volume"

    def __init__(self, volume: Volume, object_id: str | None = None, index: int | None = None) -> None:
        if object_id is not None and not is_valid_object_id(object_id):
            raise CommandError(f"invalid object id {object_id!r}")
        self.volume = volume
        self.object_id = object_id  # fixed on first apply, so redo and peers reuse it
        self.index = index

    def apply(self, scene: Scene) -> None:
        if self.object_id is not None and self.object_id in scene:
            raise CommandError(
                f"cannot add volume: an object with id {self.object_id!r} is already in this case"
            )
        self.object_id = scene.add(self.volume, self.object_id, index=self.index)

    def revert(self, scene: Scene) -> None:
        if self.object_id is None:
            raise CommandError("cannot undo adding a volume that was never added")
        _require_volume(scene, self.object_id, "undo adding a volume")
        scene.remove(self.object_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.kind,
            "object_id": self.object_id,
            "index": self.index,
            "volume": describe_volume(self.volume),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], volumes: Mapping[str, Volume]) -> AddVolume:
        object_id = data["object_id"]
        volume = volumes.get(object_id) if object_id is not None else None
        if volume is None:
            raise CommandError(
                f"add_volume for {object_id!r} carries no voxels; pass the volume in 'volumes'"
            )
        described = data["volume"]
        if list(volume.voxels.shape) != list(described["shape"]) or volume.voxels.dtype != np.dtype(
            described["dtype"]
        ):
            raise CommandError(
                f"the volume supplied for {object_id!r} is {volume.voxels.dtype}{list(volume.voxels.shape)}, "
                f"the command describes {described['dtype']}{described['shape']}"
            )
        return cls(volume, object_id, data.get("index"))

    def describe(self) -> str:
        return f"add volume {self.volume.name!r}"


@register_command
class RemoveVolume(Command):
    kind = "remove_volume"

    def __init__(self, object_id: str) -> None:
        self.object_id = object_id
        self._removed: Volume | None = None  # kept for revert
        self._index: int | None = None

    def apply(self, scene: Scene) -> None:
        _require_volume(scene, self.object_id, "remove volume")
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
    def from_dict(cls, data: Mapping[str, Any], volumes: Mapping[str, Volume]) -> RemoveVolume:
        return cls(str(data["object_id"]))


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
    def from_dict(cls, data: Mapping[str, Any], volumes: Mapping[str, Volume]) -> RenameVolume:
        return cls(str(data["object_id"]), str(data["new_name"]), data.get("old_name"))

    def describe(self) -> str:
        return f"rename volume to {self.new_name!r}"


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
    "AddVolume",
    "Command",
    "History",
    "RemoveVolume",
    "RenameVolume",
    "command_from_dict",
    "describe_volume",
    "register_command",
]
