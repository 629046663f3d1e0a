"""Fluid-only storage of the lattice: one kernel step against a plain numpy step on the whole box."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from surgtwin.core.flow import lbm_kernels as k
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.lbm import MAGIC_LAMBDA, LbmSetup, LbmSolver
from surgtwin.core.flow.lbm_layout import fluid_layout, neighbour_offsets

CX, CY, CZ = (k.VELOCITIES[:, i].astype(np.float32) for i in range(3))
OPPOSITE = np.array([0] + [q + k.HALF for q in range(1, k.HALF + 1)] + list(range(1, k.HALF + 1)))


def blob_kind(seed: int) -> np.ndarray:
    """A padded box holding an irregular fluid blob (walls in every direction, rows of every
    length) beside a solid-free slab (whose runs copy contiguous slices), with a few outlet
    cells among the fluid."""
    rng = np.random.default_rng(seed)
    fluid = ndimage.binary_opening(ndimage.gaussian_filter(rng.random((14, 17, 300)), 2) > 0.5)
    fluid[:5] = True
    kind = np.where(fluid, k.FLUID, k.SOLID).astype(np.uint8)
    cells = np.argwhere(fluid)
    kind[tuple(cells[::37].T)] = k.OUTLET
    return np.pad(kind, 1)


def reference_step(kind: np.ndarray, f_box: np.ndarray, tau: float) -> np.ndarray:
    """Pull streaming with halfway bounce-back and TRT collision, cell by cell over the whole box
    in float64: what the kernel must compute for every stored (non-solid) cell."""
    flat = kind.ravel()
    offsets = neighbour_offsets(kind.shape)
    out = np.full_like(f_box, np.nan, dtype=np.float64)
    cells = np.flatnonzero(flat != k.SOLID)
    incoming = np.empty((k.Q, cells.size))
    for q in range(k.Q):
        source = cells - offsets[q]
        wall = flat[source] == k.SOLID
        incoming[q] = np.where(wall, f_box[OPPOSITE[q], cells], f_box[q, source])
    rho = incoming.sum(axis=0)
    u = np.stack([(c[:, None] * incoming).sum(axis=0) for c in (CX, CY, CZ)]) / rho
    usq = 1.5 * (u**2).sum(axis=0)
    omega_plus, omega_minus = 1 / tau, 1 / (0.5 + MAGIC_LAMBDA / (tau - 0.5))
    eq = np.stack(
        [
            k.WEIGHTS[q] * rho * (1 + 3 * cu + 4.5 * cu**2 - usq)
            for q, cu in enumerate(CX[:, None] * u[0] + CY[:, None] * u[1] + CZ[:, None] * u[2])
        ]
    )
    plus = 0.5 * (incoming + incoming[OPPOSITE]) - 0.5 * (eq + eq[OPPOSITE])
    minus = 0.5 * (incoming - incoming[OPPOSITE]) - 0.5 * (eq - eq[OPPOSITE])
    out[:, cells] = incoming - omega_plus * plus - omega_minus * minus
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_one_step_in_fluid_only_storage_matches_the_whole_box_reference(seed: int) -> None:
    kind = blob_kind(seed)
    layout = fluid_layout(kind)
    assert layout.cells == int((kind != k.SOLID).sum())  # solid cells are not stored
    assert (layout.neighbour_start[:, 1:] == -1).any() and (layout.neighbour_start[:, 1:] >= 0).any()
    rng = np.random.default_rng(seed + 10)
    f_box = (k.WEIGHTS[:, None] * (1 + 0.05 * rng.standard_normal((k.Q, kind.size)))).astype(np.float32)
    src = np.ascontiguousarray(f_box[:, layout.stored])
    dst = np.full_like(src, np.nan)
    tau = 0.52
    k.stream_collide(
        src, dst, layout.run_start, layout.run_length, layout.neighbour_start, layout.gather_start,
        layout.gather, k.WEIGHTS, CX, CY, CZ, tau, MAGIC_LAMBDA, 0.0,
    )  # fmt: skip
    expected = reference_step(kind, f_box.astype(np.float64), tau)[:, layout.stored]
    np.testing.assert_allclose(dst, expected, rtol=2e-5, atol=1e-7)


def test_a_thin_vessel_stores_a_small_fraction_of_its_box() -> None:
    """A tilted tube of radius 6 cells through a 60 x 100 x 200 box: 2 % of the box is fluid,
    and that is all the solver keeps."""
    x, y = np.meshgrid(np.arange(60), np.arange(100), indexing="ij")
    mask = np.zeros((60, 100, 200), bool)
    for z in range(200):
        t = min(max(z, 3), 196) / 200
        mask[:, :, z] = (x - 15 - 30 * t) ** 2 + (y - 20 - 60 * t) ** 2 < 6.5**2
    solver = LbmSolver(mask, LbmSetup(1e-4, 0.1))
    assert solver.f.shape == (k.Q, mask.sum())
    layout = solver.layout
    assert layout.memory_bytes < 0.06 * layout.box_memory_bytes
    solver.step(20)
    result = solver.result(20, 1.0, True)
    assert np.isfinite(result.pressure_pa[mask]).all() and np.isnan(result.pressure_pa[~mask]).all()
    axial = result.velocity_m_s[..., 2]
    assert axial[:, :, :5][mask[:, :, :5]].mean() > 0.01  # the 0.1 m/s inflow has set the entrance moving
    far = np.abs(result.velocity_m_s[:, :, 30:])[mask[:, :, 30:]]
    assert far.max() < 1e-4  # float32 noise only: populations move one cell a step, 20 steps reach 20 cells


def test_a_cell_outside_the_fluid_has_no_storage_index() -> None:
    mask = np.ones((4, 4, 6), bool)
    mask[0, 0, :] = False
    solver = LbmSolver(mask, LbmSetup(1e-4, 0.1))
    assert solver.storage_index(np.array([[1, 1, 1]])).item() >= 0
    with pytest.raises(FlowError, match="outside the fluid"):
        solver.storage_index(np.array([[0, 0, 2]]))
