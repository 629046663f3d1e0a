"""Surface meshes of segments: extraction, smoothing, decimation, repair, checks."""

from surgtwin.core.mesh.extract import extract_meshes, mesh_label_map
from surgtwin.core.mesh.options import MeshOptions
from surgtwin.core.mesh.quality import MeshQuality, check_mesh
from surgtwin.core.mesh.surface import SurfaceMesh

__all__ = ["MeshOptions", "MeshQuality", "SurfaceMesh", "check_mesh", "extract_meshes", "mesh_label_map"]
