"""Binary STL, one file per segment (STL holds a single uncoloured surface)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from surgtwin.core.export.common import face_normals, unique_stems, write_atomic
from surgtwin.core.mesh.surface import SurfaceMesh

_RECORD = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])


def stl_bytes(mesh: SurfaceMesh) -> bytes:
    # The header must not start with "solid": readers would take the file for ASCII STL.
    header = f"surgtwin {mesh.name} LPS mm".encode("ascii", "replace")[:80].ljust(80, b" ")
    records = np.zeros(mesh.triangle_count, dtype=_RECORD)
    records["normal"] = face_normals(mesh.vertices, mesh.faces)
    records["vertices"] = mesh.vertices[mesh.faces]
    return header + np.uint32(mesh.triangle_count).tobytes() + records.tobytes()


def write_stl(meshes: list[SurfaceMesh], out_dir: Path) -> list[Path]:
    return [
        write_atomic(out_dir / f"{stem}.stl", stl_bytes(mesh))
        for mesh, stem in zip(meshes, unique_stems(meshes), strict=True)
    ]
