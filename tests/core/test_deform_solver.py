"""Unit tests of the soft-tissue solver's pieces: element, invariance, tools, guards, threads."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from surgtwin.core.deform import kernels
from surgtwin.core.deform.errors import SimulationError
from surgtwin.core.deform.materials import Material
from surgtwin.core.deform.mesh import HexMesh, box_mesh
from surgtwin.core.deform.solver import MAX_HALVINGS, DeformableBody

TISSUE = Material("test tissue", 5e3, 0.45, 1000.0, "unit test")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


def block(n: int = 3, size: float = 0.03, **kw: object) -> DeformableBody:
    mesh = box_mesh((size, size, size), (n, n, n))
    return DeformableBody(mesh, TISSUE, **kw)  # type: ignore[arg-type]


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def test_element_stiffness_is_symmetric_psd_with_six_rigid_modes() -> None:
    mu, kappa, h = 1.7e3, 1.5e4, 0.004
    k_rest, rest, _ = kernels.reference_element(h, mu, kappa)
    g = kernels.volume_gradient_reference(h).ravel()
    k_full = k_rest + kappa / h**3 * np.outer(g, g)  # the linearised element at rest
    assert np.allclose(k_full, k_full.T, rtol=0, atol=1e-12 * np.abs(k_full).max())
    eig = np.linalg.eigvalsh(k_full)
    tiny = np.abs(eig) < 1e-9 * eig.max()
    assert tiny.sum() == 6
    assert eig.min() > -1e-9 * eig.max()
    # the zero modes are the rigid ones: translations and infinitesimal rotations
    centred = rest - rest.mean(axis=0)
    for axis in np.eye(3):
        assert np.allclose(k_full @ np.tile(axis, 8), 0.0, atol=1e-9 * eig.max())
        spin = np.cross(axis, centred).ravel()
        assert np.allclose(k_full @ spin, 0.0, atol=1e-9 * eig.max())


def test_uniform_stretch_gives_no_force_inside_a_patch() -> None:
    body = block(4)
    stretch = np.diag([1.02, 0.99, 1.01])
    body._x = body.rest @ stretch.T
    f = body.elastic_forces()
    inside = np.all((body.rest > 1e-9) & (body.rest < 0.03 - 1e-9), axis=1)
    assert inside.sum() == 27
    assert np.abs(f[inside]).max() < 1e-9 * np.abs(f).max()
    assert np.abs(f).max() > 0  # the boundary does feel it


def test_rigidly_rotated_body_has_no_elastic_force() -> None:
    body = block(3)
    r = rotation(np.array([1.0, 2.0, -0.5]), 2.3)  # a large rotation
    body._x = body.rest @ r.T + np.array([0.1, -0.2, 0.05])
    for _ in range(3):  # the warm-started rotation extraction converges in a few calls
        f = body.elastic_forces()
    scale = TISSUE.youngs_pa * body.cell_m * 0.01  # force of a 1 % strain
    assert np.abs(f).max() < 1e-6 * scale
    assert np.all(body.element_volumes() == pytest.approx(body.rest_volume, rel=1e-9))
    assert body.von_mises_stress().max() < 1e-6 * TISSUE.youngs_pa


def test_inverted_element_is_pushed_back_not_mirrored() -> None:
    body = block(1, fixed=None, damping=5.0)
    x = body.rest.copy()
    top = x[:, 2] > 1e-9
    x[top, 2] -= 1.5 * body.cell_m  # the top face pushed through the bottom
    body._x = x
    assert body.inverted_elements() == 1
    for _ in range(200):
        stats = body.step(1e-2)
    assert body.inverted_elements() == 0
    assert body.element_volumes()[0] == pytest.approx(body.rest_volume, rel=0.05)
    assert stats.rejected == 0


def test_free_fall_is_exact_and_elastic_force_free() -> None:
    body = block(2, gravity=(0.0, 0.0, -9.81), damping=0.0, cg_tol=1e-12)
    dt = 0.01
    for _ in range(10):
        body.step(dt)
    assert np.allclose(body.velocities[:, 2], -9.81 * 10 * dt, rtol=1e-6)
    assert np.allclose(body.velocities[:, :2], 0.0, atol=1e-9)


def test_uniaxial_stress_state_has_von_mises_equal_to_e_times_strain() -> None:
    body = block(2)
    eps, nu = 0.004, TISSUE.poisson
    body._x = body.rest @ np.diag([1 + eps, 1 - nu * eps, 1 - nu * eps]).T
    vm = body.von_mises_stress()
    assert vm == pytest.approx(np.full(8, TISSUE.youngs_pa * eps), rel=0.01)


def test_grasp_and_drag_reports_the_pull_on_the_tool() -> None:
    body = block(3, fixed=None)
    body.anchored[body.rest[:, 2] < 1e-9] = True
    top_corner = np.array([0.03, 0.03, 0.03])
    handle = body.grasp(top_corner)
    assert body.grasped_nodes(handle).tolist() == [
        int(np.argmin(np.linalg.norm(body.rest - top_corner, axis=1)))
    ]
    body.drag(handle, top_corner + np.array([0.0, 0.0, 0.005]))  # pull 5 mm up
    stats = body.solve_static(tol=1e-6)
    assert stats.converged
    node = body.grasped_nodes(handle)[0]
    assert body.positions[node, 2] == pytest.approx(0.035, abs=2e-4)  # the stiff spring holds it
    pull = body.tool_force(handle)
    assert pull[2] < 0  # the tissue pulls the tool back down
    support = body.reaction_forces()[body.anchored].sum(axis=0)
    assert pull == pytest.approx(support, rel=1e-3, abs=1e-6 * abs(pull[2]))  # tool and base balance
    body.release(handle)
    with pytest.raises(SimulationError):
        body.tool_force(handle)


def test_grasp_far_from_the_tissue_is_refused() -> None:
    with pytest.raises(SimulationError, match="nothing to grasp"):
        block(2).grasp(np.array([1.0, 1.0, 1.0]))


def test_sphere_press_pushes_back_and_plane_retracts() -> None:
    body = block(6)  # 5 mm cells: nodes under the sphere
    body.anchored[body.rest[:, 2] < 1e-9] = True
    body.set_sphere(np.array([0.015, 0.015, 0.03 + 0.01 - 0.002]), 0.01)  # 2 mm deep
    for _ in range(120):  # pressed in time, as the app does (see the report on static + deep sphere)
        body.step(1 / 60)
    assert body.contact_force()[2] > 0  # the tissue pushes the sphere up
    depth = 0.01 - np.linalg.norm(body.positions - np.array([0.015, 0.015, 0.038]), axis=1)
    assert depth.max() < 0.02 * 0.002  # penetration under 2 % of the indentation
    body.clear_sphere()
    assert np.all(body.contact_force() == 0)
    body.set_plane(np.array([0.0, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0]))  # keep x <= 0.02
    body.set_plane(np.array([0.02, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0]))
    body.solve_static(tol=1e-6)
    moving = ~body.anchored  # the held base cannot follow the plane
    assert body.positions[moving, 0].max() < 0.02 + 1e-5
    assert body.positions[moving, 0].max() > 0.019


def test_non_finite_step_is_rejected_and_state_kept() -> None:
    body = block(2)
    body.step(0.01)
    before = body.positions
    body.set_load(np.array([0]), np.array([np.inf, 0.0, 0.0]))
    stats = body.step(0.01)
    assert stats.rejected == MAX_HALVINGS + 1 and not stats.converged
    assert np.array_equal(body.positions, before)
    body.clear_loads()
    assert np.isfinite(body.step(0.01).residual)


def test_two_threads_give_the_same_answer() -> None:
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        body = block(3, gravity=(0.0, 0.0, -9.81), cg_tol=1e-12)
        body.anchored[body.rest[:, 2] < 1e-9] = True
        h = body.grasp(np.array([0.03, 0.0, 0.03]))
        body.drag(h, np.array([0.04, -0.01, 0.035]))
        for _ in range(5):
            body.step(1 / 60)
        results.append(body.positions)
    assert np.allclose(results[0], results[1], rtol=0, atol=1e-12)  # only summation order differs


def test_bad_meshes_and_materials_are_refused() -> None:
    mesh = box_mesh((0.02, 0.01, 0.01), (1, 1, 1))  # a 2:1 brick, not a cube
    with pytest.raises(SimulationError, match="cubic"):
        DeformableBody(mesh, TISSUE)
    cube = box_mesh((0.01, 0.01, 0.01), (1, 1, 1))

    class Odd:
        youngs_pa, poisson, density_kg_m3 = 5e3, 0.5, 1000.0

    with pytest.raises(SimulationError, match="Poisson"):
        DeformableBody(cube, Odd())
    with pytest.raises(SimulationError, match="fixed mask"):
        DeformableBody(cube, TISSUE, fixed=np.zeros(3, dtype=bool))
    empty = HexMesh(np.zeros((0, 3)), np.zeros((0, 8), dtype=np.int64), 0.01)
    with pytest.raises(SimulationError):
        DeformableBody(empty, TISSUE)
