"""Soft-tissue deformation: hexahedral simulation meshes, tissue materials and the solver (issue 5)."""

from __future__ import annotations

from surgtwin.core.deform.solver import DeformableBody, StepStats

__all__ = ["DeformableBody", "StepStats"]
