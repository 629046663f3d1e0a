"""What every exporter shares: atomic file writes, safe file names, the frame statement."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import surgtwin
from surgtwin.core.case.atomic import atomic_write
from surgtwin.core.errors import MeshError
from surgtwin.core.mesh.surface import SurfaceMesh

# Stated in every mesh file whose format has room for it.
FRAME_STATEMENT = "frame LPS (x = patient left, y = posterior, z = superior), units mm"
GENERATOR = f"surgtwin {surgtwin.__version__}"


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file and a rename: no half-written file is left."""
    with atomic_write(path) as handle:
        handle.write(data)
    return path


def safe_stem(name: str) -> str:
    """A file-name (and OBJ/MTL identifier) safe version of a segment name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return stem or "segment"


def unique_stems(meshes: list[SurfaceMesh]) -> list[str]:
    """One distinct safe stem per mesh; names that collapse to the same stem get a suffix."""
    seen: dict[str, int] = {}
    stems = []
    for mesh in meshes:
        stem = safe_stem(mesh.name)
        count = seen.get(stem.lower(), 0)
        seen[stem.lower()] = count + 1
        stems.append(stem if count == 0 else f"{stem}_{count + 1}")
    return stems


def check_meshes(meshes: list[SurfaceMesh]) -> None:
    if not meshes:
        raise MeshError("nothing to export: no surface meshes were given (build the meshes first)")
    for mesh in meshes:
        if mesh.triangle_count == 0:
            raise MeshError(f"mesh {mesh.name!r} has no triangles; remove it or rebuild it")
        if not np.all(np.isfinite(mesh.vertices)):
            raise MeshError(f"mesh {mesh.name!r} has vertices that are not finite numbers")


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unnormalised face normals summed)."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(out, faces[:, corner], n)
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, length, out=np.zeros_like(out), where=length > 0)


def rgb255(color: tuple[float, float, float]) -> tuple[int, int, int]:
    r, g, b = (int(round(min(max(c, 0.0), 1.0) * 255)) for c in color)
    return r, g, b
