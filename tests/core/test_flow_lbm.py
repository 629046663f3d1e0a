"""Validation of the 3D lattice Boltzmann preview against Poiseuille flow in a straight tube."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.errors import CancelledError
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.lbm import LbmResult, LbmSetup, run
from surgtwin.core.progress import Progress

DX = 1e-4  # 0.1 mm cells
VISCOSITY, DENSITY = 3.5e-3, 1060.0
LATTICE_VISCOSITY = 0.1  # tau = 0.8: converges in a few thousand steps
LATTICE_VELOCITY = 0.02


def tube(cells_across: int, length: int) -> np.ndarray:
    """A straight circular tube along z: cells whose centres lie inside the circle, one solid ring."""
    n = cells_across + 2
    c = (n - 1) / 2
    y, x = np.mgrid[0:n, 0:n]
    disk = (x - c) ** 2 + (y - c) ** 2 < (cells_across / 2) ** 2
    return np.repeat(disk[:, :, None], length, axis=2)


def setup_for_tau() -> LbmSetup:
    # lattice viscosity = nu dt / dx^2 with dt = u_lattice dx / (2 U): solve for the mean velocity U
    mean_velocity = LATTICE_VELOCITY * (VISCOSITY / DENSITY) / (2 * LATTICE_VISCOSITY * DX)
    return LbmSetup(DX, mean_velocity, VISCOSITY, DENSITY, max_lattice_velocity=LATTICE_VELOCITY)


_RUNS: dict[int, tuple[np.ndarray, LbmResult]] = {}


def poiseuille(cells_across: int) -> tuple[np.ndarray, LbmResult]:
    if cells_across not in _RUNS:
        mask = tube(cells_across, 2 * cells_across)
        _RUNS[cells_across] = mask, run(mask, setup_for_tau(), inlet_profile="parabolic")
    return _RUNS[cells_across]


def profile_error(cells_across: int) -> float:
    mask, result = poiseuille(cells_across)
    section = mask[:, :, 0]
    n = section.shape[0]
    c = (n - 1) / 2
    y, x = np.mgrid[0:n, 0:n]
    r2 = ((x - c) ** 2 + (y - c) ** 2) * DX**2
    radius = cells_across / 2 * DX
    axial = result.velocity_m_s[:, :, cells_across, 2]
    flow = axial.sum() * DX**2
    parabola = 2 * flow / (np.pi * radius**2) * (1 - r2 / radius**2)
    return float(np.linalg.norm((axial - parabola)[section]) / np.linalg.norm(parabola[section]))


def test_setup_reports_lattice_units() -> None:
    s = setup_for_tau()
    assert s.tau == pytest.approx(3 * LATTICE_VISCOSITY + 0.5)
    assert s.dt_s == pytest.approx(LATTICE_VELOCITY * DX / (2 * s.inlet_velocity_m_s))
    # TRT magic parameter: (1/w+ - 1/2)(1/w- - 1/2) = 3/16
    assert (1 / s.omega_plus - 0.5) * (1 / s.omega_minus - 0.5) == pytest.approx(3 / 16)
    with pytest.raises(FlowError):
        LbmSetup(DX, -1.0)


def test_poiseuille_profile_error_under_2_percent_and_falls_with_resolution() -> None:
    coarse, fine = profile_error(10), profile_error(20)
    print(f"L2 profile error: 10 cells {coarse:.4f}, 20 cells {fine:.4f}")
    assert poiseuille(20)[1].converged
    assert fine < 0.02
    assert fine < coarse


def test_pressure_drop_matches_hagen_poiseuille() -> None:
    d = 20
    mask, result = poiseuille(d)
    axial = result.velocity_m_s[..., 2]
    flow = axial[:, :, d].sum() * DX**2
    mean_pressure = np.nanmean(result.pressure_pa.reshape(-1, mask.shape[2]), axis=0)
    z0, z1 = d // 2, 3 * d // 2  # the middle half of the tube
    drop = mean_pressure[z0] - mean_pressure[z1]
    expected = 8 * VISCOSITY * (z1 - z0) * DX * flow / (np.pi * (d / 2 * DX) ** 4)
    print(f"pressure drop {drop:.4f} Pa vs Hagen-Poiseuille {expected:.4f} Pa ({drop / expected - 1:+.2%})")
    assert drop == pytest.approx(expected, rel=0.03)


def test_mass_is_conserved_between_inlet_and_outlet() -> None:
    d = 20
    mask, result = poiseuille(d)
    s = result.setup
    # the lattice is weakly compressible: mass flux is density x velocity, density from pressure
    density = DENSITY * (1 + 3 * result.pressure_pa / s.pressure_scale)
    mass_flux = np.nansum(density * result.velocity_m_s[..., 2], axis=(0, 1)) * DX**2
    inflow, outflow = mass_flux[1], mass_flux[-2]
    nominal = DENSITY * s.inlet_velocity_m_s * mask[:, :, 0].sum() * DX**2
    assert inflow == pytest.approx(outflow, rel=0.01)
    assert inflow == pytest.approx(nominal, rel=0.05)  # the inlet delivers the flow that was asked
    assert result.mlups > 0 and result.steps > 0
    assert np.all(result.velocity_m_s[~mask] == 0) and np.all(np.isnan(result.pressure_pa[~mask]))


def test_fixed_steps_and_cancel() -> None:
    mask = tube(6, 8)
    result = run(mask, setup_for_tau(), steps=30, check_every=10)
    assert result.steps == 30 and result.converged
    assert result.velocity_m_s[..., 2][mask].mean() > 0
    progress = Progress()
    progress.cancel()
    with pytest.raises(CancelledError):
        run(mask, setup_for_tau(), steps=30, progress=progress)


def test_rejects_vessel_not_reaching_both_faces() -> None:
    mask = tube(6, 8)
    mask[:, :, -1] = False
    with pytest.raises(FlowError):
        run(mask, setup_for_tau(), steps=1)


def test_an_unsteady_end_is_read_as_the_mean_of_the_last_part_of_the_run() -> None:
    """A run stopped before it settles returns the mean of its final quarter: the same numbers
    as averaging what the lattice held at each check of that quarter (velocity mass-weighted,
    mean(ρu) / mean(ρ), so the mean fields carry the mean mass flux)."""
    mask = tube(6, 12)
    setup = setup_for_tau()
    seen: list[tuple[int, np.ndarray, np.ndarray]] = []

    def record(solver) -> None:
        rho, u = solver.lattice_fields()
        seen.append((len(seen), rho.astype(np.float64), u.astype(np.float64)))
        solver.velocity_gain[:] = 3.0 if len(seen) % 2 else 0.2  # a pulsing inflow: ρ and u swing together

    result = run(
        mask, setup, tolerance=1e-12, check_every=10, max_steps=200, average_last=0.25, control=record
    )

    assert not result.converged and result.steps == 200 and result.averaged_steps == 50
    window = seen[-5:]  # checks after steps 160, 170, ... 200: the 50 steps past 150
    mean_rho = np.mean([rho for _, rho, _ in window], axis=0)
    mean_momentum = np.mean([rho[:, None] * u for _, rho, u in window], axis=0)
    mean_u = mean_momentum / mean_rho[:, None] * setup.velocity_scale
    plain_u = np.mean([u for _, _, u in window], axis=0) * setup.velocity_scale
    last_u = window[-1][2] * setup.velocity_scale
    axial = result.velocity_m_s[..., 2][mask]
    # the solver keeps fluid cells in C order, as boolean indexing reads them
    assert np.allclose(axial, mean_u[:, 2], rtol=1e-5, atol=1e-9)
    assert not np.allclose(axial, plain_u[:, 2], rtol=1e-4, atol=0)  # density swings: Favre differs
    assert not np.allclose(axial, last_u[:, 2], rtol=1e-3)  # still moving: the mean differs
    pressure = result.pressure_pa[mask]
    expected = (mean_rho - 1.0) / 3.0 * setup.pressure_scale
    assert np.allclose(pressure, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(FlowError, match="averaged fraction"):
        run(mask, setup, average_last=1.5)


def test_oscillating_flow_in_a_tube_follows_womersley() -> None:
    """A pulsatile flow Q0 + Q1 sin(ωt) through a tube at Womersley number α = R√(ω/ν) = 2.5:
    the pressure gradient's oscillating part must lead the flow and shrink as Womersley's
    solution says (Ĝ = iωρ Q̂ / (πR²(1 − 2J₁(Λ)/(ΛJ₀(Λ)))), Λ = i^{3/2}α), not follow the flow
    as a steady (Poiseuille) law would. Read in lattice units, relative to the steady part
    (so the staircase wall's radius error cancels), over the third cycle."""
    from scipy.special import jv

    across, length, lattice_viscosity, alpha, amplitude = 12, 48, 0.02, 2.5, 0.5
    radius = across / 2
    chunks_per_cycle = 200
    chunk = round(2 * np.pi * radius**2 / (alpha**2 * lattice_viscosity) / chunks_per_cycle)
    omega = 2 * np.pi / (chunk * chunks_per_cycle)
    # dt = u_max dx / (2 U) makes the lattice viscosity nu dt / dx^2: solve for the mean velocity U
    mean_velocity = 0.04 * (VISCOSITY / DENSITY) / (2 * lattice_viscosity * DX)
    setup = LbmSetup(DX, mean_velocity, VISCOSITY, DENSITY, max_lattice_velocity=0.04)
    assert setup.lattice_viscosity == pytest.approx(lattice_viscosity)
    mask = tube(across, length)
    middle = np.arange(length // 3, 2 * length // 3)
    samples: list[tuple[float, float, float]] = []

    def pulse(solver) -> None:
        z = np.unravel_index(solver.layout.stored, solver.layout.shape)[2] - 1
        rho, u = solver.lattice_fields()
        pressure = np.bincount(z, rho, minlength=length) / np.bincount(z, minlength=length) / 3.0
        flow = np.bincount(z, rho * u[:, 2], minlength=length)[length // 2]
        t = (len(samples) + 1) * chunk
        samples.append((t, -np.polyfit(middle, pressure[middle], 1)[0], flow))
        solver.velocity_gain[:] = 1 + amplitude * np.sin(omega * (t + chunk / 2))

    cycle = chunk * chunks_per_cycle
    run(
        mask,
        setup,
        steps=3 * cycle,
        check_every=chunk,
        control=pulse,
        inlet_profile="parabolic",
        ramp_steps=cycle,
    )
    t, gradient, flow = np.array(samples[-chunks_per_cycle:]).T
    basis = np.stack([np.ones_like(t), np.sin(omega * t), np.cos(omega * t)], axis=1)
    g = np.linalg.lstsq(basis, gradient, rcond=None)[0]
    q = np.linalg.lstsq(basis, flow, rcond=None)[0]
    g_hat, q_hat = g[1] + 1j * g[2], q[1] + 1j * q[2]  # x = Im(x̂ e^{iωt})
    lam = alpha * np.exp(0.75j * np.pi)
    expected = 1j * omega * q_hat / (np.pi * radius**2 * (1 - 2 * jv(1, lam) / (lam * jv(0, lam))))
    steady = 8 * lattice_viscosity * q[0] / (np.pi * radius**4)  # Poiseuille at the mean flow
    quasi_steady = 8 * lattice_viscosity * q_hat / (np.pi * radius**4)

    ratio = (g_hat / g[0]) / (expected / steady)
    assert abs(ratio) == pytest.approx(1.0, abs=0.05)
    assert abs(np.angle(ratio)) < 0.08  # radians
    assert abs(abs(g_hat / g[0]) / abs(quasi_steady / steady) - 1.0) > 0.3  # inertia matters here
