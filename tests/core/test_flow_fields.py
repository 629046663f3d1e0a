"""Wall shear stress and streamlines of a 3D flow field, against Poiseuille flow and a rigid rotation."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.export.common import vertex_normals
from surgtwin.core.flow import fields
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.fields import (
    Streamline,
    grid_to_lps_from_ijk,
    inlet_seeds,
    streamlines,
    wall_shear_stress,
)
from surgtwin.core.flow.lbm import LbmSetup, run
from surgtwin.core.mesh.extract import mesh_label_map
from tests.core.test_flow_lbm import tube

VISCOSITY, DENSITY = 3.5e-3, 1060.0
PEAK = 0.3  # m/s on the axis of the analytic tube


def rotation(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    a = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    cross = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def affine(spacing: tuple[float, float, float], turn: np.ndarray | None = None) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = (np.eye(3) if turn is None else turn) @ np.diag(spacing)
    out[:3, 3] = (12.0, -30.0, 140.0)
    return out


class AnalyticTube:
    """Poiseuille flow in a circular tube of radius R (mm) along a unit LPS axis through the grid's centre,
    voxelised: fluid cells are those whose centres lie inside the tube, each holding the exact parabola."""

    def __init__(self, shape: tuple[int, int, int], grid_to_lps: np.ndarray, axis_lps, radius_mm: float):
        self.grid_to_lps = grid_to_lps
        self.axis = np.asarray(axis_lps, dtype=float) / np.linalg.norm(axis_lps)
        self.radius = radius_mm
        self.centre = grid_to_lps[:3, :3] @ ((np.array(shape) - 1) / 2) + grid_to_lps[:3, 3]
        ijk = np.indices(shape).reshape(3, -1).T
        r = self.distance_from_axis(ijk @ grid_to_lps[:3, :3].T + grid_to_lps[:3, 3])
        self.fluid = (r < radius_mm).reshape(shape)
        speed = np.where(r < radius_mm, PEAK * (1 - (r / radius_mm) ** 2), 0.0)
        # the field stores components along the grid's axes: rotate the LPS velocity into them
        to_lps = grid_to_lps[:3, :3] / np.linalg.norm(grid_to_lps[:3, :3], axis=0)
        grid_direction = np.linalg.solve(to_lps, self.axis)
        self.velocity = (speed[:, None] * grid_direction).reshape(shape + (3,)).astype(np.float32)

    def distance_from_axis(self, points: np.ndarray) -> np.ndarray:
        d = points - self.centre
        return np.linalg.norm(d - np.outer(d @ self.axis, self.axis), axis=1)

    def wall_points(self, count: int, half_length: float) -> tuple[np.ndarray, np.ndarray]:
        """Points on the tube's wall around its middle and their outward normals."""
        rng = np.random.default_rng(7)
        e1 = np.cross(self.axis, np.eye(3)[int(np.argmin(np.abs(self.axis)))])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(self.axis, e1)
        t = rng.uniform(-half_length, half_length, count)
        angle = rng.uniform(0, 2 * np.pi, count)
        outward = np.cos(angle)[:, None] * e1 + np.sin(angle)[:, None] * e2
        return self.centre + t[:, None] * self.axis + self.radius * outward, outward

    @property
    def wss(self) -> float:
        flow = np.pi * (self.radius / 1000) ** 2 * PEAK / 2
        return 4 * VISCOSITY * flow / (np.pi * (self.radius / 1000) ** 3)


def relative_errors(tau: np.ndarray, expected: float) -> dict[str, float]:
    e = tau / expected - 1
    return {
        "mean": float(e.mean()),
        "mean_abs": float(np.abs(e).mean()),
        "p95": float(np.percentile(np.abs(e), 95)),
        "max": float(np.abs(e).max()),
    }


def show(label: str, errors: dict[str, float]) -> None:
    print(label, " ".join(f"{k} {v:+.2%}" for k, v in errors.items()))


TUBES = {
    "axis along a grid axis, 5 cells radius": ((40, 40, 40), (1.0, 1.0, 1.0), None, (0, 0, 1), 5.0),
    "oblique axis, 5 cells radius": ((44, 44, 44), (1.0, 1.0, 1.0), None, (1, 2, 3), 5.0),
    "oblique axis, rotated anisotropic grid": (
        (60, 60, 40),
        (0.5, 0.5, 0.8),
        rotation((1, -1, 2), 0.6),
        (2, 1, -1),
        4.0,
    ),
}


@pytest.mark.parametrize("name", TUBES)
def test_wss_of_analytic_poiseuille_on_voxelised_tube(name: str) -> None:
    shape, spacing, turn, axis, radius = TUBES[name]
    tube = AnalyticTube(shape, affine(spacing, turn), axis, radius)
    vertices, outward = tube.wall_points(3000, half_length=2 * radius)
    with_mesh_normals = wall_shear_stress(
        tube.velocity, tube.fluid, tube.grid_to_lps, VISCOSITY, vertices, outward, invalid="nan"
    )
    with_mask_normals = wall_shear_stress(
        tube.velocity, tube.fluid, tube.grid_to_lps, VISCOSITY, vertices, invalid="nan"
    )
    assert np.isfinite(with_mesh_normals).all() and np.isfinite(with_mask_normals).all()
    mesh = relative_errors(with_mesh_normals, tube.wss)
    mask = relative_errors(with_mask_normals, tube.wss)
    show(f"{name}: tau_w {tube.wss:.4f} Pa; mesh normals", mesh)
    show(f"{name}: mask normals", mask)
    for errors in (mesh, mask):
        assert abs(errors["mean"]) < 0.01  # unbiased on average
        assert errors["mean_abs"] < 0.03
        assert errors["p95"] < 0.07


lbm_tube = tube  # the LBM validation's circular tube, one solid ring around it


DX_M = 1e-4
CELLS = 12


@pytest.fixture(scope="module")
def lbm_poiseuille():
    """A real lattice Boltzmann run in a tube CELLS across (tau = 0.8, parabolic inlet), until steady."""
    mask = lbm_tube(CELLS, 2 * CELLS)
    lattice_velocity, lattice_viscosity = 0.02, 0.1
    mean_velocity = lattice_velocity * (VISCOSITY / DENSITY) / (2 * lattice_viscosity * DX_M)
    setup = LbmSetup(DX_M, mean_velocity, VISCOSITY, DENSITY, max_lattice_velocity=lattice_velocity)
    result = run(mask, setup, axis=2, inlet_profile="parabolic")
    assert result.converged
    return mask, result, affine((DX_M * 1000,) * 3)


def test_wss_of_lbm_poiseuille_matches_hagen_poiseuille(lbm_poiseuille) -> None:
    mask, result, grid_to_lps = lbm_poiseuille
    dx_mm = DX_M * 1000
    # the surface the app would colour: the project's own mesh of the lumen, middle half kept
    mesh = mesh_label_map(mask.astype(np.uint8), grid_to_lps_from_ijk(grid_to_lps), [1])[1]
    axial = (mesh.vertices - grid_to_lps[:3, 3]) @ grid_to_lps[:3, 2] / dx_mm**2
    middle = (axial > CELLS / 2) & (axial < 1.5 * CELLS)
    vertices, normals = mesh.vertices[middle], vertex_normals(mesh.vertices, mesh.faces)[middle]
    flow = float(result.velocity_m_s[:, :, CELLS, 2].sum()) * DX_M**2
    radius = CELLS / 2 * DX_M
    expected = 4 * VISCOSITY * flow / (np.pi * radius**3)
    tau = wall_shear_stress(result.velocity_m_s, mask, grid_to_lps, VISCOSITY, vertices, normals)
    tau_mask_normals = wall_shear_stress(result.velocity_m_s, mask, grid_to_lps, VISCOSITY, vertices)
    errors = relative_errors(tau, expected)
    show(f"LBM {CELLS} cells across, {len(vertices)} vertices: tau_w {expected:.4f} Pa; mesh normals", errors)
    show("LBM, mask normals", relative_errors(tau_mask_normals, expected))
    assert abs(errors["mean"]) < 0.05
    assert errors["p95"] < 0.12
    assert abs(relative_errors(tau_mask_normals, expected)["mean"]) < 0.06


def lateral_drift(line: Streamline, axis: np.ndarray) -> float:
    d = line.points_lps - line.points_lps[0]
    return float(np.linalg.norm(d - np.outer(d @ axis, axis), axis=1).max())


def middle_half(line: Streamline, grid_to_lps: np.ndarray, axis: np.ndarray) -> Streamline:
    z = (line.points_lps - grid_to_lps[:3, 3]) @ axis / (DX_M * 1000)
    keep = (z > CELLS / 2) & (z < 1.5 * CELLS)
    return Streamline(line.points_lps[keep], line.speed_m_s[keep], line.stop)


def test_streamlines_in_lbm_tube_run_straight_to_the_outlet(lbm_poiseuille) -> None:
    mask, result, grid_to_lps = lbm_poiseuille
    dx_mm = DX_M * 1000
    axis = grid_to_lps[:3, 2] / dx_mm
    centre = grid_to_lps[:3, :3] @ np.array([(CELLS + 1) / 2, (CELLS + 1) / 2, 0]) + grid_to_lps[:3, 3]
    seeds = inlet_seeds(mask, grid_to_lps, centre, axis, 0.45 * CELLS * dx_mm, 60)
    lines = streamlines(result.velocity_m_s, mask, grid_to_lps, seeds, step_mm=0.25 * dx_mm)
    outlet = (mask.shape[2] - 1) * dx_mm
    drift = max(lateral_drift(line, axis) for line in lines)
    middle_drift = max(lateral_drift(middle_half(line, grid_to_lps, axis), axis) for line in lines)
    reach = [float((line.points_lps[-1] - grid_to_lps[:3, 3]) @ axis) for line in lines]
    print(
        f"{len(lines)} streamlines; largest lateral drift {drift / dx_mm:.4f} cells over {outlet:.2f} mm, "
        f"{middle_drift / dx_mm:.4f} cells over the middle half"
    )
    assert len(lines) == 60
    assert all(line.stop == "left_grid" for line in lines)
    assert min(reach) > outlet - 0.25 * dx_mm
    assert drift < 0.15 * dx_mm and middle_drift < 0.02 * dx_mm
    # speed along each line stays that of its radius in fully developed flow (middle half)
    for line in lines:
        middle = middle_half(line, grid_to_lps, axis).speed_m_s
        assert np.ptp(middle) < 0.03 * middle.mean()


def test_streamlines_in_oblique_analytic_tube_are_parallel_to_its_axis() -> None:
    tube = AnalyticTube((44, 44, 44), affine((1.0, 1.0, 1.0)), (1, 2, 3), 5.0)
    seeds = inlet_seeds(tube.fluid, tube.grid_to_lps, tube.centre, tube.axis, 4.0, 40)
    lines = streamlines(tube.velocity, tube.fluid, tube.grid_to_lps, seeds, step_mm=0.5)
    drift = max(lateral_drift(line, tube.axis) for line in lines)
    print(
        f"oblique tube: largest lateral drift {drift:.2e} mm; "
        f"shortest line {min(x.length_mm for x in lines):.1f} mm"
    )
    assert drift < 1e-3
    assert all(line.stop == "left_grid" for line in lines)
    assert all(line.length_mm > 10 for line in lines)


def test_streamline_of_rigid_rotation_stays_on_its_circle() -> None:
    shape, spacing = (41, 41, 5), (1.0, 1.0, 2.0)
    grid_to_lps = affine(spacing, rotation((0.3, 0.2, 1), 0.4))
    turn = grid_to_lps[:3, :3] / np.linalg.norm(grid_to_lps[:3, :3], axis=0)
    centre = grid_to_lps[:3, :3] @ np.array([20, 20, 2]) + grid_to_lps[:3, 3]
    spin_axis = turn[:, 2]
    omega = 2.0  # rad/s
    ijk = np.indices(shape).reshape(3, -1).T
    relative = ijk @ grid_to_lps[:3, :3].T + grid_to_lps[:3, 3] - centre
    velocity_lps = omega * np.cross(spin_axis, relative) / 1000  # m/s
    velocity = (velocity_lps @ turn).reshape(shape + (3,)).astype(np.float32)  # grid components
    fluid = np.ones(shape, dtype=bool)
    radii = np.array([4.0, 8.0, 15.0])
    seeds = centre + radii[:, None] * turn[:, 0]
    lines = streamlines(velocity, fluid, grid_to_lps, seeds, max_length_mm=2 * np.pi * 15.0, step_mm=0.5)
    for radius, line in zip(radii, lines, strict=True):
        r = np.linalg.norm(line.points_lps - centre, axis=1)
        height = (line.points_lps - centre) @ spin_axis
        print(
            f"circle r = {radius} mm: radius change {np.abs(r - radius).max():.2e} mm "
            f"over {line.length_mm:.1f} mm"
        )
        assert line.stop == "max_length"
        assert np.abs(r - radius).max() < 1e-3
        assert np.abs(height).max() < 1e-4
        assert line.speed_m_s == pytest.approx(omega * radius / 1000, rel=1e-4)


def test_streamline_stops_at_a_stagnation_point() -> None:
    shape = (21, 21, 21)
    grid_to_lps = affine((1.0, 1.0, 1.0))
    x, y, _ = np.indices(shape) - 10.0
    velocity = np.stack([x, -y, np.zeros(shape)], axis=-1).astype(np.float32) * 1e-2
    seeds = grid_to_lps[:3, :3] @ np.array([[10.0, 18.0, 10.0]]).T + grid_to_lps[:3, 3:]
    (line,) = streamlines(velocity, np.ones(shape, bool), grid_to_lps, seeds.T, min_speed_m_s=2e-3)
    assert line.stop == "stagnated"
    assert line.speed_m_s[-1] < 2e-3 <= line.speed_m_s[-2]
    assert np.all(np.diff(line.speed_m_s) < 0)


def test_inlet_seeds_cover_the_disc_inside_the_fluid() -> None:
    tube = AnalyticTube((40, 40, 40), affine((1.0, 1.0, 1.0)), (0, 0, 1), 6.0)
    seeds = inlet_seeds(tube.fluid, tube.grid_to_lps, tube.centre, tube.axis, 5.0, 100)
    assert len(seeds) == 100
    assert np.allclose((seeds - tube.centre) @ tube.axis, 0)
    assert tube.distance_from_axis(seeds).max() <= 5.0
    assert tube.distance_from_axis(seeds).min() < 0.5  # the centre is covered too
    wider = inlet_seeds(tube.fluid, tube.grid_to_lps, tube.centre, tube.axis, 12.0, 100)
    assert 0 < len(wider) < 100  # points outside the lumen are dropped
    assert tube.distance_from_axis(wider).max() < 6.5
    with pytest.raises(FlowError, match="inside the fluid"):
        inlet_seeds(tube.fluid, tube.grid_to_lps, tube.centre + 100, tube.axis, 5.0, 10)


def test_vertices_off_the_wall_get_nan_or_their_nearest_valid_value() -> None:
    tube = AnalyticTube((30, 30, 30), affine((1.0, 1.0, 1.0)), (0, 0, 1), 5.0)
    vertices, outward = tube.wall_points(200, half_length=5.0)
    far = tube.centre + np.array([[40.0, 0.0, 0.0]])
    vertices, outward = np.vstack([vertices, far]), np.vstack([outward, [[1.0, 0.0, 0.0]]])
    args = (tube.velocity, tube.fluid, tube.grid_to_lps, VISCOSITY, vertices, outward)
    as_nan = wall_shear_stress(*args, invalid="nan")
    nearest = wall_shear_stress(*args)
    assert np.isnan(as_nan[-1]) and np.isfinite(as_nan[:-1]).all()
    closest = np.argmin(np.linalg.norm(vertices[:-1] - far, axis=1))
    assert nearest[-1] == as_nan[closest]


def test_wss_in_a_thin_vessel_falls_back_to_the_half_stencil(monkeypatch: pytest.MonkeyPatch) -> None:
    tube = AnalyticTube((24, 24, 24), affine((1.0, 1.0, 1.0)), (0, 1, 1), 2.0)  # 4 cells across
    vertices, outward = tube.wall_points(500, half_length=3.0)
    args = (tube.velocity, tube.fluid, tube.grid_to_lps, VISCOSITY, vertices, outward)
    tau = wall_shear_stress(*args, invalid="nan")
    errors = relative_errors(tau, tube.wss)
    show("thin tube, 4 cells across", errors)
    assert np.isfinite(tau).all()
    assert abs(errors["mean"]) < 0.15  # 4 cells across: coarse, measured -9.8 %
    monkeypatch.setattr(fields, "WSS_STENCIL_SCALES", (1.0,))
    assert np.isnan(wall_shear_stress(*args, invalid="nan")).mean() > 0.5  # the full stencil leaves it


def test_grid_to_lps_from_ijk_maps_kji_arrays() -> None:
    ijk_to_lps = affine((0.7, 0.8, 2.5), rotation((1, 2, 3), 0.3))
    grid = grid_to_lps_from_ijk(ijk_to_lps)
    i, j, k = 3.0, 5.0, 7.0
    assert grid @ np.array([k, j, i, 1]) == pytest.approx(ijk_to_lps @ np.array([i, j, k, 1]))


def test_bad_inputs_raise_flow_errors_that_say_what_is_wrong() -> None:
    tube = AnalyticTube((20, 20, 20), affine((1.0, 1.0, 1.0)), (0, 0, 1), 4.0)
    vertices, outward = tube.wall_points(50, half_length=3.0)
    v, fluid, a = tube.velocity, tube.fluid, tube.grid_to_lps
    with pytest.raises(FlowError, match="shape"):
        wall_shear_stress(v[:-1], fluid, a, VISCOSITY, vertices)
    with pytest.raises(FlowError, match="empty"):
        streamlines(v, np.zeros_like(fluid), a, vertices)
    broken = v.copy()
    broken[10, 10, 10, 2] = np.nan
    with pytest.raises(FlowError, match="non-finite"):
        wall_shear_stress(broken, fluid, a, VISCOSITY, vertices)
    with pytest.raises(FlowError, match="non-finite"):
        streamlines(broken, fluid, a, vertices)
    with pytest.raises(FlowError, match="invertible"):
        wall_shear_stress(v, fluid, np.zeros((4, 4)), VISCOSITY, vertices)
    with pytest.raises(FlowError, match="viscosity"):
        wall_shear_stress(v, fluid, a, 0.0, vertices)
    with pytest.raises(FlowError, match="normals were given"):
        wall_shear_stress(v, fluid, a, VISCOSITY, vertices, outward[:-1])
    with pytest.raises(FlowError, match="point into the vessel"):
        wall_shear_stress(v, fluid, a, VISCOSITY, vertices, -outward)
    with pytest.raises(FlowError, match=r"\(N, 3\)"):
        streamlines(v, fluid, a, vertices[:, :2])
    with pytest.raises(FlowError, match="step"):
        streamlines(v, fluid, a, vertices, step_mm=-1.0)
    with pytest.raises(FlowError, match="at rest"):
        streamlines(np.zeros_like(v), fluid, a, vertices)
    with pytest.raises(FlowError, match="same place"):
        wall_shear_stress(v, fluid, a, VISCOSITY, vertices + 500.0, outward)
