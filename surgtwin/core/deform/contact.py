"""Tool interactions as per-node springs: grasp handles, a rigid sphere, retraction planes.

Each interaction adds, per touched node, a force and a 3x3 stiffness block. The solver puts the
blocks into its implicit system (so a stiff spring cannot make a step unstable) and into its
3x3 block-Jacobi preconditioner (so a stiff spring does not slow the conjugate gradients down:
the block inverts it exactly).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Grasp:
    """Nodes bound by stiff springs to a moving target (each keeps its offset from the grasp point)."""

    nodes: np.ndarray  # (k,) node indices
    offsets: np.ndarray  # (k, 3) node position minus grasp point at grasp time
    target: np.ndarray  # (3,) where the tool is, metres
    stiffness: float  # N/m per node


@dataclass
class Obstacles:
    """A rigid sphere and half-space planes, enforced by a normal penalty on nodes inside."""

    stiffness: float  # N/m per node
    sphere: tuple[np.ndarray, float] | None = None
    planes: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def add_grasp(grasp: Grasp, x: np.ndarray, forces: np.ndarray, blocks: np.ndarray) -> None:
    """Spring forces on the tissue, pulling each grasped node to target + offset."""
    want = grasp.target[None, :] + grasp.offsets
    forces[grasp.nodes] += grasp.stiffness * (want - x[grasp.nodes])
    blocks[grasp.nodes] += grasp.stiffness * np.eye(3)


def grasp_tool_force(grasp: Grasp, x: np.ndarray) -> np.ndarray:
    """Force the tissue exerts on the tool (N): the springs' pull, summed."""
    want = grasp.target[None, :] + grasp.offsets
    return np.asarray(grasp.stiffness * (x[grasp.nodes] - want).sum(axis=0))


def add_obstacles(obstacles: Obstacles, x: np.ndarray, forces: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Penalty forces pushing nodes out of the sphere and back over the planes.

    Returns the total force the tissue exerts on the sphere (N).
    """
    k = obstacles.stiffness
    on_sphere = np.zeros(3)
    if obstacles.sphere is not None:
        centre, radius = obstacles.sphere
        d = x - centre[None, :]
        dist = np.linalg.norm(d, axis=1)
        inside = np.nonzero(dist < radius)[0]
        if inside.size:
            normal = d[inside] / np.maximum(dist[inside], 1e-12)[:, None]
            push = (k * (radius - dist[inside]))[:, None] * normal
            forces[inside] += push
            blocks[inside] += k * normal[:, :, None] * normal[:, None, :]
            on_sphere = -push.sum(axis=0)
    for point, normal in obstacles.planes:
        depth = (x - point[None, :]) @ normal
        behind = np.nonzero(depth < 0.0)[0]
        if behind.size:
            forces[behind] += (-k * depth[behind])[:, None] * normal[None, :]
            blocks[behind] += k * np.outer(normal, normal)[None, :, :]
    return on_sphere
