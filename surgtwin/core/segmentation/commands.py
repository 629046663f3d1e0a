"""Undoable edits of segmentations: whole objects, segments, and voxel labels.

Every voxel edit (a brush stroke, a tool run) is one :class:`EditLabels`: the bounding
box of the change with the old and new label sub-arrays, so its memory follows the
size of the change, not of the volume, and it undoes in one step.

Commands built by tools hold the target :class:`Segmentation` itself and learn its
scene id on first apply (like a new object's id), so scripts can write
``history.execute(apply_mask(seg, label, mask))`` without looking ids up.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from surgtwin.core.commands import AddObject, Command, RemoveObject, register_command, require_object
from surgtwin.core.errors import CommandError, SegmentationError
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.colors import Color, default_color
from surgtwin.core.segmentation.model import (
    Segment,
    Segmentation,
    checked_color,
    checked_name,
    checked_opacity,
)

Start = tuple[int, int, int]  # (k, j, i) of a box's first voxel


def describe_segmentation(segmentation: Segmentation) -> dict[str, Any]:
    """Everything about a segmentation except its label map (JSON-ready)."""
    return {
        "name": segmentation.name,
        "dtype": segmentation.labels.dtype.str,
        "shape": list(segmentation.labels.shape),
        "ijk_to_lps": segmentation.ijk_to_lps.tolist(),
        "reference_volume_id": segmentation.reference_volume_id,
        "segments": [{"label": k, **s.to_dict()} for k, s in segmentation.segments.items()],
        "provenance": segmentation.provenance,
    }


@register_command
class AddSegmentation(AddObject):
    kind = "add_segmentation"
    object_kind = "segmentation"
    object_type = Segmentation
    bulk_noun = "label map"

    @classmethod
    def describe_object(cls, obj: Any) -> dict[str, Any]:
        return describe_segmentation(obj)

    @classmethod
    def check_supplied(cls, obj: Any, described: Mapping[str, Any]) -> str | None:
        labels = obj.labels
        if list(labels.shape) != list(described["shape"]) or labels.dtype != np.dtype(described["dtype"]):
            found = f"{labels.dtype}{list(labels.shape)}"
            return f"is {found}, the command describes {described['dtype']}{described['shape']}"
        return None


@register_command
class RemoveSegmentation(RemoveObject):
    kind = "remove_segmentation"
    object_kind = "segmentation"
    object_type = Segmentation


class SegmentationCommand(Command):
    """A command on one segmentation, named by id or (before its first apply) held."""

    def __init__(self, segmentation: Segmentation | str) -> None:
        if isinstance(segmentation, Segmentation):
            self.segmentation_id: str | None = None
            self._target: Segmentation | None = segmentation
        else:
            self.segmentation_id, self._target = str(segmentation), None

    def resolve(self, scene: Scene, action: str) -> Segmentation:
        if self.segmentation_id is None:
            found = [oid for oid, seg in scene.segmentations.items() if seg is self._target]
            if not found:
                raise CommandError(f"cannot {action}: its segmentation is not in this case")
            self.segmentation_id = found[0]
        seg: Segmentation = require_object(scene, self.segmentation_id, Segmentation, "segmentation", action)
        return seg

    def _changed(self, scene: Scene) -> None:
        assert self.segmentation_id is not None
        scene.notify_changed(self.segmentation_id)


def _require_segment(seg: Segmentation, label: int, action: str) -> Segment:
    if label not in seg.segments:
        raise CommandError(f"cannot {action}: {seg.name!r} has no segment with label {label}")
    return seg.segments[label]


@register_command
class EditLabels(SegmentationCommand):
    """Set ``labels[box] = new`` (undo: ``= old``); the box starts at ``start`` (k, j, i)."""

    kind = "edit_labels"

    def __init__(
        self,
        segmentation: Segmentation | str,
        start: Start,
        old: np.ndarray,
        new: np.ndarray,
        *,
        tool: str = "",
        parameters: Mapping[str, Any] | None = None,
        edit_id: str | None = None,
    ) -> None:
        super().__init__(segmentation)
        if old.shape != new.shape or old.ndim != 3:
            raise CommandError("a label edit needs old and new sub-arrays of the same 3D shape")
        self.start: Start = (int(start[0]), int(start[1]), int(start[2]))
        self.old, self.new = old, new
        self.tool = tool
        self.parameters = dict(parameters or {})
        self.edit_id = edit_id or f"edit-{uuid.uuid4().hex[:16]}"  # key of its bulk data

    @property
    def box(self) -> tuple[slice, slice, slice]:
        k, j, i = self.start
        n = self.old.shape
        return (slice(k, k + n[0]), slice(j, j + n[1]), slice(i, i + n[2]))

    @property
    def is_empty(self) -> bool:
        return self.old.size == 0

    @property
    def nbytes(self) -> int:
        return int(self.old.nbytes + self.new.nbytes)

    @property
    def changed_voxels(self) -> int:
        return int(np.count_nonzero(self.old != self.new))

    def _region(self, seg: Segmentation, action: str) -> np.ndarray:
        if any(
            s + n > limit for s, n, limit in zip(self.start, self.old.shape, seg.labels.shape, strict=True)
        ):
            raise CommandError(
                f"cannot {action}: the edited box {self.start}+{self.old.shape} lies outside "
                f"{seg.name!r} ({seg.labels.shape})"
            )
        return seg.labels[self.box]

    def _write(self, seg: Segmentation, expect: np.ndarray, values: np.ndarray, action: str) -> None:
        region = self._region(seg, action)
        if not np.array_equal(region, expect):
            raise CommandError(f"cannot {action}: {seg.name!r} changed since this edit was made")
        if values.size:
            present = np.flatnonzero(np.bincount(values.ravel().astype(np.int64)))
            missing = [int(v) for v in present if v and v not in seg.segments]
            if missing:
                raise CommandError(f"cannot {action}: {seg.name!r} has no segment with label {missing[0]}")
            seg.ensure_dtype_for(int(present[-1]))
        seg.labels[self.box] = values

    def apply_to(self, seg: Segmentation) -> None:
        """Apply directly to a segmentation outside any scene (scripts, tests)."""
        self._write(seg, self.old, self.new, "edit labels")

    def revert_on(self, seg: Segmentation) -> None:
        self._write(seg, self.new, self.old, "undo a label edit")

    def apply(self, scene: Scene) -> None:
        self.apply_to(self.resolve(scene, "edit labels"))
        self._changed(scene)

    def revert(self, scene: Scene) -> None:
        self.revert_on(self.resolve(scene, "undo a label edit"))
        self._changed(scene)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.kind,
            "segmentation_id": self.segmentation_id,
            "start": list(self.start),
            "shape": list(self.old.shape),
            "dtype": self.new.dtype.str,
            "edit_id": self.edit_id,
            "tool": self.tool,
            "parameters": self.parameters,
        }

    def bulk_data(self) -> dict[str, Any]:
        return {self.edit_id: (self.old, self.new)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> EditLabels:
        arrays = bulk.get(data["edit_id"])
        if not isinstance(arrays, tuple) or len(arrays) != 2:
            raise CommandError(
                f"edit_labels {data['edit_id']!r} carries no labels; pass (old, new) in 'bulk'"
            )
        old, new = (np.asarray(a) for a in arrays)
        if list(old.shape) != list(data["shape"]) or new.shape != old.shape:
            raise CommandError(
                f"the labels supplied for {data['edit_id']!r} do not have shape {data['shape']}"
            )
        start = data["start"]
        return cls(
            str(data["segmentation_id"]),
            (start[0], start[1], start[2]),
            old,
            new,
            tool=str(data.get("tool", "")),
            parameters=data.get("parameters") or {},
            edit_id=str(data["edit_id"]),
        )

    def describe(self) -> str:
        return self.tool.replace("_", " ") if self.tool else "edit labels"


@register_command
class AddSegment(SegmentationCommand):
    kind = "add_segment"

    def __init__(
        self,
        segmentation: Segmentation | str,
        name: str,
        color: Color | None = None,
        terminology: dict[str, str] | None = None,
        *,
        label: int | None = None,
        visible: bool = True,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(segmentation)
        self.name, self.color, self.terminology = name, color, terminology
        self.label = label  # fixed on first apply, so redo and peers reuse it
        self.visible = visible
        self.provenance = dict(provenance or {})
        self._widened = False

    def apply(self, scene: Scene) -> None:
        seg = self.resolve(scene, "add a segment")
        try:
            label = self.label if self.label is not None else seg.next_label()
            segment = Segment.from_dict(
                {
                    "name": self.name,
                    "color": self.color if self.color is not None else default_color(self.name),
                    "terminology": self.terminology,
                    "visible": self.visible,
                    "provenance": self.provenance,
                }
            )
            narrow = seg.labels.dtype == np.uint8
            seg.insert_segment(label, segment)
        except SegmentationError as exc:
            raise CommandError(f"cannot add segment {self.name!r}: {exc}") from exc
        self._widened = narrow and seg.labels.dtype != np.uint8
        self.label, self.color = label, segment.color
        self._changed(scene)

    def revert(self, scene: Scene) -> None:
        seg = self.resolve(scene, "undo adding a segment")
        if self.label is None:
            raise CommandError(f"cannot undo adding segment {self.name!r}: it was never added")
        _require_segment(seg, self.label, "undo adding a segment")
        if np.any(seg.labels == self.label):
            raise CommandError(f"cannot undo adding segment {self.name!r}: voxels still carry its label")
        seg.pop_segment(self.label)
        if self._widened and int(seg.labels.max(initial=0)) <= 255:
            seg.labels = seg.labels.astype(np.uint8)
        self._changed(scene)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.kind,
            "segmentation_id": self.segmentation_id,
            "label": self.label,
            "name": self.name,
            "color": None if self.color is None else [float(c) for c in self.color],
            "terminology": self.terminology,
            "visible": self.visible,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> AddSegment:
        color = data.get("color")
        return cls(
            str(data["segmentation_id"]),
            str(data["name"]),
            None if color is None else (float(color[0]), float(color[1]), float(color[2])),
            data.get("terminology"),
            label=data.get("label"),
            visible=bool(data.get("visible", True)),
            provenance=data.get("provenance"),
        )

    def describe(self) -> str:
        return f"add segment {self.name!r}"


@register_command
class RemoveSegment(SegmentationCommand):
    """Remove a segment and clear its voxels; undo restores both."""

    kind = "remove_segment"

    def __init__(self, segmentation: Segmentation | str, label: int) -> None:
        super().__init__(segmentation)
        self.label = int(label)
        self._segment: Segment | None = None
        self._position = 0
        self._edit: EditLabels | None = None

    def apply(self, scene: Scene) -> None:
        seg = self.resolve(scene, "remove a segment")
        _require_segment(seg, self.label, "remove a segment")
        from surgtwin.core.segmentation.tools.edit import apply_mask

        edit = apply_mask(seg, self.label, seg.labels == self.label, "remove")
        edit.apply_to(seg)
        self._edit = edit
        self._segment, self._position = seg.pop_segment(self.label)
        self._changed(scene)

    def revert(self, scene: Scene) -> None:
        seg = self.resolve(scene, "undo removing a segment")
        if self._segment is None or self._edit is None:
            raise CommandError(f"cannot undo removing segment {self.label}: it was never removed")
        try:
            seg.insert_segment(self.label, self._segment, self._position)
        except SegmentationError as exc:
            raise CommandError(f"cannot undo removing segment {self.label}: {exc}") from exc
        self._edit.revert_on(seg)
        self._changed(scene)

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.kind, "segmentation_id": self.segmentation_id, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> RemoveSegment:
        return cls(str(data["segmentation_id"]), int(data["label"]))

    def describe(self) -> str:
        name = self._segment.name if self._segment is not None else str(self.label)
        return f"remove segment {name!r}"


_PROPERTIES = ("name", "color", "visible", "opacity", "terminology")


@register_command
class SetSegmentProperties(SegmentationCommand):
    """Change a segment's name, colour, visibility, opacity and/or terminology (only those given)."""

    kind = "set_segment_properties"

    def __init__(self, segmentation: Segmentation | str, label: int, **changes: Any) -> None:
        super().__init__(segmentation)
        unknown = set(changes) - set(_PROPERTIES)
        if unknown:
            raise CommandError(f"segments have no properties {sorted(unknown)} (only {list(_PROPERTIES)})")
        try:
            if "color" in changes:
                changes["color"] = checked_color(changes["color"])
            if "name" in changes:
                changes["name"] = checked_name(changes["name"])
            if "opacity" in changes:
                changes["opacity"] = checked_opacity(changes["opacity"])
        except SegmentationError as exc:
            raise CommandError(f"cannot change segment {label}: {exc}") from exc
        self.label = int(label)
        self.changes = changes
        self.previous: dict[str, Any] = {}  # learnt on apply

    def apply(self, scene: Scene) -> None:
        seg = self.resolve(scene, "change a segment")
        segment = _require_segment(seg, self.label, "change a segment")
        name = self.changes.get("name")
        if name is not None:
            try:
                seg.require_free_name(name, self.label)
            except SegmentationError as exc:
                raise CommandError(f"cannot rename segment {segment.name!r}: {exc}") from exc
        self.previous = {key: getattr(segment, key) for key in self.changes}
        for key, value in self.changes.items():
            setattr(segment, key, value)
        self._changed(scene)

    def revert(self, scene: Scene) -> None:
        seg = self.resolve(scene, "undo changing a segment")
        segment = _require_segment(seg, self.label, "undo changing a segment")
        for key, value in self.previous.items():
            setattr(segment, key, value)
        self._changed(scene)

    def to_dict(self) -> dict[str, Any]:
        def plain(values: dict[str, Any]) -> dict[str, Any]:
            return {k: list(v) if k == "color" else v for k, v in values.items()}

        return {
            "command": self.kind,
            "segmentation_id": self.segmentation_id,
            "label": self.label,
            "changes": plain(self.changes),
            "previous": plain(self.previous),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> SetSegmentProperties:
        command = cls(str(data["segmentation_id"]), int(data["label"]), **dict(data["changes"]))
        command.previous = {
            k: tuple(v) if k == "color" else v for k, v in dict(data.get("previous") or {}).items()
        }
        return command

    def describe(self) -> str:
        return "change segment " + ", ".join(self.changes)


__all__ = [
    "AddSegment",
    "AddSegmentation",
    "EditLabels",
    "RemoveSegment",
    "RemoveSegmentation",
    "SegmentationCommand",
    "SetSegmentProperties",
    "describe_segmentation",
]
