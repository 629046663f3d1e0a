"""Errors of the rendering layer (part of the one surgtwin error hierarchy)."""

from __future__ import annotations

from surgtwin.core.errors import SurgTwinError


class RenderError(SurgTwinError):
    """A view cannot be drawn (no usable OpenGL context, unknown preset, bad slice...)."""

    code = "render_error"
