"""surgtwin.render: the scene drawn with VTK, off-screen or in a Qt widget (see docs/rendering.md).

Imports core and VTK rendering; core never imports this package.
"""

from surgtwin.render.errors import RenderError
from surgtwin.render.offscreen import OffscreenStatus, ensure_offscreen, probe_offscreen, start_xvfb
from surgtwin.render.scene_view import CAMERA_PRESETS, SceneRenderer, mesh_to_polydata
from surgtwin.render.slices import (
    SliceImage,
    direction_letters,
    orientation_labels,
    render_slice,
    slice_geometry,
)
from surgtwin.render.snapshot import capture_window, render_3d_snapshot, snapshot_view, write_png
from surgtwin.render.window_level import CT_WINDOW_PRESETS, apply_window, resolve_window_level

__all__ = [
    "CAMERA_PRESETS",
    "CT_WINDOW_PRESETS",
    "OffscreenStatus",
    "RenderError",
    "SceneRenderer",
    "SliceImage",
    "apply_window",
    "capture_window",
    "direction_letters",
    "ensure_offscreen",
    "mesh_to_polydata",
    "orientation_labels",
    "probe_offscreen",
    "render_3d_snapshot",
    "render_slice",
    "resolve_window_level",
    "slice_geometry",
    "snapshot_view",
    "start_xvfb",
    "write_png",
]
