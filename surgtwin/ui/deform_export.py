"""Writing the live preview's deformed surface to a file (PLY, STL or OBJ + MTL).

The case is not changed: the surface is the preview's own copy of the segment's mesh with the
simulation's points.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from surgtwin.core.errors import SurgTwinError
from surgtwin.core.export.common import write_atomic
from surgtwin.core.export.obj import obj_and_mtl
from surgtwin.core.export.ply import ply_bytes
from surgtwin.core.export.stl import stl_bytes
from surgtwin.core.mesh.surface import SurfaceMesh

EXPORT_SUFFIXES = (".ply", ".stl", ".obj")


def write_deformed_surface(surface: SurfaceMesh, points_mm: np.ndarray, path: str | Path) -> Path:
    """Write ``surface`` with its vertices moved to ``points_mm`` (LPS mm) as PLY, STL or OBJ
    (+ MTL), chosen by the file's suffix. Returns the file written."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise SurgTwinError(f"{out.name}: export the deformed surface as .ply, .stl or .obj")
    mesh = replace(surface, vertices=np.array(points_mm, dtype=np.float64))
    if not np.isfinite(mesh.vertices).all():
        raise SurgTwinError("the deformed surface has non-finite points; reset the simulation")
    if suffix == ".ply":
        return write_atomic(out, ply_bytes(mesh))
    if suffix == ".stl":
        return write_atomic(out, stl_bytes(mesh))
    obj, mtl = obj_and_mtl([mesh], out.with_suffix(".mtl").name)
    write_atomic(out.with_suffix(".mtl"), mtl)  # the materials first: an OBJ never names a missing one
    return write_atomic(out, obj)
