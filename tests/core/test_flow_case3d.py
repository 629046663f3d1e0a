"""The 3D preview on a traced vessel: the lumen on a lattice cut flat at its ends, the reduced
model's flow split at the outlets, mass conserved, Hagen–Poiseuille in a tube at any angle."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.flow import case3d
from surgtwin.core.flow.case import solve_case
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.lumen import resample_lumen

VISCOSITY = 3.5e-3
AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])  # 1 mm voxels, i j k = L P S


def capsule_mask(shape, start_kji, end_kji, radius) -> np.ndarray:
    """Voxels within ``radius`` of the segment start-end (voxel units, k j i)."""
    idx = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    a, b = np.asarray(start_kji, float), np.asarray(end_kji, float)
    t = np.clip((idx - a) @ (b - a) / np.dot(b - a, b - a), 0.0, 1.0)
    distance = np.linalg.norm(idx - (a + t[:, None] * (b - a)), axis=1)
    return (distance <= radius).reshape(shape)


@pytest.fixture(scope="module")
def oblique_tube():
    radius = 5.0  # 20 cells across at 0.5 mm (at 14 cells the gradient reads ~20 % high)
    direction = np.array([1.0, 0.3, 0.2]) / np.linalg.norm([1.0, 0.3, 0.2])
    start = np.array([6.0, 12.0, 12.0])
    mask = capsule_mask((60, 38, 34), start, start + 46 * direction, radius)
    case = solve_case(mask, AFFINE, inflow_ml_s=0.3)
    flow = case3d.run_case_3d(case, mask, AFFINE, cell_mm=0.5, max_steps=20_000)
    return case, flow


def test_oblique_tube_holds_its_inflow_and_conserves_mass(oblique_tube) -> None:
    case, flow = oblique_tube
    summary = case3d.summary(flow)
    print(summary)
    assert summary["converged"]
    inlet, outlet = flow.domain.ends
    assert inlet.name == "inlet" and outlet.flow_m3_s is None  # the one outlet holds the pressure
    assert flow.end_flow_m3_s(inlet) == pytest.approx(0.3e-6, rel=5e-3)  # the controller's target
    assert summary["mass_imbalance_percent"] < 1.0
    rows = case3d.end_rows(flow)
    assert rows[1]["flow_ml_s"] == pytest.approx(0.3, rel=0.01)
    assert rows[1]["pressure_drop_pa"] > 0


def test_oblique_tube_pressure_gradient_matches_hagen_poiseuille(oblique_tube) -> None:
    case, flow = oblique_tube
    branch = case.tree.branches[0]
    s = branch.arclength_mm()
    pressure = flow.pressure_at(branch.points_lps, branch.radius_mm)
    middle = (s > 0.25 * s[-1]) & (s < 0.75 * s[-1])
    gradient = -np.polyfit(s[middle] * 1e-3, pressure[middle], 1)[0]  # Pa/m
    # the lattice's own cross-section over the middle half: fluid volume / length
    axis = (branch.points_lps[-1] - branch.points_lps[0]) / np.linalg.norm(
        branch.points_lps[-1] - branch.points_lps[0]
    )
    along = (flow.grid.lps(np.argwhere(flow.grid.fluid)) - branch.points_lps[0]) @ axis
    inside = (along > 0.25 * s[-1]) & (along < 0.75 * s[-1])
    area_m2 = inside.sum() * flow.grid.cell_mm**3 / (0.5 * s[-1]) * 1e-6
    expected = 8 * np.pi * VISCOSITY * 0.3e-6 / area_m2**2  # 8 mu Q / (pi r^4), r^2 = A / pi
    error = gradient / expected - 1
    print(
        f"pressure gradient {gradient:.3f} Pa/m, Hagen-Poiseuille {expected:.3f} Pa/m: {100 * error:+.1f} %"
    )
    assert abs(error) < 0.08


def bifurcation_mask() -> np.ndarray:
    """A trunk (radius 4 voxels) splitting into limbs of radius 3 and 2.6."""
    shape = (64, 30, 56)
    trunk = capsule_mask(shape, (60, 15, 28), (36, 15, 28), 4.0)
    left = capsule_mask(shape, (36, 15, 28), (6, 15, 12), 3.0)
    right = capsule_mask(shape, (36, 15, 28), (6, 15, 44), 2.6)
    return trunk | left | right


@pytest.fixture(scope="module")
def bifurcation():
    mask = bifurcation_mask()
    case = solve_case(mask, AFFINE, inflow_ml_s=1.0)
    flow = case3d.run_case_3d(case, mask, AFFINE, cell_mm=0.7, max_steps=12_000)
    return case, flow


def test_bifurcation_takes_the_reduced_split_and_conserves_mass(bifurcation) -> None:
    case, flow = bifurcation
    assert len(flow.domain.ends) == 3
    prescribed = [e for e in flow.domain.ends[1:] if e.flow_m3_s is not None]
    held = [e for e in flow.domain.ends[1:] if e.flow_m3_s is None]
    assert len(prescribed) == 1 and len(held) == 1
    wider = max(case.result.outlets, key=lambda o: o.flow_m3_s).flow_m3_s
    (end,) = prescribed
    assert flow.end_flow_m3_s(end) == pytest.approx(end.flow_m3_s, rel=0.01)
    assert flow.end_flow_m3_s(held[0]) == pytest.approx(wider, rel=0.05)
    assert case3d.summary(flow)["mass_imbalance_percent"] < 1.0


def test_wall_shear_and_streamlines_come_from_the_run(bifurcation) -> None:
    case, flow = bifurcation
    wss = case3d.wall_shear_summary(flow)
    # Poiseuille wall shear in the trunk, 4 mu Q / (pi r^3), sets the scale
    trunk = 4 * VISCOSITY * 1e-6 / (np.pi * (4e-3) ** 3)
    assert 0.3 * trunk < wss["mean_pa"] < 3 * trunk and wss["max_pa"] >= wss["p95_pa"] >= wss["mean_pa"]
    lines = case3d.inlet_streamlines(flow, count=40)
    assert len(lines) >= 20
    reached = [line for line in lines if line.points_lps[-1][2] < 16]  # down into a branch
    assert len(reached) > 0.7 * len(lines)


def test_a_virtual_stent_opens_the_lumen_and_lowers_the_drop() -> None:
    shape = (80, 24, 24)
    k = np.arange(shape[0])[:, None, None]
    radius = 4.0 - 2.0 * np.exp(-(((k - 40) / 4.0) ** 2))  # 75 % area reduction at k = 40
    j, i = np.indices(shape[1:])
    mask = (j - 12) ** 2 + (i - 12) ** 2 <= radius**2
    case = solve_case(mask, AFFINE, inflow_ml_s=2.0)
    assert len(case.stenoses) == 1
    opened = case3d.stented_mask(case, mask, AFFINE)
    assert opened.sum() > mask.sum() and (opened | mask).sum() == opened.sum()
    assert opened[40].sum() > 0.8 * mask[10].sum()  # the throat at the healthy cross-section
    before = case3d.run_case_3d(case, mask, AFFINE, cell_mm=0.8, max_steps=6_000)
    after = case3d.run_case_3d(case3d.stented_case(case), opened, AFFINE, cell_mm=0.8, max_steps=6_000)
    (drop_before,) = case3d.stenosis_drops_pa(before, case)
    (drop_after,) = case3d.stenosis_drops_pa(after, case)
    print(f"3D drop across the stenosis {drop_before:.2f} Pa, stented {drop_after:.2f} Pa")
    assert drop_before > 2 * drop_after > 0


def test_too_coarse_a_lattice_is_refused_with_a_reason(oblique_tube) -> None:
    case, _ = oblique_tube
    mask = capsule_mask((60, 38, 34), (6, 12, 12), (50, 25, 21), 3.5)
    with pytest.raises(FlowError, match="narrowest lumen spans 2.3 cells"):
        case3d.run_case_3d(case, mask, AFFINE, cell_mm=4.2, max_steps=10)
    with pytest.raises(FlowError, match="positive"):
        resample_lumen(mask, AFFINE, 0.0)


def test_a_3d_stenosis_drop_is_read_only_when_fine_enough_at_a_validated_reynolds_number() -> None:
    """The 75 % waist (throat ~2 mm radius by area): at 2 mL/s its throat Reynolds number is
    ~190, beyond the stenosis table's ~120; at 0.5 mL/s it is ~50, and then only the cell size
    decides (8 cells across the throat)."""
    shape = (80, 24, 24)
    k = np.arange(shape[0])[:, None, None]
    radius = 4.0 - 2.0 * np.exp(-(((k - 40) / 4.0) ** 2))
    j, i = np.indices(shape[1:])
    mask = (j - 12) ** 2 + (i - 12) ** 2 <= radius**2
    fast, slow = (solve_case(mask, AFFINE, inflow_ml_s=q) for q in (2.0, 0.5))
    (stenosis,) = fast.stenoses
    throat_mm = 2 * stenosis.min_radius_mm
    expected = 1060.0 * (2e-6 / (np.pi * (throat_mm / 2e3) ** 2)) * throat_mm * 1e-3 / VISCOSITY
    assert case3d.throat_reynolds(fast, stenosis) == pytest.approx(expected, rel=0.02)
    assert case3d.throat_reynolds(slow, slow.stenoses[0]) == pytest.approx(expected / 4, rel=0.02)
    fine, coarse = throat_mm / 9, throat_mm / 5
    note = case3d.unresolved_note(fast, stenosis, fine)
    assert note is not None and "Reynolds number" in note and "cells" not in note
    note = case3d.unresolved_note(fast, stenosis, coarse)
    assert note is not None and "Reynolds number" in note and "5.0 cells" in note
    assert case3d.unresolved_note(slow, slow.stenoses[0], fine) is None
    assert "cells" in case3d.unresolved_note(slow, slow.stenoses[0], coarse)
