"""Binary PLY, one file per segment, with the segment colour on every vertex."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from surgtwin.core.export.common import FRAME_STATEMENT, GENERATOR, rgb255, unique_stems, write_atomic
from surgtwin.core.mesh.surface import SurfaceMesh

_VERTEX = np.dtype([("xyz", "<f4", 3), ("rgb", "u1", 3)])
_FACE = np.dtype([("count", "u1"), ("indices", "<i4", 3)])


def ply_bytes(mesh: SurfaceMesh) -> bytes:
    name = mesh.name.replace("\n", " ")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"comment {GENERATOR}\ncomment segment {name}\ncomment {FRAME_STATEMENT}\n"
        f"element vertex {len(mesh.vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {mesh.triangle_count}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    vertices = np.zeros(len(mesh.vertices), dtype=_VERTEX)
    vertices["xyz"] = mesh.vertices
    vertices["rgb"] = rgb255(mesh.color)
    faces = np.zeros(mesh.triangle_count, dtype=_FACE)
    faces["count"] = 3
    faces["indices"] = mesh.faces
    return header.encode("utf-8") + vertices.tobytes() + faces.tobytes()


def write_ply(meshes: list[SurfaceMesh], out_dir: Path) -> list[Path]:
    return [
        write_atomic(out_dir / f"{stem}.ply", ply_bytes(mesh))
        for mesh, stem in zip(meshes, unique_stems(meshes), strict=True)
    ]
