"""A two-level preconditioner for the solver's conjugate gradients: block Jacobi plus a coarse
correction on the voxel grid coarsened by a factor of 2, 3, 4, ... per axis.

Block Jacobi only smooths: errors that vary slowly across the body (bending, sagging) shrink by
a little each iteration, so its CG iterations grow with the mesh (10 at 1k elements, 33 at 20k,
42 at 50k). The coarse level removes them in one solve: the nodes of the coarse grid carry
trilinear fields (prolongation ``P``: each fine node interpolates the 8 coarse nodes of the
coarse cell it lies in), and the coarse operator ``P^T A P`` is the Galerkin product of the
rest-state system (lumped mass and linear stiffness) plus the grasp springs, which pin the
slow modes where the tool holds the tissue. Rotations and contact springs are left out, so it is
assembled once per step size and set of held nodes and refactorised (SuperLU, small) when a
grasp changes, not per step. The factor is the smallest that keeps the coarse level small
enough for its solve to cost a fraction of a matrix-free product. The preconditioner is
additive, z = D^-1 r + P Ac^-1 P^T r, symmetric positive definite, so CG stays CG; block Jacobi
still handles stiff springs and rotated elements locally. Measured at 20k elements: 13.7 CG
iterations per step instead of 33.5, 1.6x the steps per second (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numba import njit, prange
from scipy.sparse.linalg import splu

from surgtwin.core.deform import kernels as _k

kernels: Any = _k  # numba dispatchers are untyped callables

COARSE_SHIFT = 1e-6  # relative diagonal shift of the coarse operator
# the coarsening factor grows (2, 3, 4, ...) until the coarse level has at most this many dofs, or
# 1/40 of the fine dofs on big meshes (measured: its sparse solve then costs a fraction of a product)
MAX_COARSE_DOFS = 1600
COARSE_DOFS_PER_FINE = 1.0 / 40.0

CORNERS01 = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=np.int64
)


def grid_indices(nodes: np.ndarray, cell_m: float) -> np.ndarray:
    """Integer grid coordinates (N, 3) of the nodes of a voxel mesh."""
    return np.rint((nodes - nodes.min(axis=0)) / cell_m).astype(np.int64)


@njit(parallel=True, cache=True, nogil=True)
def _coarse_element_matrices(ijk, elements, coarse_of, factor, a_elem, free, vals, dofs):
    """Per fine element: P_e^T A_e P_e (24 x 24, on the 8 coarse nodes of its coarse cell) into
    ``vals`` and the coarse dof numbers into ``dofs``; constrained fine dofs are left out of P."""
    n_el = elements.shape[0]
    for e in prange(n_el):
        base = np.empty(3, dtype=np.int64)
        for ax in range(3):
            m = ijk[elements[e, 0], ax]
            for a in range(1, 8):
                m = min(m, ijk[elements[e, a], ax])
            base[ax] = m // factor
        w = np.zeros((8, 8))  # fine corner a x coarse corner b
        for b in range(8):
            c0 = base[0] + (1 if b in (1, 2, 5, 6) else 0)
            c1 = base[1] + (1 if b in (2, 3, 6, 7) else 0)
            c2 = base[2] + (1 if b >= 4 else 0)
            for ax in range(3):
                dofs[e, 3 * b + ax] = 3 * coarse_of[c0, c1, c2] + ax
            for a in range(8):
                n = elements[e, a]
                wa = 1.0
                for ax in range(3):
                    cb = c0 if ax == 0 else (c1 if ax == 1 else c2)
                    wa *= max(0.0, 1.0 - abs(ijk[n, ax] / factor - cb))
                w[a, b] = wa
        pe = np.zeros((24, 24))
        for a in range(8):
            n = elements[e, a]
            for b in range(8):
                for ax in range(3):
                    if free[n, ax]:
                        pe[3 * a + ax, 3 * b + ax] = w[a, b]
        ap = a_elem @ pe
        vals[e] = (pe.T @ ap).ravel()


class TwoLevel:
    """The coarse level of the two-level preconditioner for one voxel mesh."""

    def __init__(
        self, nodes: np.ndarray, elements: np.ndarray, cell_m: float, factor: int | None = None
    ) -> None:
        self.elements = elements
        self.ijk = grid_indices(nodes, cell_m)
        for f in (2, 3, 4, 6, 8, 12, 16) if factor is None else (int(factor),):
            self.factor = f
            used = self._coarse_nodes()
            if 3 * int(used.sum()) <= max(MAX_COARSE_DOFS, COARSE_DOFS_PER_FINE * 3 * nodes.shape[0]):
                break
        self.coarse_of = np.full(used.shape, -1, dtype=np.int64)
        self.coarse_of[used] = np.arange(int(used.sum()))
        self.n_coarse = int(used.sum())
        self.prolongation = self._prolongation()
        self._key: tuple[float, float, bytes] | None = None
        self._lu: object | None = None
        self._base_key: tuple[float, float, bytes] | None = None
        self._base = sp.csc_matrix((0, 0))
        self._free = np.ones(0)

    def _coarse_nodes(self) -> np.ndarray:
        """Which nodes of the coarse grid carry a field: those of every coarse cell holding a
        fine element."""
        shape = self.ijk.max(axis=0) // self.factor + 2
        used = np.zeros(tuple(int(s) for s in shape), dtype=bool)
        base = self.ijk[self.elements].min(axis=1) // self.factor
        for corner in CORNERS01:
            c = base + corner
            used[c[:, 0], c[:, 1], c[:, 2]] = True
        return used

    def _prolongation(self) -> sp.csr_matrix:
        """P (3 N_fine x 3 N_coarse): trilinear weights of the coarse grid at each fine node."""
        half = self.ijk // self.factor
        rows, cols, weights = [], [], []
        n = self.ijk.shape[0]
        for corner in CORNERS01:
            c = half + corner
            inside = np.all(c < np.array(self.coarse_of.shape), axis=1)
            c = np.where(inside[:, None], c, 0)
            w = np.prod(np.maximum(0.0, 1.0 - np.abs(self.ijk / self.factor - c)), axis=1) * inside
            idx = self.coarse_of[c[:, 0], c[:, 1], c[:, 2]]
            keep = (w > 0.0) & (idx >= 0)
            for ax in range(3):
                rows.append(3 * np.flatnonzero(keep) + ax)
                cols.append(3 * idx[keep] + ax)
                weights.append(w[keep])
        return sp.csr_matrix(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
            shape=(3 * n, 3 * self.n_coarse),
        )

    def prepare(
        self, element_matrix: np.ndarray, cm_key: float, ck_key: float, free: np.ndarray, springs: np.ndarray
    ) -> None:
        """Build and factorise the coarse operator for this element matrix (the rest-state
        cm M_e + ck K_e, 24 x 24), these free dofs and these (N, 3, 3) spring blocks (already
        scaled), unless it is the one already built."""
        sprung = np.flatnonzero(np.abs(springs).reshape(-1, 9).max(axis=1) > 0.0)
        base_key = (cm_key, ck_key, np.packbits(free).tobytes())
        key = (cm_key, ck_key, base_key[2] + sprung.tobytes() + springs[sprung].tobytes())
        if key == self._key:
            return
        if base_key != self._base_key:
            self._base = self._assemble(element_matrix, free)
            self._base_key = base_key
        ac = self._base
        if sprung.size:  # stiff grasp springs: the coarse fields must feel them too
            dof = (3 * sprung[:, None] + np.arange(3)).ravel()
            blocks = sp.block_diag(list(springs[sprung]), format="csr")
            pf = sp.csr_matrix(self.prolongation[dof].multiply(free.ravel()[dof][:, None]))
            ac = (ac + pf.T @ blocks @ pf).tocsc()
        self._free = free.ravel().astype(np.float64)
        self._lu = splu(
            ac, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
        self._key = key

    def _assemble(self, element_matrix: np.ndarray, free: np.ndarray) -> sp.csc_matrix:
        """P^T A P for the element matrix, P without the held dofs' rows, made invertible."""
        n_el = self.elements.shape[0]
        vals = np.empty((n_el, 576))
        dofs = np.empty((n_el, 24), dtype=np.int64)
        _coarse_element_matrices(
            self.ijk, self.elements, self.coarse_of, self.factor, element_matrix, free, vals, dofs
        )
        rows = np.repeat(dofs, 24, axis=1).ravel()
        cols = np.tile(dofs, (1, 24)).ravel()
        n = 3 * self.n_coarse
        ac = sp.csc_matrix((vals.ravel(), (rows, cols)), shape=(n, n))
        diag = ac.diagonal()
        empty = diag <= 1e-300 * max(float(diag.max()), 1e-300)
        # without the held dofs' rows P can lose rank (coarse fields that vanish on every free
        # dof): a relative shift keeps Ac invertible, and such fields add nothing to z anyway
        shift = COARSE_SHIFT * diag + empty * max(float(diag.max()), 1.0)
        return sp.csc_matrix(ac + sp.diags(shift))

    def correct(self, r: np.ndarray, z: np.ndarray) -> None:
        """z += P Ac^-1 P^T r (r, z: (N, 3)), P without the held dofs' rows."""
        coarse = self.prolongation.T @ r.ravel()
        assert self._lu is not None
        solved = self._lu.solve(coarse)  # type: ignore[attr-defined]
        z += (self._free * (self.prolongation @ solved)).reshape(z.shape)


@np.errstate(invalid="ignore", divide="ignore")  # the solver rejects a non-finite step itself
def pcg_two_level(
    x: np.ndarray,
    r: np.ndarray,
    ref: float,
    tol: float,
    max_iterations: int,
    system: tuple[Any, ...],
    inv_blocks: np.ndarray,
    coarse: TwoLevel,
) -> tuple[int, float]:
    """CG on the solver's system (``system``: the kernels' argument tuple) preconditioned by
    block Jacobi plus ``coarse``; in place from residual ``r`` = b - A x. Returns (iterations,
    ||r|| / ref)."""
    z = np.empty_like(x)
    ap = np.empty_like(x)
    kernels.apply_blocks(inv_blocks, r, z)
    coarse.correct(r, z)
    p = z.copy()
    rz = kernels._dot(r, z)
    res = np.sqrt(kernels._dot(r, r)) / ref
    it = 0
    while res > tol and it < max_iterations:
        kernels.system_product(p, *system, ap)
        pap = kernels._dot(p, ap)
        if not pap > 0.0:
            break
        alpha = rz / pap
        _, rr = kernels._update_iterate(x, r, p, ap, alpha, inv_blocks, z)
        coarse.correct(r, z)
        rz_new = kernels._dot(r, z)
        kernels._new_direction(p, z, rz_new / rz)
        rz = rz_new
        it += 1
        res = np.sqrt(rr) / ref
    return it, res
