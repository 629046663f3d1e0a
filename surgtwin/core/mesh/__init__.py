"""Surface meshes of segments: extraction, smoothing, decimation, repair, checks."""

from surgtwin.core.mesh.surface import SurfaceMesh

__all__ = ["SurfaceMesh"]
