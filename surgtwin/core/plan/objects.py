"""Planning objects: rulers, angles, trajectories and cut planes in patient LPS millimetres.

Each is a small dataclass with a name, a colour, a visibility flag and provenance, plus
its points. They validate themselves on creation (``PlanError`` with a message that
says what is wrong) and round-trip exactly through ``to_dict()`` / ``plan_from_dict()``
(plain JSON: lists of floats, no arrays). Scenes hold them as the object kind ``"plan"``;
edit them only through the commands in :mod:`surgtwin.core.plan.commands`.

Measurements that need only the points live here (ruler length, angle, trajectory
length and reslice frame); those that need a segmentation or meshes live in
:mod:`surgtwin.core.plan.geometry`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from surgtwin.core.errors import SegmentationError, SurgTwinError
from surgtwin.core.segmentation.colors import Color
from surgtwin.core.segmentation.model import MAX_LABEL, checked_color

Point = tuple[float, float, float]  # LPS mm

# Two points closer than this (mm) make a degenerate ruler arm, trajectory or normal.
MIN_LENGTH_MM = 1e-6


class PlanError(SurgTwinError):
    """A planning object cannot be made or measured as asked (bad points, no segment)."""

    code = "plan_error"


def checked_point(value: Any, what: str) -> Point:
    """Three finite numbers (LPS mm) as a tuple of floats, else a :class:`PlanError`."""
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise PlanError(f"{what} needs three LPS coordinates in mm, got {value!r:.80}") from None
    if array.shape != (3,) or isinstance(value, str | bytes):
        raise PlanError(f"{what} needs three LPS coordinates in mm, got {value!r:.80}")
    if not np.all(np.isfinite(array)):
        raise PlanError(f"{what} has a coordinate that is not a finite number: {array.tolist()}")
    return (float(array[0]), float(array[1]), float(array[2]))


def _vector(a: Point, b: Point) -> np.ndarray:
    return np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)


@dataclass(kw_only=True)
class PlanObject:
    """Common part: ``name``, ``color`` (RGB 0..1), ``visible``, ``provenance``."""

    plan_type: ClassVar[str]  # "ruler", ...: stored in case files and commands; never rename
    default_name: ClassVar[str]
    point_fields: ClassVar[tuple[str, ...]]
    default_color: ClassVar[Color] = (1.0, 0.85, 0.0)

    name: str = ""
    color: Color = (-1.0, -1.0, -1.0)  # replaced by the type's default colour
    visible: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name == "":
            self.name = self.default_name
        if not isinstance(self.name, str) or not self.name.strip():
            raise PlanError(f"a {self.plan_type} needs a name (a non-empty text), got {self.name!r}")
        if tuple(self.color) == (-1.0, -1.0, -1.0):
            self.color = self.default_color
        try:
            self.color = checked_color(self.color)
        except SegmentationError as exc:
            raise PlanError(f"{self.plan_type} {self.name!r}: {exc}") from None
        if not isinstance(self.visible, bool):
            raise PlanError(f"{self.plan_type} {self.name!r}: visible must be true or false")
        if not isinstance(self.provenance, dict):
            raise PlanError(f"{self.plan_type} {self.name!r}: provenance must be a mapping")
        for name in self.point_fields:
            setattr(self, name, checked_point(getattr(self, name), f"{self.name!r}: point {name!r}"))
        self.validate()

    def validate(self) -> None:
        """Type-specific checks (degenerate geometry); raise :class:`PlanError`."""

    @property
    def points(self) -> dict[str, Point]:
        return {name: getattr(self, name) for name in self.point_fields}

    def editable_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``plan_from_dict(obj.to_dict())`` gives an equal object."""
        data: dict[str, Any] = {"type": self.plan_type}
        for f in dataclasses.fields(self):
            data[f.name] = plain(getattr(self, f.name))
        return data

    def measurements(self) -> dict[str, Any]:
        """What the object measures on its own (JSON-ready)."""
        return {}


def plain(value: Any) -> Any:
    """Tuples and arrays as lists of floats; everything else as it is (for JSON)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return [float(v) for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value


@dataclass(kw_only=True)
class Ruler(PlanObject):
    """A distance between two points."""

    plan_type: ClassVar[str] = "ruler"
    default_name: ClassVar[str] = "Ruler"
    point_fields: ClassVar[tuple[str, ...]] = ("start", "end")

    start: Point
    end: Point

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(_vector(self.start, self.end)))

    def measurements(self) -> dict[str, Any]:
        return {"length_mm": self.length_mm}


@dataclass(kw_only=True)
class Angle(PlanObject):
    """The angle at ``vertex`` between the arms towards ``first`` and ``second``."""

    plan_type: ClassVar[str] = "angle"
    default_name: ClassVar[str] = "Angle"
    point_fields: ClassVar[tuple[str, ...]] = ("first", "vertex", "second")

    first: Point
    vertex: Point
    second: Point

    def validate(self) -> None:
        for end in ("first", "second"):
            if np.linalg.norm(_vector(self.vertex, getattr(self, end))) < MIN_LENGTH_MM:
                raise PlanError(
                    f"angle {self.name!r}: point {end!r} lies on the vertex, so the angle is undefined; "
                    "move it away from the vertex"
                )

    @property
    def degrees(self) -> float:
        u, v = _vector(self.vertex, self.first), _vector(self.vertex, self.second)
        # atan2 of |u x v| and u.v is accurate near 0 and 180 degrees (acos is not).
        return float(math.degrees(math.atan2(np.linalg.norm(np.cross(u, v)), float(np.dot(u, v)))))

    def measurements(self) -> dict[str, Any]:
        return {"degrees": self.degrees}


class ResliceFrame(NamedTuple):
    """An orthonormal frame for oblique slice views along a trajectory (LPS mm).

    ``axis`` is the path direction (entry -> target); ``across`` and ``up`` complete a
    right-handed basis (``across x up = axis``). The slice perpendicular to the path
    ("probe's eye") has normal ``axis``; the two slices containing the path have normals
    ``across`` and ``up``. ``matrix`` maps frame coordinates (x along ``across``, y along
    ``up``, z along ``axis``, mm) to LPS: columns ``across, up, axis, origin``.
    """

    origin: Point
    across: Point
    up: Point
    axis: Point

    @property
    def matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = self.across, self.up, self.axis, self.origin
        return m


@dataclass(kw_only=True)
class Trajectory(PlanObject):
    """A straight path (needle, screw, electrode) from ``entry`` to ``target``."""

    plan_type: ClassVar[str] = "trajectory"
    default_name: ClassVar[str] = "Trajectory"
    default_color: ClassVar[Color] = (0.0, 0.9, 0.3)
    point_fields: ClassVar[tuple[str, ...]] = ("entry", "target")

    entry: Point
    target: Point

    def validate(self) -> None:
        if self.length_mm < MIN_LENGTH_MM:
            raise PlanError(
                f"trajectory {self.name!r} has zero length: its entry and target are the same point "
                f"{list(self.entry)}; move one of them"
            )

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(_vector(self.entry, self.target)))

    @property
    def direction(self) -> np.ndarray:
        """Unit vector from entry to target."""
        d = _vector(self.entry, self.target)
        return np.asarray(d / np.linalg.norm(d))

    def point_at(self, distance_mm: float) -> Point:
        """The point ``distance_mm`` from the entry along the path (may lie beyond either end)."""
        if not math.isfinite(distance_mm):
            raise PlanError(f"trajectory {self.name!r}: a position along the path must be finite")
        p = np.asarray(self.entry) + self.direction * float(distance_mm)
        return (float(p[0]), float(p[1]), float(p[2]))

    def reslice_frame(self, distance_mm: float = 0.0) -> ResliceFrame:
        """Frame at ``distance_mm`` from the entry; ``across`` stays as close to patient Left
        (+x) as the path allows (Posterior, +y, for a path along x), so views do not spin
        as the points move."""
        axis = self.direction
        reference = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        across = reference - axis * float(np.dot(reference, axis))
        across /= np.linalg.norm(across)
        up = np.cross(axis, across)

        def point(v: np.ndarray) -> Point:
            return (float(v[0]), float(v[1]), float(v[2]))

        return ResliceFrame(self.point_at(distance_mm), point(across), point(up), point(axis))

    def measurements(self) -> dict[str, Any]:
        return {"length_mm": self.length_mm, "direction": self.direction.tolist()}


@dataclass(kw_only=True)
class CutPlane(PlanObject):
    """A plane (``point`` + ``normal``) cutting segment ``segment_label`` of segmentation
    ``segmentation_id`` (both may be unset while the plan is drafted). The side the normal
    points to is the "positive" side (the part that would be removed, by convention)."""

    plan_type: ClassVar[str] = "cut_plane"
    default_name: ClassVar[str] = "Cut plane"
    default_color: ClassVar[Color] = (0.9, 0.2, 0.2)
    point_fields: ClassVar[tuple[str, ...]] = ("point", "normal")

    point: Point
    normal: Point
    segmentation_id: str | None = None
    segment_label: int | None = None

    def validate(self) -> None:
        if float(np.linalg.norm(self.normal)) < MIN_LENGTH_MM:
            raise PlanError(
                f"cut plane {self.name!r} has a zero normal {list(self.normal)}; "
                "give the direction the plane faces"
            )
        if self.segmentation_id is not None and (
            not isinstance(self.segmentation_id, str) or not self.segmentation_id
        ):
            raise PlanError(f"cut plane {self.name!r}: segmentation_id must be an object id or null")
        label = self.segment_label
        if label is not None and (
            isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= MAX_LABEL
        ):
            raise PlanError(
                f"cut plane {self.name!r}: segment_label must be 1..{MAX_LABEL} or null, got {label!r}"
            )

    @property
    def unit_normal(self) -> np.ndarray:
        n = np.asarray(self.normal, dtype=np.float64)
        return np.asarray(n / np.linalg.norm(n))

    def signed_distance(self, points_lps: np.ndarray) -> np.ndarray:
        """Distance (mm) of each point from the plane; positive on the normal's side."""
        p = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
        return np.asarray((p - np.asarray(self.point)) @ self.unit_normal)


PLAN_TYPES: dict[str, type[PlanObject]] = {cls.plan_type: cls for cls in (Ruler, Angle, Trajectory, CutPlane)}


def plan_from_dict(data: Mapping[str, Any]) -> PlanObject:
    """Rebuild a planning object from ``to_dict()`` output; :class:`PlanError` when it does not fit."""
    if not isinstance(data, Mapping):
        raise PlanError(f"a planning object is described by a mapping, got {type(data).__name__}")
    cls = PLAN_TYPES.get(data.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise PlanError(f"unknown planning object type {data.get('type')!r} (made by a newer surgtwin?)")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names - {"type"})
    if unknown:
        raise PlanError(f"a {cls.plan_type} has no fields {unknown}")
    missing = sorted(n for n in cls.point_fields if n not in data)
    if missing:
        raise PlanError(f"a {cls.plan_type} needs the points {missing}")
    values = {k: v for k, v in data.items() if k != "type"}
    if "color" in values and isinstance(values["color"], list):
        values["color"] = tuple(values["color"])
    try:
        return cls(**values)
    except TypeError as exc:
        raise PlanError(f"a {cls.plan_type} cannot be made from {dict(data)!r:.120} ({exc})") from None


__all__ = [
    "MIN_LENGTH_MM",
    "PLAN_TYPES",
    "Angle",
    "CutPlane",
    "PlanError",
    "PlanObject",
    "Point",
    "ResliceFrame",
    "Ruler",
    "Trajectory",
    "checked_point",
    "plain",
    "plan_from_dict",
]
