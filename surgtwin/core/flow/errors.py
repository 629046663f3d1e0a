"""Errors of the blood-flow preview."""

from __future__ import annotations

from surgtwin.core.errors import SurgTwinError


class FlowError(SurgTwinError):
    """Vessel geometry or a flow model cannot be built as asked (empty segment, bad inlet, bad values)."""

    code = "flow_error"
