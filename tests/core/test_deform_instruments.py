"""Rigid instruments and picked pins on the soft-tissue solver: a capsule (an instrument shaft
with a rounded tip) pressed into a block, the forces on the tools in newtons checked against the
supports' reactions, and nodes pinned at picked points."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.deform.contact import closest_on_segment
from surgtwin.core.deform.errors import SimulationError
from surgtwin.core.deform.materials import Material
from surgtwin.core.deform.mesh import box_mesh
from surgtwin.core.deform.solver import DeformableBody

TISSUE = Material("test tissue", 5e3, 0.45, 1000.0, "unit test")
STEP = 1.0 / 60.0


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


def held_block(size: tuple[float, float, float], cells: tuple[int, int, int]) -> DeformableBody:
    mesh = box_mesh(size, cells)
    return DeformableBody(mesh, TISSUE, fixed=mesh.nodes[:, 2] < 1e-9)  # type: ignore[arg-type]


def pressed_by(tool: str) -> DeformableBody:
    """A 30 mm block, 5 mm cells, bottom held, pressed 2 mm deep at the top centre by a 10 mm
    sphere or by a capsule whose lower end cap sits where the sphere is."""
    body = held_block((0.03, 0.03, 0.03), (6, 6, 6))
    centre = np.array([0.015, 0.015, 0.03 + 0.01 - 0.002])
    if tool == "sphere":
        body.set_sphere(centre, 0.01)
    elif tool == "upright capsule":
        body.set_capsule(centre, centre + np.array([0.0, 0.0, 0.03]), 0.01)
    else:  # tilted 45 degrees: its shaft stays clear of the block, only the cap touches
        body.set_capsule(centre, centre + 0.03 * np.array([np.sqrt(0.5), 0.0, np.sqrt(0.5)]), 0.01)
    for _ in range(120):  # pressed in time, as the app does
        body.step(STEP)
    return body


def test_capsule_end_cap_presses_exactly_like_a_sphere() -> None:
    sphere = pressed_by("sphere")
    sphere_force = sphere.contact_force()
    assert sphere_force[2] > 1e-3  # the tissue pushes the tool up (N)
    assert sphere.max_displacement_m() > 1e-3
    for tool in ("upright capsule", "tilted capsule"):
        capsule = pressed_by(tool)
        assert np.allclose(capsule.positions, sphere.positions, rtol=0.0, atol=1e-9), tool
        assert np.allclose(capsule.capsule_force(), sphere_force, rtol=1e-6, atol=1e-9), tool
        assert np.all(capsule.contact_force() == 0.0)  # no sphere set on this body


def settled_under_capsule(
    depth: float, radius: float, static: bool = True
) -> tuple[DeformableBody, np.ndarray, np.ndarray]:
    """A 40 x 20 x 20 mm block (2.5 mm cells, bottom held) with a capsule lying along x on its
    top, from x = 10 to 30 mm, pressed ``depth`` in; settled statically or by 3 s of steps
    (a static solve of a deeper press can alternate between contact sets: docs/deformation.md)."""
    body = held_block((0.04, 0.02, 0.02), (16, 8, 8))
    start = np.array([0.01, 0.01, 0.02 + radius - depth])
    end = np.array([0.03, 0.01, 0.02 + radius - depth])
    body.set_capsule(start, end, radius)
    if static:
        assert body.solve_static(tol=1e-6).converged
    else:
        for _ in range(180):
            body.step(STEP)
    return body, start, end


def test_capsule_lying_along_the_surface_pushes_a_line_of_nodes_and_none_end_inside() -> None:
    depth, radius = 1e-3, 4e-3
    body, start, end = settled_under_capsule(depth, radius)
    rest, x = body.rest, body.positions
    top = np.abs(rest[:, 2] - 0.02) < 1e-9
    under_axis = top & (np.abs(rest[:, 1] - 0.01) < 1e-9)
    along_shaft = under_axis & (rest[:, 0] > 0.01 - 1e-9) & (rest[:, 0] < 0.03 + 1e-9)
    beyond_tip = under_axis & (rest[:, 0] < 0.003)  # 7 mm past the rounded tip (reach 4 mm)
    sink = rest[:, 2] - x[:, 2]
    assert along_shaft.sum() == 9  # the line of nodes under the shaft, 2.5 mm apart
    assert np.all(sink[along_shaft] > 0.9 * depth), "every node under the shaft is pushed down"
    assert np.all(sink[beyond_tip] < 0.5 * sink[along_shaft].min())
    gap = np.linalg.norm(x - closest_on_segment(x, start, end), axis=1) - radius
    assert gap.min() > -0.02 * depth, "no node stays inside the capsule (penalty depth < 2 %)"
    force = body.capsule_force()
    assert force[2] > 0.0
    assert abs(force[0]) < 1e-3 * force[2] and abs(force[1]) < 1e-3 * force[2]  # symmetric line


def test_tool_forces_are_newtons_balanced_by_the_supports() -> None:
    body, _, _ = settled_under_capsule(1e-3, 4e-3)
    support = body.reaction_forces().sum(axis=0)  # what the held base pushes with
    assert np.allclose(support, body.capsule_force(), rtol=1e-3, atol=1e-9 * abs(support[2]))
    stepped, _, _ = settled_under_capsule(1e-3, 4e-3, static=False)
    deeper, _, _ = settled_under_capsule(2e-3, 4e-3, static=False)
    assert stepped.capsule_force()[2] == pytest.approx(body.capsule_force()[2], rel=0.05)
    assert deeper.capsule_force()[2] > 1.5 * stepped.capsule_force()[2]

    plane_body = held_block((0.02, 0.02, 0.02), (4, 4, 4))
    plane_body.set_plane(np.array([0.0, 0.0, 0.019]), np.array([0.0, 0.0, -1.0]))  # 1 mm down
    assert plane_body.solve_static(tol=1e-6).converged
    plane = plane_body.plane_force()
    assert plane[2] > 0.0
    assert np.allclose(plane_body.reaction_forces().sum(axis=0), plane, rtol=1e-3, atol=1e-9 * plane[2])
    # a 1 mm squeeze of a 20 mm block, laterally confined only by itself: between E*A*strain and
    # the fully confined (P-wave) modulus
    e, nu, area, strain = TISSUE.youngs_pa, TISSUE.poisson, 0.02**2, 0.05
    confined = e * (1 - nu) / ((1 + nu) * (1 - 2 * nu))
    assert e * area * strain * 0.9 < plane[2] < confined * area * strain


def test_bad_capsules_are_refused() -> None:
    body = held_block((0.01, 0.01, 0.01), (2, 2, 2))
    with pytest.raises(SimulationError, match="radius"):
        body.set_capsule(np.zeros(3), np.ones(3), 0.0)
    with pytest.raises(SimulationError, match="finite"):
        body.set_capsule(np.zeros(3), np.array([np.nan, 0.0, 0.0]), 0.001)
    assert np.all(body.capsule_force() == 0.0) and body.obstacles.capsule is None


def test_pinned_points_hold_where_they_are_and_clear_frees_them() -> None:
    body = held_block((0.03, 0.03, 0.03), (6, 6, 6))
    corner = np.array([0.03, 0.03, 0.03])
    handle = body.grasp(np.array([0.0, 0.0, 0.03]))
    body.drag(handle, np.array([-0.006, 0.0, 0.03]))
    for _ in range(30):
        body.step(STEP)
    pinned_at = body.positions
    assert body.pinned_nodes().size == 0
    nodes = body.pin(pinned_at[np.argmin(np.linalg.norm(body.rest - corner, axis=1))], radius_m=0.0052)
    assert len(nodes) == 4  # the corner node and its three neighbours, one cell away
    assert not body.anchored[nodes].any() and np.array_equal(body.pinned_nodes(), np.sort(nodes))
    assert np.linalg.norm(pinned_at[nodes] - body.rest[nodes], axis=1).max() > 1e-5  # deformed
    body.drag(handle, np.array([-0.012, 0.0, 0.03]))
    for _ in range(60):
        body.step(STEP)
    assert np.array_equal(body.positions[nodes], pinned_at[nodes]), "held where they were pinned"
    assert np.all(body.reaction_forces()[nodes, 0] > 0.0)  # the pins hold the tissue back
    # a second pin over the same nodes pins nothing new; far away is refused
    again = body.pin(pinned_at[nodes[0]], radius_m=1e-4)
    assert not np.isin(again, nodes).any()
    with pytest.raises(SimulationError, match="nothing to pin"):
        body.pin(np.array([1.0, 1.0, 1.0]))

    body.clear_pins()
    assert body.pinned_nodes().size == 0
    assert body.free[nodes].all()
    for _ in range(60):
        body.step(STEP)
    assert np.linalg.norm(body.positions[nodes] - pinned_at[nodes], axis=1).max() > 1e-4, "free again"
    assert body.inverted_elements() == 0
