"""3D lattice Boltzmann pressure loss of idealised stenoses against Young & Tsai (1973).

The geometry is a straight circular tube (diameter D0) with a smooth axisymmetric cosine narrowing
of length 2 D0 (the idealised shape of Ahmed & Giddens and many later studies), a parabolic
velocity inlet on one box face and a pressure outlet on the opposite face, long enough
downstream for the pressure to recover.

The stenosis loss is measured as the jump between two straight lines fitted to the mean
cross-section pressure: one over the fully developed stretch upstream, one over the recovered
stretch far downstream, both evaluated at the throat. This removes the tube's own Poiseuille
friction over the same length (as measured on the lattice), so what is compared is the loss the
stenosis adds, which is what Young–Tsai's formula predicts. The flow rate is the one measured
upstream; Young–Tsai is evaluated at the throat area the lattice actually resolves.

``benchmarks/stenosis_table.py`` runs 50–90 % and prints the table in docs/flow.md; the helpers
live here so that the benchmark and the test measure the same thing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pytest

from surgtwin.core.flow.lbm import LbmSetup, run
from surgtwin.core.flow.reduced import Segment, Stenosis, young_tsai_coefficients

VISCOSITY, DENSITY = 3.5e-3, 1060.0  # blood, Pa s and kg/m^3
LESION_DIAMETERS = 2.0  # cosine narrowing over 2 D0


@dataclass(frozen=True)
class StenosisCase:
    """One run: severity, Reynolds number (mean inlet velocity and D0) and the lattice."""

    area_reduction: float
    reynolds: float
    cells_across: int
    diameter_m: float = 4e-3
    upstream_diameters: float = 2.0
    downstream_diameters: float = 10.0
    throat_lattice_velocity: float = 0.1  # mean velocity in the throat, lattice units
    smagorinsky: float = 0.0
    tolerance: float = 1e-5
    max_steps: int = 200_000
    average_last: float = 0.25  # a run that ends unsteady is read as the mean of its last quarter

    @property
    def dx_m(self) -> float:
        return self.diameter_m / self.cells_across

    @property
    def mean_velocity_m_s(self) -> float:
        return self.reynolds * VISCOSITY / (DENSITY * self.diameter_m)

    def setup(self) -> LbmSetup:
        # peak inlet velocity = 2 x mean; the throat mean is A0/As times the inlet mean
        peak = min(0.1, 2.0 * self.throat_lattice_velocity * (1.0 - self.area_reduction))
        return LbmSetup(
            self.dx_m, self.mean_velocity_m_s, VISCOSITY, DENSITY,
            max_lattice_velocity=peak, smagorinsky=self.smagorinsky,
        )  # fmt: skip


@dataclass(frozen=True)
class StenosisGeometry:
    mask: np.ndarray  # (n, n, length) fluid cells, flow along axis 2
    throat_z: float  # cell index of the narrowest section
    half_length: float  # half the lesion length, cells
    radius_cells: float  # R0 in cells (the halfway bounce-back wall)


def stenosed_tube(case: StenosisCase) -> StenosisGeometry:
    """Cells whose centres lie inside r(z) = R0 (1 - delta/2 (1 + cos(pi (z - zc) / half)))."""
    n_across = case.cells_across
    r0 = n_across / 2
    length = round((case.upstream_diameters + LESION_DIAMETERS + case.downstream_diameters) * n_across)
    throat_z = (case.upstream_diameters + LESION_DIAMETERS / 2) * n_across
    half = LESION_DIAMETERS * n_across / 2
    n = n_across + 2  # one solid ring around the tube
    centre = (n - 1) / 2
    y, x = np.mgrid[0:n, 0:n]
    r2 = (x - centre) ** 2 + (y - centre) ** 2
    z = np.arange(length, dtype=float)
    delta = 1.0 - math.sqrt(1.0 - case.area_reduction)  # diameter reduction
    inside = np.abs(z - throat_z) < half
    radius = np.where(inside, r0 * (1 - delta / 2 * (1 + np.cos(np.pi * (z - throat_z) / half))), r0)
    mask = r2[:, :, None] < radius[None, None, :] ** 2
    return StenosisGeometry(mask, throat_z, half, r0)


@dataclass(frozen=True)
class StenosisOutcome:
    case: StenosisCase
    lattice_area_reduction: float  # 1 - throat cells / tube cells
    flow_m3_s: float
    reynolds: float  # at the measured flow
    loss_3d_pa: float
    young_tsai_pa: float
    young_tsai_inertial_pa: float  # the K_t (expansion) part alone
    lubrication_pa: float  # Stokes (slowly varying) viscous loss of the same cosine narrowing
    upstream_slope_ratio: float  # fitted upstream gradient / Hagen-Poiseuille
    downstream_slope_ratio: float  # the same far downstream: near 1 when the pressure has recovered
    fluid_cells: int
    steps: int
    seconds: float
    converged: bool

    @property
    def ratio(self) -> float:
        return self.loss_3d_pa / self.young_tsai_pa


def young_tsai_loss(area_reduction: float, diameter_m: float, flow_m3_s: float) -> tuple[float, float]:
    """The stenosis term of reduced.py for a 2 D0 lesion: (K_v + K_t parts, K_t part alone)."""
    segment = Segment(
        length_m=1.0,
        radius_m=diameter_m / 2,
        stenosis=Stenosis(area_reduction, LESION_DIAMETERS * diameter_m),
    )
    viscous, inertial = young_tsai_coefficients(segment, VISCOSITY, DENSITY)
    inertial_loss = inertial * flow_m3_s * abs(flow_m3_s)
    return viscous * flow_m3_s + inertial_loss, inertial_loss


def lubrication_loss(area_reduction: float, diameter_m: float, flow_m3_s: float) -> float:
    """8 mu Q / pi * integral of (r^-4 - R0^-4) dz over the cosine narrowing (Stokes limit)."""
    r0 = diameter_m / 2
    delta = 1.0 - math.sqrt(1.0 - area_reduction)
    s = np.linspace(-1.0, 1.0, 4001)
    r = r0 * (1 - delta / 2 * (1 + np.cos(np.pi * s)))
    excess = float(np.trapezoid(r**-4.0 - r0**-4.0, s)) * LESION_DIAMETERS * diameter_m / 2
    return 8.0 * VISCOSITY * flow_m3_s / math.pi * excess


def run_stenosis(case: StenosisCase) -> StenosisOutcome:
    geometry = stenosed_tube(case)
    mask = geometry.mask
    setup = case.setup()
    started = time.perf_counter()
    result = run(
        mask,
        setup,
        axis=2,
        inlet_profile="parabolic",
        tolerance=case.tolerance,
        check_every=200,
        max_steps=case.max_steps,
        average_last=case.average_last,
    )
    seconds = time.perf_counter() - started
    d0 = case.cells_across
    length = mask.shape[2]
    pressure = np.nanmean(result.pressure_pa.reshape(-1, length), axis=0)
    flows = result.velocity_m_s[..., 2].sum(axis=(0, 1)) * case.dx_m**2
    z = np.arange(length, dtype=float)
    # upstream: one D0 clear of the inlet, half a D0 clear of the narrowing
    up = (z >= d0) & (z <= geometry.throat_z - geometry.half_length - 0.5 * d0)
    # downstream: the last 3 D0, a few cells clear of the outlet layer
    down = (z >= length - 3 * d0 - 3) & (z <= length - 4)
    fit_up = np.polyfit(z[up], pressure[up], 1)
    fit_down = np.polyfit(z[down], pressure[down], 1)
    loss = float(np.polyval(fit_up, geometry.throat_z) - np.polyval(fit_down, geometry.throat_z))
    flow = float(np.mean(flows[up]))
    throat_cells = mask[:, :, round(geometry.throat_z)].sum()
    lattice_reduction = 1.0 - float(throat_cells) / float(mask[:, :, 0].sum())
    radius_m = case.diameter_m / 2
    poiseuille_slope = 8 * VISCOSITY * flow / (math.pi * radius_m**4) * case.dx_m  # Pa per cell
    mean_velocity = flow / (math.pi * radius_m**2)
    young_tsai, young_tsai_inertial = young_tsai_loss(lattice_reduction, case.diameter_m, flow)
    return StenosisOutcome(
        case=case,
        lattice_area_reduction=lattice_reduction,
        flow_m3_s=flow,
        reynolds=DENSITY * mean_velocity * case.diameter_m / VISCOSITY,
        loss_3d_pa=loss,
        young_tsai_pa=young_tsai,
        young_tsai_inertial_pa=young_tsai_inertial,
        lubrication_pa=lubrication_loss(lattice_reduction, case.diameter_m, flow),
        upstream_slope_ratio=float(-fit_up[0] / poiseuille_slope),
        downstream_slope_ratio=float(-fit_down[0] / poiseuille_slope),
        fluid_cells=result.fluid_cells,
        steps=result.steps,
        seconds=seconds,
        converged=result.converged,
    )


# CI subset: the table's Reynolds number on a coarser lattice (12 cells across D0), a shorter tail and
# a looser steady test (1e-4 moved the 50 % loss by 0.04 %), to stay near 30 s on 2 cores.
CI_CASES = {
    area: StenosisCase(area, 50.0, 12, upstream_diameters=3.0, downstream_diameters=6.0, tolerance=1e-4)
    for area in (0.5, 0.75)
}
_OUTCOMES: dict[float, StenosisOutcome] = {}


def outcome(area: float) -> StenosisOutcome:
    if area not in _OUTCOMES:
        _OUTCOMES[area] = run_stenosis(CI_CASES[area])
        o = _OUTCOMES[area]
        print(
            f"{area:.0%} ({o.lattice_area_reduction:.1%} on the lattice), Re {o.reynolds:.1f}: "
            f"3D {o.loss_3d_pa:.3f} Pa, Young-Tsai {o.young_tsai_pa:.3f} Pa (K_t part "
            f"{o.young_tsai_inertial_pa:.3f}), Stokes {o.lubrication_pa:.3f} Pa, ratio {o.ratio:.3f}, "
            f"slopes {o.upstream_slope_ratio:.3f}/{o.downstream_slope_ratio:.3f}, {o.steps} steps, "
            f"{o.fluid_cells} cells, {o.seconds:.1f} s"
        )
    return _OUTCOMES[area]


def test_geometry_has_the_asked_throat() -> None:
    for area in (0.5, 0.75, 0.9):
        geometry = stenosed_tube(StenosisCase(area, 50.0, 16))
        mask = geometry.mask
        throat = mask[:, :, round(geometry.throat_z)].sum() / mask[:, :, 0].sum()
        assert 1 - throat == pytest.approx(area, abs=0.04)  # a staircased circle of 5-11 cells
        areas = mask.sum(axis=(0, 1))
        assert areas[0] == areas[-1] == areas.max()  # narrows only at the lesion
        assert areas.min() == areas[round(geometry.throat_z)]  # narrowest at the throat


def test_young_tsai_helper_matches_formula() -> None:
    d0, area, flow = 4e-3, 0.75, 1e-6
    u = flow / (math.pi * d0**2 / 4)
    la = 0.83 * 2 * d0 + 1.64 * d0 * math.sqrt(1 - area)
    kv = 32 * la / d0 * (1 / (1 - area)) ** 2
    expected = kv * VISCOSITY * u / d0 + 1.52 / 2 * DENSITY * (1 / (1 - area) - 1) ** 2 * u * u
    total, inertial = young_tsai_loss(area, d0, flow)
    assert total == pytest.approx(expected, rel=1e-12)
    assert 0 < inertial < total


def test_loss_rises_steeply_with_severity() -> None:
    mild, severe = outcome(0.5), outcome(0.75)
    assert mild.loss_3d_pa > 0
    # (A0/As)^2 goes from 4.6 to 16 on the lattice: every model loss term grows at least as fast as A0/As
    assert severe.loss_3d_pa > 2 * mild.loss_3d_pa


@pytest.mark.parametrize("area", [0.5, 0.75])
def test_pressure_line_recovers_downstream(area: float) -> None:
    o = outcome(area)
    assert o.converged
    # the far-downstream gradient is the tube's own again: the jet has reattached before the fit window
    assert o.downstream_slope_ratio == pytest.approx(o.upstream_slope_ratio, rel=0.1)


@pytest.mark.parametrize("area", [0.5, 0.75])
def test_loss_against_young_tsai(area: float) -> None:
    o = outcome(area)
    # Lower bound: steady Navier-Stokes dissipates at least as much as Stokes flow (Helmholtz), and
    # between developed sections the loss is the dissipation over Q.
    assert o.loss_3d_pa > o.lubrication_pa
    # Young-Tsai's K_v (L_a = 0.83 L_s + 1.64 D_s, fitted on their models) is 4.3-4.8 x the Stokes
    # loss of a smooth cosine narrowing, so at Re 50 the full formula overestimates by 2-4 x ...
    assert o.ratio < 0.5
    # ... while its inertial (K_t = 1.52) part accounts for what the 3D flow loses beyond Stokes.
    # 25 %: the 12-cell lattice reads the tube's own friction 9-18 % above Hagen-Poiseuille, the loss
    # moves by ~10 % from 12 to 16 cells (benchmarks/stenosis_table.py), and K_t is an empirical fit.
    assert o.loss_3d_pa == pytest.approx(o.lubrication_pa + o.young_tsai_inertial_pa, rel=0.25)
