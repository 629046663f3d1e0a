"""Errors of the tissue-deformation simulation."""

from __future__ import annotations

from surgtwin.core.errors import SurgTwinError


class SimulationError(SurgTwinError):
    """A simulation mesh, material or solve cannot be set up as asked (bad values, empty segment)."""

    code = "simulation_error"
