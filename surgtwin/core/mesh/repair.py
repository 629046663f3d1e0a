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
    MERGE_DIGITS,
    MeshQuality,
    check_mesh,
    corner_groups,
    manifold_edge_slots,
    merge_coincident,
    signed_volume_mm3,
)

# A split pinch point's copies are moved apart by this fraction of their mean edge length,
# kept within [min, max] mm: far above the 1e-6 mm at which readers merge vertices (and
# float32 STL precision, ~6e-5 mm at 1 m), far below anything visible.
PINCH_SEPARATION = 0.005
PINCH_SEPARATION_MM = (1e-3, 1e-2)
# Holes left by repair (a collapsed sheet's faces removed) up to this many edges are closed.
MAX_HOLE_EDGES = 200


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vertices no face uses and renumber (keeping their order)."""
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.ravel()] = True
    new_index = np.cumsum(used, dtype=np.int64) - 1
    return vertices[used], new_index[faces]


def split_nonmanifold_vertices(
    vertices: np.ndarray, faces: np.ndarray, separate: bool = True
) -> tuple[np.ndarray, np.ndarray, int]:
    """Give every fan of faces around a vertex its own copy of that vertex (pinch points).

    With ``separate`` each copy is moved a little (``PINCH_SEPARATION`` of its edges,
    1e-3..1e-2 mm) towards the centroid of its own fan, so the copies stay apart when a
    file format or reader merges coincident vertices."""
    first, second, _ = manifold_edge_slots(faces)
    group = corner_groups(faces, first, second)
    n_groups = int(group.max()) + 1
    vertex_of_group = np.empty(n_groups, dtype=np.int64)
    vertex_of_group[group] = faces.ravel()
    used = np.unique(faces)
    new_vertices = vertices[vertex_of_group]
    new_faces = group.reshape(-1, 3).astype(np.int64)
    n_split = int(n_groups - len(used))
    if separate and n_split:
        copies = np.bincount(vertex_of_group, minlength=len(vertices))[vertex_of_group] > 1
        new_vertices = _separate_copies(new_vertices, new_faces, copies)
    return new_vertices, new_faces, n_split


def _separate_copies(vertices: np.ndarray, faces: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Move each ``moving`` vertex towards the centroid of its fan's other vertices."""
    corner = faces.ravel()
    pick = moving[corner]
    if not pick.any():
        return vertices
    slot = np.flatnonzero(pick)
    face, k = slot // 3, slot % 3
    at = corner[slot]
    n_v = len(vertices)
    total = np.zeros((n_v, 3))
    length = np.zeros(n_v)
    count = np.zeros(n_v)
    for step in (1, 2):
        other = vertices[faces[face, (k + step) % 3]]
        for axis in range(3):
            total[:, axis] += np.bincount(at, weights=other[:, axis], minlength=n_v)
        length += np.bincount(at, weights=np.linalg.norm(other - vertices[at], axis=1), minlength=n_v)
        count += np.bincount(at, minlength=n_v)
    idx = np.flatnonzero(moving & (count > 0))
    direction = total[idx] / count[idx, None] - vertices[idx]
    norm = np.linalg.norm(direction, axis=1)
    ok = norm > 1e-9
    idx, direction, norm = idx[ok], direction[ok], norm[ok]
    lo, hi = PINCH_SEPARATION_MM
    distance = np.clip(PINCH_SEPARATION * length[idx] / count[idx], lo, hi)
    distance = np.minimum(distance, 0.25 * norm)  # never past the fan's own centroid
    out = vertices.copy()
    out[idx] += direction * (distance / norm)[:, None]
    return out


def fill_holes(
    vertices: np.ndarray, faces: np.ndarray, max_edges: int = MAX_HOLE_EDGES
) -> tuple[np.ndarray, np.ndarray, int]:
    """Close simple boundary loops (each boundary vertex on one loop) of up to ``max_edges``
    edges: a triangle, or a fan around a new vertex at the loop's centroid, wound like
    the faces around it. Returns the mesh and the number of holes closed."""
    u = faces.ravel()
    v = faces[:, [1, 2, 0]].ravel()
    n = np.int64(len(vertices))
    undirected = np.minimum(u, v) * n + np.maximum(u, v)
    keys, counts = np.unique(undirected, return_counts=True)
    boundary = np.isin(undirected, keys[counts == 1])
    if not boundary.any():
        return vertices, faces, 0
    # the hole runs against the faces around it: from v back to u
    start, end = v[boundary], u[boundary]
    if len(np.unique(start)) != len(start):
        return vertices, faces, 0  # a vertex on two loops: not a simple hole
    following = dict(zip(start.tolist(), end.tolist(), strict=True))
    new_vertices: list[np.ndarray] = []
    new_faces: list[list[int]] = []
    seen: set[int] = set()
    n_holes = 0
    for first in start.tolist():
        if first in seen:
            continue
        loop = [first]
        seen.add(first)
        nxt = following.get(first)
        while nxt is not None and nxt != first and nxt not in seen and len(loop) <= max_edges:
            loop.append(nxt)
            seen.add(nxt)
            nxt = following.get(nxt)
        if nxt != first or len(loop) > max_edges or len(loop) < 3:
            continue
        n_holes += 1
        if len(loop) == 3:
            new_faces.append(loop)
            continue
        centre = int(n) + len(new_vertices)
        new_vertices.append(vertices[loop].mean(axis=0))
        new_faces.extend([a, b, centre] for a, b in zip(loop, loop[1:] + loop[:1], strict=True))
    if not new_faces:
        return vertices, faces, 0
    if new_vertices:
        vertices = np.vstack([vertices, np.array(new_vertices)])
    faces = np.vstack([faces, np.array(new_faces, dtype=np.int64)])
    return vertices, faces, n_holes


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
    if quality.coincident_vertices:  # work on the mesh a file reader would see
        vertices, faces, n_merged = merge_coincident(vertices, faces)
        actions.append(f"merged {n_merged} coincident vertices")
        quality = check_mesh(vertices, faces, None)
    if quality.degenerate_faces or quality.nonmanifold_edges:
        n_f = len(faces)
        faces = _drop_degenerate_and_duplicates(faces)
        if len(faces) != n_f:
            actions.append(f"removed {n_f - len(faces)} degenerate or duplicate faces")
            if not len(faces):
                return vertices[:0], faces, actions, check_mesh(vertices[:0], faces)
            vertices, faces = compact(vertices, faces)
        quality = check_mesh(vertices, faces, None)
    if quality.nonmanifold_vertices or quality.nonmanifold_edges:
        vertices, faces, n = split_nonmanifold_vertices(vertices, faces)
        actions.append(f"split {n} pinch-point vertices and moved their copies apart")
        quality = check_mesh(vertices, faces, None)
    if quality.boundary_edges:
        vertices, faces, n = fill_holes(vertices, faces)
        if n:
            actions.append(f"closed {n} holes")
            quality = check_mesh(vertices, faces, None)
            if quality.nonmanifold_vertices:  # a hole whose rim touched itself
                vertices, faces, n = split_nonmanifold_vertices(vertices, faces)
                actions.append(f"split {n} pinch-point vertices and moved their copies apart")
    quality = check_mesh(vertices, faces)  # as a file reader will see it
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
    if check_mesh(v, f, None).nonmanifold_vertices:
        v, f, n = split_nonmanifold_vertices(v, f)
        actions.append(f"split {n} pinch-point vertices and moved their copies apart")
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
