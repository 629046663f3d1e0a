"""Segmentation: one label map on a reference volume's grid, with named segments.

Segments do not overlap: each voxel holds one label value (0 = background), which
keeps boundaries between touching structures shared and edits simple to undo.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.colors import Color, default_color
from surgtwin.core.volume import Volume

MAX_LABEL = 65535


def checked_name(name: Any) -> str:
    """A segment name: a text that is not empty or blank."""
    if not isinstance(name, str) or not name.strip():
        raise SegmentationError(f"a segment name must be a non-empty text, got {name!r}")
    return name


def checked_color(color: Any, name: str = "") -> Color:
    """An RGB colour of three finite numbers in 0..1 (as floats), else a SegmentationError."""
    what = f"segment {name!r}: colour" if name else "colour"
    try:
        values = tuple(color)
    except TypeError:
        raise SegmentationError(f"{what} {color!r} must be RGB in 0..1") from None
    if len(values) != 3 or not all(
        isinstance(c, int | float | np.integer | np.floating)
        and not isinstance(c, bool | np.bool_)
        and math.isfinite(float(c))
        and 0.0 <= float(c) <= 1.0
        for c in values
    ):
        shown = tuple(float(c) if isinstance(c, np.generic) else c for c in values)
        raise SegmentationError(f"{what} {shown!r} must be RGB in 0..1")
    return (float(values[0]), float(values[1]), float(values[2]))


def checked_opacity(opacity: Any, name: str = "") -> float:
    """An opacity: a finite number in 0..1 (0 = invisible, 1 = opaque)."""
    what = f"segment {name!r}: opacity" if name else "opacity"
    if (
        isinstance(opacity, bool | np.bool_)
        or not isinstance(opacity, int | float | np.integer | np.floating)
        or not math.isfinite(float(opacity))
        or not 0.0 <= float(opacity) <= 1.0
    ):
        raise SegmentationError(f"{what} {opacity!r} must be a number in 0..1")
    return float(opacity)


def unique_name(name: str, taken: Iterable[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, ... : the first not in ``taken``."""
    used = set(taken)
    if name not in used:
        return name
    n = 2
    while f"{name}_{n}" in used:
        n += 1
    return f"{name}_{n}"


@dataclass
class Segment:
    name: str
    color: Color
    terminology: dict[str, str] | None = (
        None  # e.g. {"scheme": "SCT", "code": "10200004", "meaning": "Liver"}
    )
    visible: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)  # how it was made (tool, parameters)
    opacity: float = 1.0  # display: 3D surface opacity and a factor on the slice overlay

    def __post_init__(self) -> None:
        self.name = checked_name(self.name)
        self.color = checked_color(self.color, self.name)
        self.opacity = checked_opacity(self.opacity, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "color": [float(c) for c in self.color],
            "terminology": self.terminology,
            "visible": self.visible,
            "opacity": self.opacity,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(
            name=data["name"],
            color=data["color"],
            terminology=data.get("terminology"),
            visible=bool(data.get("visible", True)),
            provenance=dict(data.get("provenance") or {}),
            opacity=float(data.get("opacity", 1.0)),
        )


@dataclass
class Segmentation:
    """``labels[k, j, i]`` on the grid ``ijk_to_lps``; ``segments`` keyed by label value."""

    labels: np.ndarray
    ijk_to_lps: np.ndarray
    segments: dict[int, Segment] = field(default_factory=dict)
    name: str = "Segmentation"
    reference_volume_id: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ijk_to_lps = np.asarray(self.ijk_to_lps, dtype=np.float64)
        if self.labels.ndim != 3 or self.labels.dtype not in (np.uint8, np.uint16):
            raise SegmentationError("a label map is a 3D array of uint8 or uint16")
        if self.ijk_to_lps.shape != (4, 4):
            raise SegmentationError("ijk_to_lps must be a 4x4 matrix")
        seen: set[str] = set()
        for segment in self.segments.values():
            if segment.name in seen:
                raise SegmentationError(f"two segments are named {segment.name!r}; names must be unique")
            seen.add(segment.name)

    @classmethod
    def empty_like(
        cls,
        volume: Volume,
        name: str = "Segmentation",
        reference_volume_id: str | None = None,
    ) -> Segmentation:
        return cls(
            np.zeros(volume.voxels.shape, dtype=np.uint8),
            volume.ijk_to_lps.copy(),
            name=name,
            reference_volume_id=reference_volume_id,
        )

    # --- geometry ---------------------------------------------------------------
    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.ijk_to_lps[:3, :3], axis=0)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.ijk_to_lps[:3, :3])))

    # --- segments ---------------------------------------------------------------
    def label_of(self, name: str) -> int:
        for label, segment in self.segments.items():
            if segment.name == name:
                return label
        known = ", ".join(s.name for s in self.segments.values()) or "none"
        raise SegmentationError(f"no segment named {name!r} (segments: {known})")

    def next_label(self) -> int:
        label = max(self.segments, default=0) + 1
        if label > MAX_LABEL:
            raise SegmentationError("too many segments (more than 65535)")
        return label

    def add_segment(self, name: str, color: Color | None = None, **details: Any) -> int:
        """Register a new (empty) segment and return its label value; voxels are untouched."""
        segment = Segment(name=name, color=color or default_color(checked_name(name)), **details)
        self.require_free_name(segment.name)
        label = self.next_label()
        self.ensure_dtype_for(label)
        self.segments[label] = segment
        return label

    def require_free_name(self, name: str, label: int | None = None) -> None:
        """Refuse ``name`` when a segment other than ``label`` already has it."""
        for other, segment in self.segments.items():
            if segment.name == name and other != label:
                raise SegmentationError(f"a segment named {name!r} already exists (label {other})")

    def insert_segment(self, label: int, segment: Segment, position: int | None = None) -> None:
        """Register ``segment`` under ``label`` at ``position`` in display order (default last)."""
        if not 1 <= label <= MAX_LABEL:
            raise SegmentationError(f"segment label {label} is outside 1..{MAX_LABEL}")
        if label in self.segments:
            raise SegmentationError(f"label {label} is already segment {self.segments[label].name!r}")
        self.require_free_name(segment.name)
        self.ensure_dtype_for(label)
        items = list(self.segments.items())
        where = len(items) if position is None else max(0, min(position, len(items)))
        items.insert(where, (label, segment))
        self.segments = dict(items)

    def pop_segment(self, label: int) -> tuple[Segment, int]:
        """Unregister ``label`` (voxels untouched); returns the segment and its display position."""
        if label not in self.segments:
            raise SegmentationError(f"there is no segment with label {label}")
        position = list(self.segments).index(label)
        return self.segments.pop(label), position

    def check_label(self, label: int) -> Segment:
        """The segment ``label``, or a :class:`SegmentationError` naming the ones there are."""
        if (
            isinstance(label, bool)
            or not isinstance(label, int | np.integer)
            or int(label) not in self.segments
        ):
            known = ", ".join(f"{k} ({s.name})" for k, s in self.segments.items()) or "none"
            raise SegmentationError(f"there is no segment with label {label!r} (segments: {known})")
        return self.segments[int(label)]

    def ensure_dtype_for(self, label: int) -> None:
        """Widen the label map to uint16 before a label above 255 is written."""
        if label > 255 and self.labels.dtype == np.uint8:
            self.labels = self.labels.astype(np.uint16)

    def mask(self, label: int) -> np.ndarray:
        return self.labels == label

    def voxel_count(self, label: int) -> int:
        return int(np.count_nonzero(self.labels == label))

    def volume_ml(self, label: int) -> float:
        return self.voxel_count(label) * self.voxel_volume_mm3 / 1000.0
