"""Repair of triangle meshes, and clean-up of their connected pieces.

Meshes from the well-composed label map are already closed and manifold; repair is
the safety net for what decimation (or an imported mesh) may break. Every step says
what it did, for the mesh's provenance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from surgtwin.core.mesh.quality import (
    MeshQuality,
    check_mesh,
    corner_groups,
    manifold_edge_slots,
    signed_volume_mm3,
)

MERGE_DIGITS = 6  # vertices closer than ~1e-6 mm are the same vertex


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vertices no face uses and renumber (keeping their order)."""
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.ravel()] = True
    new_index = np.cumsum(used, dtype=np.int64) - 1
    return vertices[used], new_index[faces]


def split_nonmanifold_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Give every fan of faces around a vertex its own copy of that vertex (pinch points)."""
    first, second, _ = manifold_edge_slots(faces)
    group = corner_groups(faces, first, second)
    n_groups = int(group.max()) + 1
    vertex_of_group = np.empty(n_groups, dtype=np.int64)
    vertex_of_group[group] = faces.ravel()
    used = np.unique(faces)
    return vertices[vertex_of_group], group.reshape(-1, 3).astype(np.int64), int(n_groups - len(used))


def _drop_degenerate_and_duplicates(faces: np.ndarray) -> np.ndarray:
    """Faces with a repeated vertex go; a face repeated (usually back to back: a sheet
    collapsed flat by decimation) encloses nothing, and keeping one copy would leave
    non-manifold edges, so all copies go."""
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    faces = faces[~repeated]
    key = np.sort(faces, axis=1)
    n = np.int64(int(faces.max()) + 1) if len(faces) else np.int64(1)
    key = (key[:, 0] * n + key[:, 1]) * n + key[:, 2]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return faces[counts[inverse.ravel()] == 1]


def quick_repair(
    vertices: np.ndarray, faces: np.ndarray, before: MeshQuality | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], MeshQuality]:
    """numpy-only repair of what quadric decimation typically breaks: back-to-back face
    pairs and pinched sheets (non-manifold edges and vertices). Cheap on millions of faces;
    ``repair_mesh`` falls back to trimesh when this is not enough."""
    actions: list[str] = []
    quality = before if before is not None else check_mesh(vertices, faces)
    if quality.ok or not len(faces):
        return vertices, faces, actions, quality
    if quality.degenerate_faces or quality.nonmanifold_edges:
        n_f = len(faces)
        faces = _drop_degenerate_and_duplicates(faces)
        if len(faces) != n_f:
            actions.append(f"removed {n_f - len(faces)} degenerate or duplicate faces")
            if not len(faces):
                return vertices[:0], faces, actions, check_mesh(vertices[:0], faces)
            vertices, faces = compact(vertices, faces)
        quality = check_mesh(vertices, faces)
    if quality.nonmanifold_vertices or quality.nonmanifold_edges:
        vertices, faces, n = split_nonmanifold_vertices(vertices, faces)
        actions.append(f"split {n} pinch-point vertices")
        quality = check_mesh(vertices, faces)
    if quality.volume_mm3 < 0 and quality.inconsistent_edges == 0:
        faces = faces[:, ::-1].copy()
        actions.append("turned normals outward")
        quality = check_mesh(vertices, faces)
    return vertices, faces, actions, quality


def repair_mesh(
    vertices: np.ndarray, faces: np.ndarray, before: MeshQuality | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], MeshQuality]:
    """Merge duplicate vertices, drop degenerate/duplicate faces, split pinch points,
    fill small holes, make winding consistent and outward.

    The numpy-only ``quick_repair`` runs first; trimesh (slower) only when it was not
    enough. Returns the mesh, what was done (empty when it was already clean) and its check."""
    v0, f0 = vertices, faces
    vertices, faces, actions, quality = quick_repair(vertices, faces, before)
    if quality.ok or not len(f0):
        return vertices, faces, actions, quality
    vertices, faces = v0, f0  # start again from the input with the full repair
    actions = ["numpy repair was not enough: trimesh repair"]
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    n_v = len(mesh.vertices)
    mesh.merge_vertices(digits_vertex=MERGE_DIGITS)
    if len(mesh.vertices) != n_v:
        actions.append(f"merged {n_v - len(mesh.vertices)} duplicate vertices")
    n_f = len(mesh.faces)
    mesh.update_faces(mesh.nondegenerate_faces(height=1e-9))
    # a face repeated (usually back to back: a sheet collapsed flat by decimation) encloses
    # nothing; keeping one copy would leave non-manifold edges, so all copies go
    _, inverse, counts = np.unique(
        np.sort(mesh.faces, axis=1), axis=0, return_inverse=True, return_counts=True
    )
    mesh.update_faces(counts[inverse.ravel()] == 1)
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) != n_f:
        actions.append(f"removed {n_f - len(mesh.faces)} degenerate or duplicate faces")
    if not mesh.is_watertight:
        n_f = len(mesh.faces)
        if trimesh.repair.fill_holes(mesh):
            actions.append(f"filled holes with {len(mesh.faces) - n_f} faces")
        else:
            actions.append("could not fill every hole")
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)
    if check_mesh(v, f).nonmanifold_vertices:
        v, f, n = split_nonmanifold_vertices(v, f)
        actions.append(f"split {n} pinch-point vertices")
    mesh = trimesh.Trimesh(v, f, process=False)
    if not mesh.is_winding_consistent:
        trimesh.repair.fix_winding(mesh)
        actions.append("made winding consistent")
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)
    if signed_volume_mm3(v, f) < 0:
        f = f[:, ::-1].copy()
        actions.append("turned normals outward")
    return v, f, actions, check_mesh(v, f)


def face_components(n_vertices: int, faces: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected pieces (through shared vertices); returns the count and each face's piece."""
    graph = coo_matrix(
        (np.ones(3 * len(faces), dtype=np.int8), (faces.ravel(), faces[:, [1, 2, 0]].ravel())),
        shape=(n_vertices, n_vertices),
    )
    count, vertex_piece = connected_components(graph, directed=False)
    return count, vertex_piece[faces[:, 0]]


def clean_components(
    vertices: np.ndarray, faces: np.ndarray, min_volume_mm3: float, keep_largest: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Drop pieces enclosing less than ``min_volume_mm3`` (or all but the largest).

    A piece with negative signed volume is a cavity (its normals point into a hole of
    the structure): a small one is dropped (the hole is filled); with ``keep_largest``
    a cavity stays when it lies inside the kept piece's bounding box."""
    report: dict[str, Any] = {"pieces": 0, "kept": 0, "dropped": 0, "dropped_volume_mm3": 0.0}
    if not len(faces):
        return vertices, faces, report
    count, piece = face_components(len(vertices), faces)
    tri = vertices[faces]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    volume = np.bincount(piece, weights=signed, minlength=count)
    keep = np.abs(volume) >= min_volume_mm3
    if keep_largest and (volume > 0).any():
        largest = int(np.argmax(volume))
        box_lo, box_hi = vertices[faces[piece == largest]].reshape(-1, 3).min(0), None
        box_hi = vertices[faces[piece == largest]].reshape(-1, 3).max(0)
        for p in range(count):
            if p == largest or not keep[p]:
                continue
            inside = False
            if volume[p] < 0:
                pts = vertices[faces[piece == p]].reshape(-1, 3)
                inside = bool((pts.min(0) >= box_lo).all() and (pts.max(0) <= box_hi).all())
            keep[p] = inside
    report.update(
        pieces=int(count),
        kept=int(keep.sum()),
        dropped=int((~keep).sum()),
        dropped_volume_mm3=float(np.abs(volume[~keep]).sum()),
    )
    if keep.all():
        return vertices, faces, report
    v, f = compact(vertices, faces[keep[piece]]) if keep.any() else (vertices[:0], faces[:0])
    return v, f, report
