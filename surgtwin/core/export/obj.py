"""Wavefront OBJ + MTL: one object and one material (its colour) per segment, in one file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from surgtwin.core.export.common import FRAME_STATEMENT, GENERATOR, unique_stems, write_atomic
from surgtwin.core.mesh.surface import SurfaceMesh


def obj_and_mtl(meshes: list[SurfaceMesh], mtl_name: str) -> tuple[bytes, bytes]:
    stems = unique_stems(meshes)
    obj = io.StringIO()
    mtl = io.StringIO()
    for out in (obj, mtl):
        out.write(f"# {GENERATOR}\n# {FRAME_STATEMENT}\n")
    obj.write(f"mtllib {mtl_name}\n")
    offset = 1  # OBJ indices are 1-based and global over the file
    for mesh, stem in zip(meshes, stems, strict=True):
        r, g, b = mesh.color
        mtl.write(
            f"\nnewmtl {stem}\nKa 0 0 0\nKd {r:.6f} {g:.6f} {b:.6f}\nKs 0.1 0.1 0.1\nNs 20\nd 1\nillum 2\n"
        )
        obj.write(f"\n# segment: {mesh.name}\no {stem}\nusemtl {stem}\n")
        np.savetxt(obj, mesh.vertices, fmt="v %.6f %.6f %.6f")
        np.savetxt(obj, mesh.faces + offset, fmt="f %d %d %d")
        offset += len(mesh.vertices)
    return obj.getvalue().encode("utf-8"), mtl.getvalue().encode("utf-8")


def write_obj(meshes: list[SurfaceMesh], out_dir: Path, stem: str = "segments") -> list[Path]:
    obj, mtl = obj_and_mtl(meshes, f"{stem}.mtl")
    # The MTL first: an OBJ is never on disk without the materials it names.
    mtl_path = write_atomic(out_dir / f"{stem}.mtl", mtl)
    return [write_atomic(out_dir / f"{stem}.obj", obj), mtl_path]
