"""numba kernels of the D3Q19 TRT lattice Boltzmann solver (see :mod:`surgtwin.core.flow.lbm`).

Populations are float32, structure-of-arrays ``f[q, cell]`` over the stored (non-solid) cells only,
in the C order of a padded box (:mod:`surgtwin.core.flow.lbm_layout`). One fused pull step per time
step: each fluid cell gathers the post-collision populations of its neighbours from ``src``
(halfway bounce-back where the neighbour is solid), collides (TRT) and writes to ``dst``: 19
reads and 19 writes of 4 bytes per cell update (the 152-byte roofline; cells beside a wall also
read a 4-byte source index per direction). Fluid cells are processed as runs of consecutive
cells, so the inner loops vectorise (SIMD across cells). Kernels release the GIL so the app can
run the solver on a worker thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Velocities ordered so that q and q + 9 are opposite (q = 1..9); 0 is the rest population.
_HALF = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, -1, 0], [1, 0, 1], [1, 0, -1], [0, 1, 1], [0, 1, -1]],
    dtype=np.int64,
)
VELOCITIES = np.concatenate([np.zeros((1, 3), np.int64), _HALF, -_HALF])
WEIGHTS = np.array([1 / 3] + [1 / 18] * 3 + [1 / 36] * 6 + [1 / 18] * 3 + [1 / 36] * 6, dtype=np.float32)
Q = 19
HALF = 9
MAX_RUN = 256  # cells per vectorised run (scratch is 19 x MAX_RUN floats per thread block)
BLOCKS = 256  # parallel work items; each allocates its scratch once

SOLID, FLUID, INLET, OUTLET = 0, 1, 2, 3


@njit(cache=True, fastmath=True, nogil=True, inline="always", error_model="numpy")
def _moments(f: np.ndarray, cx: np.ndarray, cy: np.ndarray, cz: np.ndarray) -> tuple:
    rho = np.float32(0.0)
    jx = np.float32(0.0)
    jy = np.float32(0.0)
    jz = np.float32(0.0)
    for q in range(Q):
        rho += f[q]
        jx += cx[q] * f[q]
        jy += cy[q] * f[q]
        jz += cz[q] * f[q]
    return rho, jx / rho, jy / rho, jz / rho


@njit(parallel=True, cache=True, fastmath=True, nogil=True, error_model="numpy")
def stream_collide(
    src: np.ndarray,
    dst: np.ndarray,
    run_start: np.ndarray,
    run_length: np.ndarray,
    neighbour_start: np.ndarray,
    gather_start: np.ndarray,
    gather: np.ndarray,
    weights: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    cz: np.ndarray,
    tau: float,
    magic: float,
    smagorinsky: float,
) -> None:
    """One pull-stream + TRT-collide step over every stored cell, in runs of consecutive cells
    (src -> dst). Inlet and outlet cells are updated too; :func:`open_boundaries` then overwrites them.

    Populations are stored for fluid cells only (:mod:`surgtwin.core.flow.lbm_layout`): a run
    pulls population q from the contiguous slice starting at ``neighbour_start[run, q]``, or,
    where that is -1, cell by cell through ``gather`` (indices into the flattened populations;
    a wall's entry points at the cell's own opposite population, which is halfway bounce-back).
    ``tau`` is the molecular relaxation time, ``magic`` the TRT parameter Lambda. With
    ``smagorinsky`` > 0 the collision is regularized BGK instead of TRT, each cell's tau grown
    by the Smagorinsky eddy viscosity computed locally from the non-equilibrium momentum flux
    (Hou et al. 1996; Malaspinas & Sagaut 2012):
    tau_eff = (tau + sqrt(tau^2 + 18 sqrt(2) C^2 |Pi_neq| / rho)) / 2, which keeps high-Reynolds
    jets (stenoses) stable on coarse grids.
    Every inner loop runs along a run of consecutive cells, so LLVM vectorises it (SIMD across
    cells).
    """
    les = smagorinsky > 0.0
    tau32 = np.float32(tau)
    wp_const = np.float32(1.0 / tau)
    wm_const = np.float32(1.0 / (0.5 + magic / (tau - 0.5)))
    les_factor = np.float32(18.0 * np.sqrt(2.0) * smagorinsky * smagorinsky)
    flat_src = src.reshape(src.size)
    n_runs = run_start.size
    n_blocks = min(n_runs, BLOCKS)
    for block in prange(n_blocks):
        f = np.empty((Q, MAX_RUN), dtype=np.float32)
        rho = np.empty(MAX_RUN, dtype=np.float32)
        ux = np.empty(MAX_RUN, dtype=np.float32)
        uy = np.empty(MAX_RUN, dtype=np.float32)
        uz = np.empty(MAX_RUN, dtype=np.float32)
        usq = np.empty(MAX_RUN, dtype=np.float32)
        stress = np.empty((8, MAX_RUN), dtype=np.float32)  # LES scratch
        ones = np.ones(Q, dtype=np.float32)
        for r in range(block * n_runs // n_blocks, (block + 1) * n_runs // n_blocks):
            n0 = run_start[r]
            length = run_length[r]
            # Short loops that each write one row: few possible aliases for the vectoriser to rule out.
            for q in range(Q):
                fq = f[q]
                s = neighbour_start[r, q]
                if s >= 0:  # the source run is all fluid: a plain copy
                    incoming = src[q, s : s + length]
                    for j in range(length):
                        fq[j] = incoming[j]
                else:
                    sources = gather[gather_start[r, q] : gather_start[r, q] + length]
                    for j in range(length):
                        fq[j] = flat_src[sources[j]]
            _moment(f, rho, ones, length)
            _moment(f, ux, cx, length)
            _moment(f, uy, cy, length)
            _moment(f, uz, cz, length)
            for j in range(length):
                inv = np.float32(1.0) / rho[j]
                ux[j] *= inv
            for j in range(length):
                uy[j] *= np.float32(1.0) / rho[j]
            for j in range(length):
                uz[j] *= np.float32(1.0) / rho[j]
            for j in range(length):
                usq[j] = np.float32(1.5) * (ux[j] * ux[j] + uy[j] * uy[j] + uz[j] * uz[j])
            if les:
                _regularized_les_collide(
                    f, rho, ux, uy, uz, usq, weights, cx, cy, cz, length, tau32, les_factor, dst, n0, stress
                )
                continue
            out = dst[0, n0 : n0 + length]
            f0 = f[0]
            w0 = weights[0]
            for j in range(length):
                out[j] = f0[j] - wp_const * (f0[j] - w0 * rho[j] * (np.float32(1.0) - usq[j]))
            for q in range(1, HALF + 1):
                o = q + HALF
                qx, qy, qz, w = cx[q], cy[q], cz[q], weights[q]
                fq = f[q]
                fo = f[o]
                out_q = dst[q, n0 : n0 + length]
                out_o = dst[o, n0 : n0 + length]
                for j in range(length):
                    density = rho[j]
                    cu = qx * ux[j] + qy * uy[j] + qz * uz[j]
                    a = fq[j]
                    b = fo[j]
                    eq_plus = w * density * (np.float32(1.0) + np.float32(4.5) * cu * cu - usq[j])
                    eq_minus = w * density * np.float32(3.0) * cu
                    relax_p = wp_const * (np.float32(0.5) * (a + b) - eq_plus)
                    relax_m = wm_const * (np.float32(0.5) * (a - b) - eq_minus)
                    out_q[j] = a - relax_p - relax_m
                    out_o[j] = b - relax_p + relax_m


@njit(cache=True, fastmath=True, nogil=True, inline="always", error_model="numpy")
def _regularized_les_collide(
    f, rho, ux, uy, uz, usq, weights, cx, cy, cz, length, tau, les_factor, dst, n0, p
):
    """Regularized BGK collision (Latt & Chopard 2006) with the Smagorinsky eddy viscosity.

    The non-equilibrium part is projected onto its second-order (viscous stress) moment before
    relaxing, which drops the ghost modes that make plain collisions blow up at tau close to
    1/2 (blood at arterial Reynolds numbers on a coarse lattice). ``p`` is (8, MAX_RUN) scratch:
    the six stress components, then the kept fraction and a third of the trace. Loops run along
    the run of cells so they vectorise, as in :func:`stream_collide`.
    """
    for c in range(6):
        for j in range(length):
            p[c, j] = np.float32(0.0)
    for q in range(1, HALF + 1):
        qx, qy, qz, w = cx[q], cy[q], cz[q], weights[q]
        pairs = (qx * qx, qy * qy, qz * qz, qx * qy, qx * qz, qy * qz)
        fq = f[q]
        fo = f[q + HALF]
        for j in range(length):
            cu = qx * ux[j] + qy * uy[j] + qz * uz[j]
            eq_plus = w * rho[j] * (np.float32(1.0) + np.float32(4.5) * cu * cu - usq[j])
            neq = fq[j] + fo[j] - np.float32(2.0) * eq_plus  # opposite pairs share c c
            p[0, j] += pairs[0] * neq
            p[1, j] += pairs[1] * neq
            p[2, j] += pairs[2] * neq
            p[3, j] += pairs[3] * neq
            p[4, j] += pairs[4] * neq
            p[5, j] += pairs[5] * neq
    for j in range(length):
        off = p[3, j] * p[3, j] + p[4, j] * p[4, j] + p[5, j] * p[5, j]
        norm = np.sqrt(p[0, j] * p[0, j] + p[1, j] * p[1, j] + p[2, j] * p[2, j] + np.float32(2.0) * off)
        tau_eff = np.float32(0.5) * (tau + np.sqrt(tau * tau + les_factor * norm / rho[j]))
        p[6, j] = np.float32(1.0) - np.float32(1.0) / tau_eff
        p[7, j] = (p[0, j] + p[1, j] + p[2, j]) / np.float32(3.0)
    w0 = weights[0]
    out0 = dst[0, n0 : n0 + length]
    for j in range(length):
        out0[j] = w0 * rho[j] * (np.float32(1.0) - usq[j]) - p[6, j] * w0 * np.float32(4.5) * p[7, j]
    for q in range(1, HALF + 1):
        qx, qy, qz, w = cx[q], cy[q], cz[q], weights[q]
        a0, a1, a2 = qx * qx, qy * qy, qz * qz
        b3, b4, b5 = np.float32(2.0) * qx * qy, np.float32(2.0) * qx * qz, np.float32(2.0) * qy * qz
        out_q = dst[q, n0 : n0 + length]
        out_o = dst[q + HALF, n0 : n0 + length]
        for j in range(length):
            cu = qx * ux[j] + qy * uy[j] + qz * uz[j]
            base = w * rho[j] * (np.float32(1.0) + np.float32(4.5) * cu * cu - usq[j])
            odd = w * rho[j] * np.float32(3.0) * cu
            cpc = a0 * p[0, j] + a1 * p[1, j] + a2 * p[2, j] + b3 * p[3, j] + b4 * p[4, j] + b5 * p[5, j]
            neq = p[6, j] * w * np.float32(4.5) * (cpc - p[7, j])
            out_q[j] = base + odd + neq
            out_o[j] = base - odd + neq


@njit(cache=True, fastmath=True, nogil=True, inline="always", error_model="numpy")
def _moment(f: np.ndarray, out: np.ndarray, c: np.ndarray, length: int) -> None:
    """out[j] = sum_q c[q] f[q, j] over a run."""
    for j in range(length):
        out[j] = np.float32(0.0)
    for q in range(Q):
        cq = c[q]
        if cq != 0:
            fq = f[q]
            for j in range(length):
                out[j] += cq * fq[j]


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _equilibrium(q: int, rho: float, ux: float, uy: float, uz: float, w: np.ndarray, cx, cy, cz) -> float:
    cu = cx[q] * ux + cy[q] * uy + cz[q] * uz
    return w[q] * rho * (1.0 + 3.0 * cu + 4.5 * cu * cu - 1.5 * (ux * ux + uy * uy + uz * uz))


@njit(cache=True, fastmath=True, nogil=True)  # serial: a few thousand cells; threads cost more
def open_boundaries(
    f: np.ndarray,
    boundary: np.ndarray,
    inner: np.ndarray,
    is_inlet: np.ndarray,
    inlet_velocity: np.ndarray,
    outlet_density: float,
    weights: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    cz: np.ndarray,
) -> None:
    """Non-equilibrium extrapolation (Guo et al. 2002) on inlet and outlet cells.

    Each boundary cell takes the equilibrium of its prescribed value (velocity at an inlet, density
    at an outlet; the other moment from the fluid neighbour ``inner`` one cell inwards) plus the
    neighbour's non-equilibrium part. ``inlet_velocity`` is ``(n_boundary, 3)`` in lattice units.
    """
    for i in range(boundary.size):
        b = boundary[i]
        m = inner[i]
        fm = np.empty(Q, dtype=np.float32)
        for q in range(Q):
            fm[q] = f[q, m]
        rho, ux, uy, uz = _moments(fm, cx, cy, cz)
        if is_inlet[i]:
            rb, vx, vy, vz = rho, inlet_velocity[i, 0], inlet_velocity[i, 1], inlet_velocity[i, 2]
        else:
            rb, vx, vy, vz = np.float32(outlet_density), ux, uy, uz
        for q in range(Q):
            neq = fm[q] - _equilibrium(q, rho, ux, uy, uz, weights, cx, cy, cz)
            f[q, b] = _equilibrium(q, rb, vx, vy, vz, weights, cx, cy, cz) + neq


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def macroscopic(
    f: np.ndarray, cells: np.ndarray, cx: np.ndarray, cy: np.ndarray, cz: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Density ``(n,)`` and velocity ``(n, 3)`` (lattice units) of the listed cells."""
    rho = np.empty(cells.size, dtype=np.float32)
    u = np.empty((cells.size, 3), dtype=np.float32)
    for i in prange(cells.size):
        n = cells[i]
        r = np.float32(0.0)
        jx = np.float32(0.0)
        jy = np.float32(0.0)
        jz = np.float32(0.0)
        for q in range(Q):
            v = f[q, n]
            r += v
            jx += cx[q] * v
            jy += cy[q] * v
            jz += cz[q] * v
        rho[i] = r
        u[i, 0] = jx / r
        u[i, 1] = jy / r
        u[i, 2] = jz / r
    return rho, u


@njit(parallel=True, cache=True, nogil=True)
def parallel_copy(src: np.ndarray, dst: np.ndarray) -> None:
    """A STREAM-like copy on all cores (the bandwidth the solver can hope for)."""
    for i in prange(src.size):
        dst[i] = src[i]
