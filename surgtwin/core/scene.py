"""Scene: the single source of truth of one case.

A scene holds the case's objects (volumes, segmentations, surface meshes, planning objects)
keyed by a stable object id, case metadata, and an append-only provenance log.
Views, the headset and session peers observe it through :meth:`Scene.subscribe`
and change it only through commands (:mod:`surgtwin.core.commands`), which call the
mutators below. No Qt here: observers are plain callables.

Adding an object kind later means one :func:`register_object_kind` call, a writer
and reader in the case format, and its commands; the scene itself stays generic.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import surgtwin
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.plan.objects import PlanObject
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

logger = logging.getLogger(__name__)

# Ids become file names inside case files (volumes/<id>.npy), so keep them boring.
OBJECT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ObjectKind(NamedTuple):
    name: str  # "volume": used in events, case manifests and command messages
    type: type
    id_prefix: str  # "vol": new ids look like "vol-3f9c..."


_KINDS: dict[str, ObjectKind] = {}


def register_object_kind(name: str, cls: type, id_prefix: str) -> None:
    """Declare a type of object the scene can hold (objects need a ``name`` attribute)."""
    _KINDS[name] = ObjectKind(name, cls, id_prefix)


def object_kind_of(obj: object) -> str:
    for kind in _KINDS.values():
        if isinstance(obj, kind.type):
            return kind.name
    raise TypeError(f"a scene cannot hold objects of type {type(obj).__name__}")


def object_kinds() -> tuple[str, ...]:
    return tuple(_KINDS)


register_object_kind("volume", Volume, "vol")
register_object_kind("segmentation", Segmentation, "seg")
register_object_kind("mesh", SurfaceMesh, "mesh")
register_object_kind("plan", PlanObject, "plan")  # rulers, angles, trajectories, cut planes


def utc_now_iso() -> str:
    """Current time in UTC, ISO 8601 with seconds precision and explicit offset."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def is_valid_object_id(object_id: object) -> bool:
    return isinstance(object_id, str) and OBJECT_ID_PATTERN.fullmatch(object_id) is not None


class SceneEvent(NamedTuple):
    """What changed: ``kind`` is "added", "removed", "changed" or "metadata"."""

    kind: str
    object_id: str | None  # None for case-level changes ("metadata")


SceneObserver = Callable[[SceneEvent], None]


class Scene:
    """One case: ordered objects by id, title, creation time and provenance log."""

    def __init__(self, title: str = "", *, created: str | None = None) -> None:
        self._title = title
        self.created: str = created if created is not None else utc_now_iso()
        # Each entry: {"action", "time", "software_version", "parameters"}.
        self.provenance: list[dict[str, Any]] = []
        self._objects: dict[str, object] = {}  # insertion order is display order
        self._observers: list[SceneObserver] = []

    # --- metadata -------------------------------------------------------------
    @property
    def title(self) -> str:
        return self._title

    @title.setter
    def title(self, value: str) -> None:
        self._title = value
        self._emit("metadata", None)

    def record(self, action: str, **parameters: Any) -> dict[str, Any]:
        """Append a provenance entry (who did what, with which software) and return it."""
        entry = make_provenance_entry(action, **parameters)
        self.provenance.append(entry)
        return entry

    # --- queries --------------------------------------------------------------
    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def __len__(self) -> int:
        return len(self._objects)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._objects))

    def get(self, object_id: str) -> Any:
        """The object with this id; ``KeyError`` naming the id when absent."""
        try:
            return self._objects[object_id]
        except KeyError:
            raise KeyError(f"no object {object_id!r} in this case") from None

    def kind_of(self, object_id: str) -> str:
        return object_kind_of(self.get(object_id))

    def ids(self, kind: str | None = None) -> list[str]:
        return [oid for oid, obj in self._objects.items() if kind is None or object_kind_of(obj) == kind]

    def index_of(self, object_id: str) -> int:
        return list(self._objects).index(object_id)

    @property
    def volumes(self) -> dict[str, Volume]:
        """A snapshot dict of the volumes by id, in scene order."""
        return {oid: obj for oid, obj in self._objects.items() if isinstance(obj, Volume)}

    @property
    def segmentations(self) -> dict[str, Segmentation]:
        return {oid: obj for oid, obj in self._objects.items() if isinstance(obj, Segmentation)}

    @property
    def meshes(self) -> dict[str, SurfaceMesh]:
        return {oid: obj for oid, obj in self._objects.items() if isinstance(obj, SurfaceMesh)}

    @property
    def plans(self) -> dict[str, PlanObject]:
        return {oid: obj for oid, obj in self._objects.items() if isinstance(obj, PlanObject)}

    def new_id(self, kind: str) -> str:
        """A fresh id, unique across machines (collaboration peers mint ids too)."""
        while True:
            candidate = f"{_KINDS[kind].id_prefix}-{uuid.uuid4().hex[:12]}"
            if candidate not in self._objects:
                return candidate

    # --- mutators (called by commands) ---------------------------------------
    def add(self, obj: object, object_id: str | None = None, *, index: int | None = None) -> str:
        """Insert ``obj`` under ``object_id`` (or a fresh one) at ``index`` (or last)."""
        kind = object_kind_of(obj)
        if object_id is None:
            object_id = self.new_id(kind)
        if not is_valid_object_id(object_id):
            raise ValueError(f"invalid object id {object_id!r} (letters, digits, '-' and '_', max 64)")
        if object_id in self._objects:
            raise ValueError(f"an object with id {object_id!r} is already in this case")
        items = list(self._objects.items())
        position = len(items) if index is None else max(0, min(index, len(items)))
        items.insert(position, (object_id, obj))
        self._objects = dict(items)
        self._emit("added", object_id)
        return object_id

    def remove(self, object_id: str) -> Any:
        obj = self.get(object_id)
        del self._objects[object_id]
        self._emit("removed", object_id)
        return obj

    def set_name(self, object_id: str, name: str) -> None:
        self.get(object_id).name = name
        self._emit("changed", object_id)

    def notify_changed(self, object_id: str) -> None:
        """For commands that edit an object in place (voxels, segments, ...)."""
        self.get(object_id)
        self._emit("changed", object_id)

    # --- observers ------------------------------------------------------------
    def subscribe(self, callback: SceneObserver) -> Callable[[], None]:
        """Call ``callback(event)`` after each change; returns a function that unsubscribes."""
        self._observers.append(callback)
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: SceneObserver) -> None:
        if callback in self._observers:
            self._observers.remove(callback)

    def _emit(self, kind: str, object_id: str | None) -> None:
        event = SceneEvent(kind, object_id)
        # Copy: an observer may unsubscribe itself while being notified.
        for callback in list(self._observers):
            try:
                callback(event)
            except Exception:
                # The change is already made; one broken view must not stop the others
                # (or leave a command half-recorded in the history).
                logger.exception("scene observer %r failed on %s", callback, event)


def make_provenance_entry(action: str, **parameters: Any) -> dict[str, Any]:
    return {
        "action": action,
        "time": utc_now_iso(),
        "software_version": surgtwin.__version__,
        "parameters": parameters,
    }
