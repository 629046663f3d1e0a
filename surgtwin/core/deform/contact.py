"""Tool interactions as per-node springs: grasp handles, a rigid sphere, a rigid capsule,
retraction planes.

Each interaction adds, per touched node, a force and a 3x3 stiffness block. The solver puts the
blocks into its implicit system (so a stiff spring cannot make a step unstable) and into its
3x3 block-Jacobi preconditioner (so a stiff spring does not slow the conjugate gradients down:
the block inverts it exactly).

Rigid obstacles act on the simulation nodes only: an obstacle much thinner than a cell can slip
between nodes, so instruments should be at least about one cell across.
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


@dataclass(frozen=True)
class Capsule:
    """A rigid capsule: every point within ``radius`` of the segment from ``start`` to ``end``
    (a laparoscopic instrument's shaft with its rounded tip). Metres."""

    start: np.ndarray  # (3,)
    end: np.ndarray  # (3,)
    radius: float


@dataclass
class Obstacles:
    """A rigid sphere, a rigid capsule and half-space planes, enforced by a normal penalty on
    nodes inside."""

    stiffness: float  # N/m per node
    sphere: tuple[np.ndarray, float] | None = None
    planes: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    capsule: Capsule | None = None


def add_grasp(grasp: Grasp, x: np.ndarray, forces: np.ndarray, blocks: np.ndarray) -> None:
    """Spring forces on the tissue, pulling each grasped node to target + offset."""
    want = grasp.target[None, :] + grasp.offsets
    forces[grasp.nodes] += grasp.stiffness * (want - x[grasp.nodes])
    blocks[grasp.nodes] += grasp.stiffness * np.eye(3)


def grasp_tool_force(grasp: Grasp, x: np.ndarray) -> np.ndarray:
    """Force the tissue exerts on the tool (N): the springs' pull, summed."""
    want = grasp.target[None, :] + grasp.offsets
    return np.asarray(grasp.stiffness * (x[grasp.nodes] - want).sum(axis=0))


def closest_on_segment(x: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """For each point of ``x`` (N, 3) the nearest point of the segment start-end (N, 3)."""
    axis = end - start
    length2 = float(axis @ axis)
    if length2 == 0.0:  # a capsule of zero length is a sphere
        return np.broadcast_to(start, x.shape)
    t = np.clip(((x - start[None, :]) @ axis) / length2, 0.0, 1.0)
    return np.asarray(start[None, :] + t[:, None] * axis[None, :])


def _push_out_of_ball(
    x: np.ndarray, centres: np.ndarray, radius: float, k: float, forces: np.ndarray, blocks: np.ndarray
) -> np.ndarray:
    """Push nodes closer than ``radius`` to their centre point (a sphere's centre, or the nearest
    point of a capsule's axis) out along the line from it; returns the force on the tool (N)."""
    d = x - centres
    dist = np.linalg.norm(d, axis=1)
    inside = np.nonzero(dist < radius)[0]
    if not inside.size:
        return np.zeros(3)
    normal = d[inside] / np.maximum(dist[inside], 1e-12)[:, None]
    push = (k * (radius - dist[inside]))[:, None] * normal
    forces[inside] += push
    blocks[inside] += k * normal[:, :, None] * normal[:, None, :]
    return np.asarray(-push.sum(axis=0))


def add_sphere(
    sphere: tuple[np.ndarray, float], k: float, x: np.ndarray, forces: np.ndarray, blocks: np.ndarray
) -> np.ndarray:
    """Penalty pushing nodes out of a sphere; returns the force the tissue exerts on it (N)."""
    centre, radius = sphere
    return _push_out_of_ball(x, np.broadcast_to(centre, x.shape), radius, k, forces, blocks)


def add_capsule(
    capsule: Capsule, k: float, x: np.ndarray, forces: np.ndarray, blocks: np.ndarray
) -> np.ndarray:
    """Penalty pushing nodes out of a capsule, away from the nearest point of its axis; returns
    the force the tissue exerts on the capsule (N). Where only an end cap touches this is the
    sphere's penalty exactly."""
    axis_points = closest_on_segment(x, capsule.start, capsule.end)
    return _push_out_of_ball(x, axis_points, capsule.radius, k, forces, blocks)


def add_plane(
    point: np.ndarray, normal: np.ndarray, k: float, x: np.ndarray, forces: np.ndarray, blocks: np.ndarray
) -> np.ndarray:
    """Penalty pushing nodes back to the side ``normal`` points to; returns the force on the plane (N)."""
    depth = (x - point[None, :]) @ normal
    behind = np.nonzero(depth < 0.0)[0]
    if not behind.size:
        return np.zeros(3)
    push = (-k * depth[behind])[:, None] * normal[None, :]
    forces[behind] += push
    blocks[behind] += k * np.outer(normal, normal)[None, :, :]
    return np.asarray(-push.sum(axis=0))


def add_obstacles(obstacles: Obstacles, x: np.ndarray, forces: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Penalty forces pushing nodes out of the sphere and the capsule and back over the planes.

    Returns the total force the tissue exerts on the sphere (N).
    """
    k = obstacles.stiffness
    on_sphere = np.zeros(3)
    if obstacles.sphere is not None:
        on_sphere = add_sphere(obstacles.sphere, k, x, forces, blocks)
    if obstacles.capsule is not None:
        add_capsule(obstacles.capsule, k, x, forces, blocks)
    for point, normal in obstacles.planes:
        add_plane(point, normal, k, x, forces, blocks)
    return on_sphere


def obstacle_forces(
    obstacles: Obstacles, x: np.ndarray, movable: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Force (N) the tissue at ``x`` exerts on each rigid tool: keys ``sphere``, ``capsule`` and
    ``planes`` (all planes summed); a tool that is not set gives zeros. With ``movable`` (N,)
    bool only those nodes count: a held node inside a tool (pressed against an anchor) would
    report a penalty force the tissue never feels."""
    if movable is not None:
        x = x[np.asarray(movable, dtype=bool)]
    scratch_f = np.zeros_like(x)
    scratch_k = np.zeros((x.shape[0], 3, 3))
    k = obstacles.stiffness
    out = {"sphere": np.zeros(3), "capsule": np.zeros(3), "planes": np.zeros(3)}
    if obstacles.sphere is not None:
        out["sphere"] = add_sphere(obstacles.sphere, k, x, scratch_f, scratch_k)
    if obstacles.capsule is not None:
        out["capsule"] = add_capsule(obstacles.capsule, k, x, scratch_f, scratch_k)
    for point, normal in obstacles.planes:
        out["planes"] = out["planes"] + add_plane(point, normal, k, x, scratch_f, scratch_k)
    return out
