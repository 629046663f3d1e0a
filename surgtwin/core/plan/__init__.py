"""Surgical planning objects (ruler, angle, trajectory, cut plane) and their measurements.

Objects: :mod:`surgtwin.core.plan.objects`; measurements against anatomy:
:mod:`surgtwin.core.plan.geometry`; undoable commands: :mod:`surgtwin.core.plan.commands`
(not imported here: the scene imports this package, and the commands import the scene).
See docs/planning.md.
"""

from surgtwin.core.plan.objects import (
    PLAN_TYPES,
    Angle,
    CutPlane,
    PlanError,
    PlanObject,
    ResliceFrame,
    Ruler,
    Trajectory,
    plan_from_dict,
)

__all__ = [
    "PLAN_TYPES",
    "Angle",
    "CutPlane",
    "PlanError",
    "PlanObject",
    "ResliceFrame",
    "Ruler",
    "Trajectory",
    "plan_from_dict",
]
