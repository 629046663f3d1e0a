"""Undoable edits of planning objects: add, remove, edit (move points, rename, recolour),
and splitting a segment along a cut plane.

Planning objects have no bulk data: every command here serialises completely to JSON,
so ``command_from_dict(command.to_dict())`` rebuilds it without ``bulk``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from surgtwin.core.commands import (
    AddObject,
    Command,
    CommandGroup,
    RemoveObject,
    register_command,
    require_object,
)
from surgtwin.core.errors import CommandError, SegmentationError
from surgtwin.core.plan.geometry import split_mask
from surgtwin.core.plan.objects import CutPlane, PlanError, PlanObject, plain, plan_from_dict
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.colors import Color
from surgtwin.core.segmentation.commands import AddSegment, EditLabels
from surgtwin.core.segmentation.model import Segmentation


@register_command
class AddPlanObject(AddObject):
    kind = "add_plan_object"
    object_kind = "plan"
    object_type = PlanObject

    @classmethod
    def describe_object(cls, obj: Any) -> dict[str, Any]:
        described: dict[str, Any] = obj.to_dict()
        return described

    def bulk_data(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> AddPlanObject:
        try:
            obj = plan_from_dict(data["plan"])
        except PlanError as exc:
            raise CommandError(f"malformed add_plan_object command: {exc}") from exc
        return cls(obj, data.get("object_id"), data.get("index"))

    def describe(self) -> str:
        return f"add {self.obj.plan_type.replace('_', ' ')} {self.obj.name!r}"


@register_command
class RemovePlanObject(RemoveObject):
    kind = "remove_plan_object"
    object_kind = "plan"
    object_type = PlanObject


@register_command
class EditPlanObject(Command):
    """Change some fields of a planning object: its points (``start=(...)``), ``name``,
    ``color``, ``visible``, or a cut plane's ``segmentation_id`` / ``segment_label``.
    The object stays the same Python object (views keep their reference)."""

    kind = "edit_plan_object"

    def __init__(self, object_id: str, previous: Mapping[str, Any] | None = None, **changes: Any) -> None:
        if not changes:
            raise CommandError("an edit of a planning object needs at least one change")
        if "provenance" in changes:
            raise CommandError("the provenance of a planning object cannot be edited")
        self.object_id = object_id
        self.changes = {key: plain(value) for key, value in changes.items()}
        self.previous: dict[str, Any] = dict(previous or {})  # learnt on apply

    def _set(self, scene: Scene, values: Mapping[str, Any], action: str) -> None:
        obj: PlanObject = require_object(scene, self.object_id, PlanObject, "planning object", action)
        fields = obj.editable_fields()
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise CommandError(
                f"cannot {action}: a {obj.plan_type} has no fields {unknown} (it has {list(fields)})"
            )
        try:
            updated = dataclasses.replace(obj, **values)  # validates the result
        except PlanError as exc:
            raise CommandError(f"cannot {action} {obj.name!r}: {exc}") from exc
        except TypeError as exc:
            raise CommandError(f"cannot {action} {obj.name!r}: {exc}") from exc
        for key in values:
            setattr(obj, key, getattr(updated, key))
        scene.notify_changed(self.object_id)

    def apply(self, scene: Scene) -> None:
        obj: PlanObject = require_object(scene, self.object_id, PlanObject, "planning object", "edit")
        previous = {key: plain(getattr(obj, key, None)) for key in self.changes}
        self._set(scene, self.changes, "edit")
        self.previous = previous

    def revert(self, scene: Scene) -> None:
        if not self.previous:
            raise CommandError(f"cannot undo editing {self.object_id!r}: it was never edited")
        self._set(scene, self.previous, "undo editing")

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.kind,
            "object_id": self.object_id,
            "changes": dict(self.changes),
            "previous": dict(self.previous),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bulk: Mapping[str, Any]) -> EditPlanObject:
        return cls(str(data["object_id"]), data.get("previous") or {}, **dict(data["changes"]))

    def describe(self) -> str:
        if set(self.changes) == {"name"}:
            return f"rename plan to {self.changes['name']!r}"
        return f"edit plan ({', '.join(self.changes)})"


def split_segment(
    scene: Scene,
    plane_id: str,
    new_name: str | None = None,
    color: Color | None = None,
) -> CommandGroup:
    """The command (one undo step) that moves the voxels of the cut plane's segment lying on
    the positive side into a new segment ``new_name`` (default "<segment> (cut)").

    Built from the existing segmentation commands (AddSegment + EditLabels), so it
    serialises and undoes like any segment edit. Nothing changes until it is executed.
    """
    plane: CutPlane = require_object(scene, plane_id, CutPlane, "cut plane", "split a segment")
    if plane.segmentation_id is None or plane.segment_label is None:
        raise CommandError(f"cannot split with cut plane {plane.name!r}: it is not applied to a segment")
    seg: Segmentation = require_object(
        scene, plane.segmentation_id, Segmentation, "segmentation", "split a segment"
    )
    from surgtwin.core.segmentation.tools.edit import apply_mask

    try:
        source = seg.check_label(plane.segment_label)
        name = new_name or f"{source.name} (cut)"
        seg.require_free_name(name)
        label = seg.next_label()
        mask = split_mask(plane, seg)
    except (SegmentationError, PlanError) as exc:
        raise CommandError(f"cannot split with cut plane {plane.name!r}: {exc}") from exc
    add = AddSegment(
        plane.segmentation_id,
        name,
        color,
        label=label,
        provenance={"tool": "cut_plane", "plane": plane.to_dict()},
    )
    # apply_mask checks that the label exists: register it on a throw-away copy first.
    probe = Segmentation(seg.labels, seg.ijk_to_lps, dict(seg.segments), name=seg.name)
    probe.add_segment(name, color) if color is not None else probe.add_segment(name)
    parameters = {"plane_id": plane_id, "from_label": plane.segment_label}
    probed = apply_mask(probe, label, mask, "add")
    edit = EditLabels(
        plane.segmentation_id,
        probed.start,
        probed.old,
        probed.new,
        tool="cut_plane_split",
        parameters=parameters,
    )
    return CommandGroup([add, edit], label=f"split {source.name!r} along {plane.name!r}")


__all__ = ["AddPlanObject", "EditPlanObject", "RemovePlanObject", "split_segment"]
