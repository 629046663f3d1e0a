"""Embedding a fine surface in a hexahedral simulation mesh (trilinear interpolation).

Each point is tied to one element and its 8 trilinear weights; moving the mesh nodes then moves
the point by the same interpolation. Trilinear interpolation reproduces any affine map of the
nodes exactly, so a rigid motion or a uniform stretch of the mesh moves the surface the same way.

A point inside the voxelised body uses the element that contains it. A point slightly outside
(the body keeps cells at least half inside the segment, so the organ's true surface can lie up
to about a cell outside it) uses the nearest element, nearest in the max-norm scaled to the cell
edges, and the element's trilinear map is extrapolated: weights outside 0..1 that still sum to 1,
exact for affine motion of that element, and a smooth polynomial continuation otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from surgtwin.core.deform.errors import SimulationError
from surgtwin.core.deform.mesh import HEX_CORNERS, HexMesh

NEAREST_CANDIDATES = 16  # cells whose boxes are compared for a point outside the body


@dataclass
class Embedding:
    """``element`` (P,), ``node_ids`` (P, 8) and trilinear ``weights`` (P, 8) for each point;
    ``outside_m`` (P,) how far each point lies outside its element (0 inside)."""

    element: np.ndarray
    node_ids: np.ndarray
    weights: np.ndarray
    outside_m: np.ndarray
    node_count: int

    @classmethod
    def build(cls, mesh: HexMesh, points_m: np.ndarray) -> Embedding:
        """Embed ``points_m`` (P, 3), metres, in ``mesh`` (an axis-aligned grid of equal cells)."""
        points = np.asarray(points_m, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise SimulationError("points to embed must be an (P, 3) array in metres")
        if not np.all(np.isfinite(points)):
            raise SimulationError("points to embed must be finite numbers")
        if mesh.element_count == 0:
            raise SimulationError("the simulation mesh has no elements to embed points in")
        low = mesh.nodes[mesh.elements[:, 0]]
        step = mesh.cell_extents_m()[0]
        if np.any(step <= 0) or not np.allclose(mesh.cell_extents_m(), step, rtol=1e-6, atol=0.0):
            raise SimulationError("embedding needs a grid mesh of equal, axis-aligned cells")
        origin = low.min(axis=0)
        cell_xyz = np.rint((low - origin) / step).astype(np.int64)
        shape = cell_xyz.max(axis=0) + 1
        lookup = np.full(tuple(int(s) for s in shape), -1, dtype=np.int64)
        lookup[cell_xyz[:, 0], cell_xyz[:, 1], cell_xyz[:, 2]] = np.arange(mesh.element_count)

        # points in a kept cell
        scaled = (points - origin) / step
        where = np.floor(scaled).astype(np.int64)
        in_grid = np.all((where >= 0) & (where < shape), axis=1)
        element = np.full(len(points), -1, dtype=np.int64)
        element[in_grid] = lookup[where[in_grid, 0], where[in_grid, 1], where[in_grid, 2]]

        # the others: the nearest cell, by the distance to its box among the nearest cell centres
        missing = np.flatnonzero(element < 0)
        if len(missing):
            candidates = min(NEAREST_CANDIDATES, mesh.element_count)
            _, near = cKDTree(cell_xyz + 0.5).query(scaled[missing], k=candidates)
            near = np.asarray(near).reshape(len(missing), candidates)
            local_near = scaled[missing, None, :] - cell_xyz[near]  # (M, k, 3)
            gap = np.maximum(np.maximum(-local_near, local_near - 1.0), 0.0) * step
            best = np.argmin(np.einsum("mkd,mkd->mk", gap, gap), axis=1)
            element[missing] = near[np.arange(len(missing)), best]

        local = scaled - cell_xyz[element]  # trilinear coordinates, 0..1 inside the element
        weights = np.ones((len(points), 8))
        for corner, (a, b, c) in enumerate(HEX_CORNERS):
            weights[:, corner] = (
                (local[:, 0] if a else 1.0 - local[:, 0])
                * (local[:, 1] if b else 1.0 - local[:, 1])
                * (local[:, 2] if c else 1.0 - local[:, 2])
            )
        beyond = np.maximum(np.maximum(-local, local - 1.0), 0.0) * step
        return cls(
            element=element,
            node_ids=mesh.elements[element],
            weights=weights,
            outside_m=np.linalg.norm(beyond, axis=1),
            node_count=mesh.node_count,
        )

    @property
    def point_count(self) -> int:
        return int(len(self.element))

    def apply(self, node_positions: np.ndarray) -> np.ndarray:
        """The embedded points (P, 3) for the mesh nodes at ``node_positions`` (N, 3)."""
        positions = np.asarray(node_positions, dtype=np.float64)
        if positions.shape != (self.node_count, 3):
            raise SimulationError(
                f"node positions must be ({self.node_count}, 3) for this mesh, got {positions.shape}"
            )
        return np.einsum("pk,pkd->pd", self.weights, positions[self.node_ids])
