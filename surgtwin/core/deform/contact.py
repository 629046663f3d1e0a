"""Tool interactions as per-node springs: grasp handles, a rigid sphere, a rigid capsule,
retraction planes.

Each interaction adds, per touched node, a force and a 3x3 stiffness block. The solver puts the
blocks into its implicit system (so a stiff spring cannot make a step unstable) and into its
3x3 block-Jacobi preconditioner (so a stiff spring does not slow the conjugate gradients down:
the block inverts it exactly).

Rigid tools push by a penalty on the nodes inside them, linearised on the plane tangent to the
tool at the node's nearest surface point (``ContactPlanes``), so each linear solve sees a linear
spring. Which nodes are in contact is settled within the step by an active-set loop in the
solver: a node that ends a solve inside a tool is added and the step solved again, a contact
that ends pulling is dropped (``missed_or_pulling``, ``contact_planes``). Without it a node
outside at the start of a step could end deep inside and be thrown out by the next step's
penalty: the contact set chattered in cycles with force peaks of tens of newtons.

Rigid obstacles act on the simulation nodes only: an obstacle much thinner than a cell can slip
between nodes, so instruments should be at least about one and a half cells across.
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


# ---------------------------------------------------------------- contact within a step
SPHERE, CAPSULE, PLANE = 0, 1, 2


@dataclass(frozen=True)
class ContactPlanes:
    """The contacts of one linear solve: node ``nodes[i]`` is pushed back over the plane through
    ``points[i]`` (on the tool's surface) with outward normal ``normals[i]``, by the penalty
    force k ((points - x) . n) n, which is linear in x (its 3x3 block is k n n^T). ``tools[i]``
    says which tool (SPHERE, CAPSULE, PLANE + plane index); a node may touch several tools."""

    nodes: np.ndarray  # (m,) int64
    tools: np.ndarray  # (m,) int64
    points: np.ndarray  # (m, 3)
    normals: np.ndarray  # (m, 3)

    def keys(self) -> set[tuple[int, int]]:
        return set(zip(self.tools.tolist(), self.nodes.tolist(), strict=True))


def _tool_surfaces(
    obstacles: Obstacles, x: np.ndarray
) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per tool: (tool id, signed gap of every node (negative inside), nearest surface point,
    outward normal there)."""
    out = []
    balls: list[tuple[int, np.ndarray, float]] = []
    if obstacles.sphere is not None:
        centre, radius = obstacles.sphere
        balls.append((SPHERE, np.broadcast_to(centre, x.shape), radius))
    if obstacles.capsule is not None:
        cap = obstacles.capsule
        balls.append((CAPSULE, closest_on_segment(x, cap.start, cap.end), cap.radius))
    for tool, centres, radius in balls:
        d = x - centres
        dist = np.linalg.norm(d, axis=1)
        normal = d / np.maximum(dist, 1e-12)[:, None]
        out.append((tool, dist - radius, centres + radius * normal, normal))
    for i, (point, normal) in enumerate(obstacles.planes):
        gap = (x - point[None, :]) @ normal
        out.append((PLANE + i, gap, x - gap[:, None] * normal[None, :], np.broadcast_to(normal, x.shape)))
    return out


def contact_planes(
    obstacles: Obstacles,
    x: np.ndarray,
    previous: ContactPlanes | None = None,
    *,
    keep_planes: bool = False,
    margin: float = 0.0,
) -> ContactPlanes:
    """The contact set at positions ``x``: every node inside a tool, linearised at its nearest
    surface point, plus the contacts of ``previous`` (of tools still set) that are not inside:

    - ``keep_planes`` (a re-solve within one step, the tools where they were): those that still
      press on their previous plane keep it, so a node that slid a little along a curved tool is
      neither dropped nor re-caught in turn; those on the free side of it are dropped.
    - otherwise (a new step, the tools may have moved): those within ``margin`` of a tool are
      re-linearised at their nearest surface point; contact stays on while the tissue follows.
    """
    old: dict[tuple[int, int], int] = {}
    if previous is not None:
        old = {
            key: i for i, key in enumerate(zip(previous.tools.tolist(), previous.nodes.tolist(), strict=True))
        }
    nodes, tools, points, normals = [], [], [], []
    for tool, gap, surface, normal in _tool_surfaces(obstacles, x):
        take = gap < 0.0
        if old and not keep_planes:
            was = np.array([n for (t, n) in old if t == tool], dtype=np.int64)
            take[was[gap[was] < margin]] = True
        picked = np.flatnonzero(take)
        nodes.append(picked)
        tools.append(np.full(picked.size, tool, dtype=np.int64))
        points.append(surface[picked])
        normals.append(normal[picked])
        if keep_planes and previous is not None and old:
            was = np.array([i for (t, n), i in old.items() if t == tool and gap[n] >= 0.0], dtype=np.int64)
            if was.size:
                along = np.einsum(
                    "ij,ij->i", x[previous.nodes[was]] - previous.points[was], previous.normals[was]
                )
                was = was[along <= 0.0]
                nodes.append(previous.nodes[was])
                tools.append(previous.tools[was])
                points.append(previous.points[was])
                normals.append(previous.normals[was])
    if not nodes:
        return no_contacts()
    return ContactPlanes(
        np.concatenate(nodes).astype(np.int64),
        np.concatenate(tools).astype(np.int64),
        np.concatenate(points).reshape(-1, 3),
        np.concatenate(normals).reshape(-1, 3),
    )


def no_contacts() -> ContactPlanes:
    empty = np.zeros((0, 3))
    return ContactPlanes(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty, empty)


def add_contact_planes(
    contacts: ContactPlanes,
    k: float,
    x: np.ndarray,
    forces: np.ndarray,
    blocks: np.ndarray,
    pressing_only: bool = False,
) -> None:
    """The linear penalty of ``contacts`` at positions ``x``: forces and 3x3 blocks added (within
    a solve a contact may pull; ``pressing_only`` counts only those that press)."""
    if not contacts.nodes.size:
        return
    n = contacts.normals
    depth = np.einsum("ij,ij->i", contacts.points - x[contacts.nodes], n)
    if pressing_only:
        depth = np.maximum(depth, 0.0)
    np.add.at(forces, contacts.nodes, (k * depth)[:, None] * n)
    np.add.at(blocks, contacts.nodes, k * n[:, :, None] * n[:, None, :])


def missed_or_pulling(contacts: ContactPlanes, obstacles: Obstacles, x: np.ndarray) -> bool:
    """Whether the solve that used ``contacts`` ended at ``x`` inconsistently: a node inside a
    tool it was not in contact with, or a contact whose linear penalty pulls (the node is back on
    the free side of its plane, beyond where the penalty's linearisation is valid)."""
    known = contacts.keys()
    for tool, gap, _, _ in _tool_surfaces(obstacles, x):
        for n in np.flatnonzero(gap < 0.0):
            if (tool, int(n)) not in known:
                return True
    if not contacts.nodes.size:
        return False
    along = np.einsum("ij,ij->i", x[contacts.nodes] - contacts.points, contacts.normals)
    return bool(np.any(along > 0.0))


def contact_plane_forces(
    contacts: ContactPlanes, obstacles: Obstacles, k: float, x: np.ndarray, movable: np.ndarray
) -> dict[str, np.ndarray]:
    """Force (N) the tissue at ``x`` exerts on each rigid tool through the contacts of the last
    solve (the penalties the solver used; only pressing contacts, only ``movable`` nodes, only
    tools still set): keys ``sphere``, ``capsule``, ``planes``."""
    out = {"sphere": np.zeros(3), "capsule": np.zeros(3), "planes": np.zeros(3)}
    present = {tool for tool, _, _, _ in _tool_surfaces(obstacles, x[:0])}
    use = movable[contacts.nodes] & np.isin(contacts.tools, list(present))
    if not use.any():
        return out
    n = contacts.normals[use]
    depth = np.maximum(np.einsum("ij,ij->i", contacts.points[use] - x[contacts.nodes[use]], n), 0.0)
    push = (k * depth)[:, None] * n  # on the tissue
    tools = contacts.tools[use]
    out["sphere"] = -push[tools == SPHERE].sum(axis=0)
    out["capsule"] = -push[tools == CAPSULE].sum(axis=0)
    out["planes"] = -push[tools >= PLANE].sum(axis=0)
    return out
