"""surgtwin.render: the scene drawn with VTK, off-screen or in a Qt widget (see docs/rendering.md).

Imports core and VTK rendering; core never imports this package.
"""

from surgtwin.render.errors import RenderError
from surgtwin.render.offscreen import OffscreenStatus, ensure_offscreen, probe_offscreen, start_xvfb
from surgtwin.render.scene_view import CAMERA_PRESETS, SceneRenderer, mesh_to_polydata, set_mapper_clipping
from surgtwin.render.slices import (
    SliceGeometry,
    SliceImage,
    direction_letters,
    orientation_labels,
    overlay_layers,
    plane_axes,
    plane_geometry,
    render_plane,
    render_slice,
    sample_labels,
    sample_plane,
    sample_values,
    shade,
    slice_geometry,
    slice_index_at,
)
from surgtwin.render.snapshot import capture_window, render_3d_snapshot, snapshot_view, write_png
from surgtwin.render.volume_rendering import VOLUME_PRESETS, VolumePreset, VolumeRendering
from surgtwin.render.window_level import CT_WINDOW_PRESETS, apply_window, resolve_window_level

__all__ = [
    "CAMERA_PRESETS",
    "CT_WINDOW_PRESETS",
    "OffscreenStatus",
    "RenderError",
    "SceneRenderer",
    "SliceGeometry",
    "SliceImage",
    "VOLUME_PRESETS",
    "VolumePreset",
    "VolumeRendering",
    "apply_window",
    "capture_window",
    "direction_letters",
    "ensure_offscreen",
    "mesh_to_polydata",
    "orientation_labels",
    "overlay_layers",
    "plane_axes",
    "plane_geometry",
    "probe_offscreen",
    "render_3d_snapshot",
    "render_plane",
    "render_slice",
    "set_mapper_clipping",
    "resolve_window_level",
    "sample_labels",
    "sample_plane",
    "sample_values",
    "shade",
    "slice_geometry",
    "slice_index_at",
    "snapshot_view",
    "start_xvfb",
    "write_png",
]
