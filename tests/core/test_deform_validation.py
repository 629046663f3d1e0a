"""The soft-tissue solver against analytic answers (../shared/REFERENCE.md, "Solid mechanics").

Each test refines the mesh, prints its error table (``pytest -s`` shows them) and asserts the
finest mesh. Solves run on one numba thread: the test machine is shared by many processes and a
parallel region there waits a scheduler slice for its second thread (tests/core/
test_deform_solver.py checks that two threads give the same answers).
"""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.deform.materials import Material
from surgtwin.core.deform.mesh import box_mesh
from surgtwin.core.deform.solver import DeformableBody

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


def material(e_pa: float, nu: float, rho: float = 1000.0) -> Material:
    return Material("test", e_pa, nu, rho, "validation test")


def table(title: str, header: str, rows: list[str]) -> None:
    print(f"\n{title}\n{header}\n" + "\n".join(rows))


# ----------------------------------------------------------------------------------- cantilevers
BEAM_L, BEAM_H = 0.2, 0.01  # 20 cm long, 1 cm square section


def beam(n: int, e_pa: float, nu: float, rho: float = 1000.0, gravity: float = 0.0) -> DeformableBody:
    mesh = box_mesh((BEAM_L, BEAM_H, BEAM_H), (20 * n, n, n))
    clamped = mesh.nodes[:, 0] < 1e-9
    return DeformableBody(mesh, material(e_pa, nu, rho), fixed=clamped, gravity=(0.0, 0.0, -gravity))


def timoshenko_terms(e_pa: float, nu: float) -> tuple[float, float, float]:
    area = BEAM_H * BEAM_H
    inertia = BEAM_H**4 / 12.0
    kappa = 10.0 * (1.0 + nu) / (12.0 + 11.0 * nu)
    return inertia, kappa * e_pa / (2.0 * (1.0 + nu)) * area, area


def tip_deflection(body: DeformableBody) -> float:
    tip = body.rest[:, 0] > BEAM_L - 1e-9
    return float(-body.displacement()[tip, 2].mean())


@pytest.mark.parametrize("nu", [0.3, 0.495])
def test_cantilever_tip_load_matches_timoshenko(nu: float) -> None:
    """Also the locking check: at nu = 0.495 a locking element would be far too stiff."""
    e_pa = 1e5
    inertia, kga, _ = timoshenko_terms(e_pa, nu)
    load = 1e-3 * BEAM_L * 3.0 * e_pa * inertia / BEAM_L**3  # tip deflection ~ 0.1 % of the length
    expected = load * BEAM_L**3 / (3.0 * e_pa * inertia) + load * BEAM_L / kga
    rows, errors = [], []
    for n in (1, 2, 4) if nu < 0.45 else (1, 2, 3):  # 0.495 needs many more CG iterations
        body = beam(n, e_pa, nu)
        tip = np.nonzero(body.rest[:, 0] > BEAM_L - 1e-9)[0]
        body.set_load(tip, np.array([0.0, 0.0, -load / tip.size]))
        stats = body.solve_static(tol=1e-5, cg_tol=1e-10)
        err = tip_deflection(body) / expected - 1.0
        errors.append(err)
        rows.append(
            f"{n:>2} {body.elements.shape[0]:>6} {tip_deflection(body) * 1e6:>10.3f} {err * 100:>+8.2f} % "
            f"{stats.cg_iterations:>6}"
        )
    table(
        f"cantilever, tip load, nu={nu}: expected {expected * 1e6:.3f} um (Timoshenko)",
        " n  cells   tip (um)      error  CG its",
        rows,
    )
    assert abs(errors[-1]) < 0.05
    assert abs(errors[-1]) <= abs(errors[0]) + 0.01  # refining does not make it worse


def test_cantilever_own_weight_matches_timoshenko() -> None:
    e_pa, nu, rho, g = 1e9, 0.3, 1000.0, 9.81  # stiff enough for a small (0.1 % of L) deflection
    inertia, kga, area = timoshenko_terms(e_pa, nu)
    q = rho * g * area
    expected = q * BEAM_L**4 / (8.0 * e_pa * inertia) + q * BEAM_L**2 / (2.0 * kga)
    rows, errors = [], []
    for n in (1, 2, 4):
        body = beam(n, e_pa, nu, rho, gravity=g)
        body.solve_static(tol=1e-5, cg_tol=1e-10)
        err = tip_deflection(body) / expected - 1.0
        errors.append(err)
        rows.append(
            f"{n:>2} {body.elements.shape[0]:>6} {tip_deflection(body) * 1e6:>10.3f} {err * 100:>+8.2f} %"
        )
    table(
        f"cantilever, own weight: expected {expected * 1e6:.3f} um (Timoshenko)",
        " n  cells   tip (um)      error",
        rows,
    )
    assert abs(errors[-1]) < 0.05


# --------------------------------------------------------------------------- uniaxial compression
def compressed_block(n: int, nu: float, strain: float, e_pa: float = 5e3) -> DeformableBody:
    """Unit-ish cube, frictionless ends: bottom held along z only (plus pins against rigid
    motion), top face pushed down by ``strain`` (negative: compression)."""
    size = 0.02
    mesh = box_mesh((size, size, size), (n, n, n))
    body = DeformableBody(mesh, material(e_pa, nu))
    x = mesh.nodes
    bottom = np.nonzero(x[:, 2] < 1e-9)[0]
    top = np.nonzero(x[:, 2] > size - 1e-9)[0]
    body.set_prescribed(bottom, x[bottom], axes=(False, False, True))
    origin = np.nonzero(np.all(x < 1e-9, axis=1))[0]
    body.set_prescribed(origin, x[origin], axes=(True, True, True))
    along_x = np.nonzero((x[:, 0] > size - 1e-9) & (x[:, 1] < 1e-9) & (x[:, 2] < 1e-9))[0]
    body.set_prescribed(along_x, x[along_x], axes=(False, True, False))
    body.set_prescribed(top, x[top] + np.array([0.0, 0.0, strain * size]), axes=(False, False, True))
    body.solve_static(tol=1e-7, cg_tol=1e-10, max_steps=100, max_increment_cells=0.25)
    return body


def nominal_stress(body: DeformableBody) -> float:
    size = float(body.rest[:, 2].max())
    top = body.rest[:, 2] > size - 1e-9
    return float(body.reaction_forces()[top, 2].sum() / size**2)


def test_uniaxial_compression_follows_the_material_law() -> None:
    e_pa, nu = 5e3, 0.3
    rows = []
    results = {}
    for strain in (-0.001, -0.01, -0.05, -0.1, -0.2):
        body = compressed_block(4, nu, strain, e_pa)
        stress = nominal_stress(body)
        stretch = 1.0 + strain
        neo = e_pa / (2.0 * (1.0 + nu)) * (stretch - stretch**-2)  # incompressible neo-Hookean, for reference
        results[strain] = stress / (e_pa * strain) - 1.0
        rows.append(
            f"{strain:>7.3f} {stress:>10.2f} {e_pa * strain:>10.2f} {results[strain] * 100:>+7.2f} % "
            f"{neo:>10.2f}"
        )
    table(
        "uniaxial compression, nu=0.3, 4x4x4 cells: nominal stress vs E*strain",
        " strain  sigma (Pa)  E*eps (Pa)   error  neoHooke nu->.5 (Pa)",
        rows,
    )
    for strain in (-0.001, -0.01):
        assert abs(results[strain]) < 0.01  # the linear law at small strain
    assert abs(results[-0.05]) < 0.05


@pytest.mark.parametrize("nu", [0.49, 0.495])
def test_nearly_incompressible_block_keeps_its_volume_and_does_not_lock(nu: float) -> None:
    e_pa = 5e3
    rows = []
    for n in (2, 4):
        body = compressed_block(n, nu, -0.2, e_pa)
        change = float(body.element_volumes().sum() / body.rest_volume / body.elements.shape[0] - 1.0)
        small = compressed_block(n, nu, -0.01, e_pa)
        stiffness_err = nominal_stress(small) / (e_pa * -0.01) - 1.0
        rows.append(
            f"{n:>2} {change * 100:>+8.3f} % {stiffness_err * 100:>+8.2f} % {body.inverted_elements():>4}"
        )
    table(
        f"nu={nu}: 20 % compression volume change; 1 % compression stiffness vs E",
        " n  vol change  E error  inverted",
        rows,
    )
    assert abs(change) < 0.01
    assert abs(stiffness_err) < 0.02
    assert body.inverted_elements() == 0


# ---------------------------------------------------------------------------------------- Hertz
def test_sphere_indentation_matches_hertz() -> None:
    e_pa, nu, radius, depth = 1e4, 0.3, 5e-3, 1e-4
    # quarter model: symmetry planes x = 0 and y = 0, bottom held. The block must be deep: at
    # 6 mm (8.5 contact radii) the held bottom alone made it 7 % stiffer than the half-space.
    block = 12e-3
    contact_radius = np.sqrt(radius * depth)
    expected = 4.0 / 3.0 * e_pa / (1.0 - nu**2) * np.sqrt(radius) * depth**1.5
    rows, errors = [], []
    for n in (16, 24, 32):
        mesh = box_mesh((block, block, block), (n, n, n))
        x = mesh.nodes
        body = DeformableBody(mesh, material(e_pa, nu), fixed=x[:, 2] < 1e-9)
        on_x0 = np.nonzero(x[:, 0] < 1e-9)[0]
        on_y0 = np.nonzero(x[:, 1] < 1e-9)[0]
        body.set_prescribed(on_x0, x[on_x0], axes=(True, False, False))
        body.set_prescribed(on_y0, x[on_y0], axes=(False, True, False))
        body.set_sphere(np.array([0.0, 0.0, block + radius - depth]), radius)
        stats = body.solve_static(tol=1e-4, cg_tol=1e-8, max_steps=30)
        force = 4.0 * float(body.contact_force()[2])  # four quarters push the sphere up
        err = force / expected - 1.0
        errors.append(err)
        rows.append(
            f"{n:>3} {mesh.elements.shape[0]:>6} {contact_radius / mesh.cell_m:>5.1f} {force * 1e3:>9.4f} "
            f"{err * 100:>+7.2f} % {stats.outer_iterations:>3} {stats.cg_iterations:>6}"
        )
    table(
        f"Hertz, R={radius * 1e3} mm, depth={depth * 1e3} mm: expected {expected * 1e3:.4f} mN",
        "  n  cells  a/h  F (mN)      error  outer  CG",
        rows,
    )
    assert abs(errors[-1]) < 0.10


# ------------------------------------------------------------------------------------ stability
def test_violent_random_drags_never_break_the_body() -> None:
    rng = np.random.default_rng(5)
    size, n = 0.06, 6
    mesh = box_mesh((size, size, size), (n, n, n))
    x = mesh.nodes
    body = DeformableBody(mesh, material(3e3, 0.45), fixed=x[:, 2] < 1e-9, gravity=(0.0, 0.0, -9.81))
    surface = np.nonzero((x[:, 2] > 1e-9) & np.any((x < 1e-9) | (x > size - 1e-9), axis=1))[0]
    cell = mesh.cell_m
    handles: list[int] = []
    worst_inverted = 0
    max_disp = 0.0
    rejected = 0
    for step in range(1000):
        if len(handles) < 3 and rng.random() < 0.2:
            node = int(rng.choice(surface))
            handles.append(body.grasp(body.positions[node]))
        for h in handles:
            target = body._grasp_of(h).target + rng.uniform(-3.0, 3.0, 3) * cell  # up to 3 cells a step
            target = np.clip(target, -size, 2.0 * size)  # wild, but within reach of the block
            body.drag(h, target)
        if handles and rng.random() < 0.05:
            body.release(handles.pop(int(rng.integers(len(handles)))))
        stats = body.step(1.0 / 60.0)
        rejected += stats.rejected
        assert np.isfinite(body.positions).all(), f"non-finite positions at step {step}"
        worst_inverted = max(worst_inverted, body.inverted_elements())
        max_disp = max(max_disp, body.max_displacement_m())
    inverted_while_dragged = body.inverted_elements()
    for h in handles:
        body.release(h)
    for _ in range(120):  # let go: two seconds to settle
        body.step(1.0 / 60.0)
    print(
        f"\nrandom drags: worst inverted during {worst_inverted}, at step 1000 {inverted_while_dragged}, "
        f"after release {body.inverted_elements()}; max displacement {max_disp * 1e3:.1f} mm "
        f"(block {size * 1e3:.0f} mm); rejected tries {rejected}"
    )
    assert np.isfinite(body.positions).all()
    assert body.inverted_elements() == 0
    assert max_disp < 20 * size  # no explosion: displacements stay on the scale of the drags
    assert body.max_displacement_m() < size  # and the body comes back near its rest shape
