"""Checks that a triangle mesh is a closed, manifold, consistently outward-oriented surface.

The check judges the mesh as a file reader will see it: STL stores no vertex indices and
3MF/OBJ/PLY readers merge coincident vertices, so vertices closer than ~1e-6 mm are
merged first (two copies of a split pinch point at one position would come back as one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class MeshQuality:
    vertices: int
    faces: int
    boundary_edges: int  # edges with one face: holes
    nonmanifold_edges: int  # edges with three or more faces
    nonmanifold_vertices: int  # vertices where two sheets touch (more than one fan of faces)
    degenerate_faces: int  # repeated vertex index or zero area
    inconsistent_edges: int  # edges whose two faces run the same way (winding flips)
    volume_mm3: float
    components: int
    coincident_vertices: int = 0  # vertices a file reader would merge into another (before the check)

    @property
    def watertight(self) -> bool:
        return self.boundary_edges == 0 and self.nonmanifold_edges == 0

    @property
    def ok(self) -> bool:
        return (
            self.faces > 0
            and self.watertight
            and self.nonmanifold_vertices == 0
            and self.degenerate_faces == 0
            and self.inconsistent_edges == 0
            and self.volume_mm3 > 0
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "watertight": self.watertight, "ok": self.ok}


def signed_volume_mm3(vertices: np.ndarray, faces: np.ndarray) -> float:
    tri = vertices[faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def _sorted_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edge keys ``min * n + max`` (one int64 each keeps sorting fast), the
    order that sorts them, and each sorted edge's multiplicity."""
    u = faces.ravel()
    v = faces[:, [1, 2, 0]].ravel()
    n = np.int64(int(faces.max()) + 1)
    keys = np.minimum(u, v) * n + np.maximum(u, v)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    run = np.diff(np.r_[starts, len(keys)])
    return order, starts, run


def corner_groups(faces: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Corners (face, vertex) linked across each manifold edge, grouped: one group per fan of
    faces around a vertex. ``first``/``second``: the two slots (3 * face + k) of each
    two-face edge. Returns each corner's group (links only join corners of one vertex)."""
    n_faces = len(faces)
    fa, fb = first // 3, second // 3
    # slot k of a face is the edge from its corner k to corner k + 1
    ua, va = first % 3, (first % 3 + 1) % 3
    ub, vb = second % 3, (second % 3 + 1) % 3
    rows, cols = [], []
    for ca, cb_same, cb_other in ((ua, ub, vb), (va, vb, ub)):
        cb = np.where(faces[fa, ca] == faces[fb, cb_same], cb_same, cb_other)
        rows.append(fa * 3 + ca)
        cols.append(fb * 3 + cb)
    row, col = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(row), dtype=np.int8), (row, col)), shape=(3 * n_faces, 3 * n_faces))
    _, group = connected_components(graph, directed=False)
    return group


def manifold_edge_slots(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two face slots of every two-face edge, and each sorted edge's multiplicity."""
    order, starts, run = _sorted_edges(faces)
    pair = starts[run == 2]
    return order[pair], order[pair + 1], run


def _nonmanifold_vertices(faces: np.ndarray, first: np.ndarray, second: np.ndarray) -> int:
    """A vertex whose corners fall into more than one fan is where separate sheets of the
    surface touch."""
    group = corner_groups(faces, first, second)
    vertex_of_group = np.empty(int(group.max()) + 1, dtype=np.int64)
    vertex_of_group[group] = faces.ravel()
    per_vertex = np.bincount(vertex_of_group)
    return int(np.count_nonzero(per_vertex > 1))


MERGE_DIGITS = 6  # vertices closer than ~1e-6 mm are the same vertex


def merge_coincident(
    vertices: np.ndarray, faces: np.ndarray, digits: int = MERGE_DIGITS
) -> tuple[np.ndarray, np.ndarray, int]:
    """Vertices equal after rounding to ``digits`` decimals (mm) merged into one, as STL
    (no indices at all) and most mesh readers do. Returns the mesh and how many merged."""
    if not len(vertices):
        return vertices, faces, 0
    key = np.round(vertices * 10.0**digits).astype(np.int64)
    order = np.lexsort(key.T[::-1])
    ordered = key[order]
    new = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]
    n_unique = int(np.count_nonzero(new))
    if n_unique == len(vertices):
        return vertices, faces, 0
    index = np.empty(len(vertices), dtype=np.int64)
    index[order] = np.cumsum(new) - 1
    return vertices[order[new]], index[faces], len(vertices) - n_unique


def check_mesh(
    vertices: np.ndarray, faces: np.ndarray, merge_digits: int | None = MERGE_DIGITS
) -> MeshQuality:
    """Count what keeps a mesh from being a closed, oriented 2-manifold, once coincident
    vertices are merged (``merge_digits`` decimals of a mm; None: judge the indices as stored)."""
    n_v, n_f = len(vertices), len(faces)
    if n_f == 0:
        return MeshQuality(n_v, 0, 0, 0, 0, 0, 0, 0.0, 0)
    if merge_digits is not None:
        vertices, faces, merged = merge_coincident(vertices, faces, merge_digits)
        if merged:
            return replace(check_mesh(vertices, faces, None), vertices=n_v, coincident_vertices=merged)
    first, second, run = manifold_edge_slots(faces)
    # the two faces of a manifold edge traverse it in opposite directions
    tail_first = faces.ravel()[first]
    tail_second = faces.ravel()[second]
    inconsistent = int(np.count_nonzero(tail_first == tail_second))
    tri = vertices[faces]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    n_components, _ = connected_components(
        coo_matrix(
            (np.ones(3 * n_f, dtype=np.int8), (faces.ravel(), faces[:, [1, 2, 0]].ravel())),
            shape=(n_v, n_v),
        ),
        directed=False,
    )
    used = np.zeros(n_v, dtype=bool)
    used[faces.ravel()] = True
    return MeshQuality(
        vertices=n_v,
        faces=n_f,
        boundary_edges=int(np.count_nonzero(run == 1)),
        nonmanifold_edges=int(np.count_nonzero(run > 2)),
        nonmanifold_vertices=_nonmanifold_vertices(faces, first, second),
        degenerate_faces=int(np.count_nonzero(repeated | (area2 <= 1e-12))),
        inconsistent_edges=inconsistent,
        volume_mm3=float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0),
        components=int(n_components - np.count_nonzero(~used)),
    )
