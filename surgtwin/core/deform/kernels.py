"""The numerics of the hexahedral solver: the reference element and the numba kernels.

Every kernel works on flat arrays (positions ``(N, 3)``, elements ``(E, 8)``) so numba compiles
them once (``cache=True``) and runs the element loops on all cores (``parallel=True``). Element
loops write into a per-element buffer; a second loop over nodes sums that buffer through a
node -> element-slot table, so no two threads ever write the same node (no atomics; only the
order of the dot-product sums depends on the thread count). Kernels release the GIL
(``nogil=True``): the desktop app steps the solver on a worker thread while its GUI thread runs.

Node order is VTK_HEXAHEDRON: corners (-,-,-) (+,-,-) (+,+,-) (-,+,-) then the same at +z.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

CORNERS = np.array(
    [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]],
    dtype=np.float64,
)
GAUSS = CORNERS / np.sqrt(3.0)  # 2x2x2 Gauss points, all weights 1


def shape_gradients(point: np.ndarray) -> np.ndarray:
    """dN_a/dxi at a point of the reference cube [-1, 1]^3, shape (8, 3)."""
    xi = np.asarray(point, dtype=np.float64)
    out = np.empty((8, 3))
    for a in range(8):
        c = CORNERS[a]
        f = 1.0 + c * xi
        out[a, 0] = c[0] * f[1] * f[2] / 8.0
        out[a, 1] = f[0] * c[1] * f[2] / 8.0
        out[a, 2] = f[0] * f[1] * c[2] / 8.0
    return out


def _strain_matrix(dndx: np.ndarray) -> np.ndarray:
    """Voigt strain (xx, yy, zz, xy, yz, zx; engineering shear) from nodal displacements."""
    n = dndx.shape[0]
    b = np.zeros((6, 3 * n))
    for a in range(n):
        gx, gy, gz = dndx[a]
        c = 3 * a
        b[0, c] = gx
        b[1, c + 1] = gy
        b[2, c + 2] = gz
        b[3, c], b[3, c + 1] = gy, gx
        b[4, c + 1], b[4, c + 2] = gz, gy
        b[5, c], b[5, c + 2] = gz, gx
    return b


def deviatoric_elasticity(shear_modulus: float) -> np.ndarray:
    """Voigt matrix of 2*mu*dev(eps): the shape-changing half of isotropic elasticity."""
    d = np.zeros((6, 6))
    d[:3, :3] = -2.0 / 3.0
    np.fill_diagonal(d[:3, :3], 4.0 / 3.0)
    d[3:, 3:] = np.eye(3)
    return shear_modulus * d


def isotropic_elasticity(shear_modulus: float, bulk_modulus: float) -> np.ndarray:
    """Voigt matrix of isotropic linear elasticity: 2 mu dev(eps) + kappa tr(eps) I."""
    d = deviatoric_elasticity(shear_modulus)
    d[:3, :3] += bulk_modulus
    return d


def reference_element(
    cell_m: float, shear_modulus: float, bulk_modulus: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear stiffness of an axis-aligned cube of edge ``cell_m`` minus its mean-dilatation part.

    Returns ``(k_rest (24, 24), rest (8, 3) corner offsets from node 0, dndx_centre (8, 3))``.
    The linear element is the trilinear hexahedron with full 2x2x2 integration plus the 9
    Wilson/Taylor incompatible modes (1 - xi^2 per axis and direction) condensed out: the modes
    give it the quadratic bending and volume-relieving fields a trilinear hexahedron lacks, which
    removes shear locking and volumetric locking on a regular grid. The constant (mean) part of
    the volume change is taken out again, kappa V0 bbar bbar^T (always PSD to remove, by
    Jensen's inequality), because the solver adds it back as a nonlinear term in the element's
    exact volume: identical at small strain, volume-preserving at large strain.
    """
    h = float(cell_m)
    scale = 2.0 / h  # d xi / d X for a cube of edge h
    det_j = (h / 2.0) ** 3
    d = isotropic_elasticity(shear_modulus, bulk_modulus)
    kuu = np.zeros((24, 24))
    kua = np.zeros((24, 9))
    kaa = np.zeros((9, 9))
    for gp in GAUSS:
        b = _strain_matrix(shape_gradients(gp) * scale)
        bubble = np.diag(-2.0 * gp * scale)  # d(1 - xi_k^2)/dX_j, one bubble per axis
        g = _strain_matrix(bubble)
        kuu += b.T @ d @ b * det_j
        kua += b.T @ d @ g * det_j
        kaa += g.T @ d @ g * det_j
    k_lin = kuu - kua @ np.linalg.solve(kaa, kua.T)
    grad_v = volume_gradient_reference(h).ravel()
    k_rest = k_lin - bulk_modulus / h**3 * np.outer(grad_v, grad_v)
    k_rest = 0.5 * (k_rest + k_rest.T)
    rest = (CORNERS + 1.0) * (h / 2.0)
    dndx_centre = shape_gradients(np.zeros(3)) * scale
    return k_rest, rest, dndx_centre


def volume_gradient_reference(cell_m: float) -> np.ndarray:
    """d(volume)/d(node positions) of the rest cube, (8, 3): the mean-dilatation B-bar vector x V."""
    grads = np.array([shape_gradients(gp) for gp in GAUSS])  # (8 gauss, 8 nodes, 3)
    return grads.sum(axis=0) * (cell_m / 2.0) ** 2


GAUSS_DNDXI = np.array([shape_gradients(gp) for gp in GAUSS])  # (8 gauss points, 8 nodes, 3)


@njit(cache=True, fastmath=True, nogil=True)
def _rotate_towards(q: np.ndarray, f: np.ndarray, iterations: int) -> None:
    """Nearest rotation to ``f``, as a unit quaternion ``q`` (w, x, y, z), refined in place.

    Iterates the torque that aligns the rotation's columns with the columns of ``f`` (Mueller et
    al. 2016, "A robust method to extract the rotational part of deformations"). It always
    returns a proper rotation, also for inverted elements (det F < 0), so those are pushed back
    instead of being mirrored, and warm-starting from last step's rotation makes 2-4
    iterations enough.
    """
    for _ in range(iterations):
        w, x, y, z = q[0], q[1], q[2], q[3]
        r00 = 1 - 2 * (y * y + z * z)
        r01 = 2 * (x * y - w * z)
        r02 = 2 * (x * z + w * y)
        r10 = 2 * (x * y + w * z)
        r11 = 1 - 2 * (x * x + z * z)
        r12 = 2 * (y * z - w * x)
        r20 = 2 * (x * z - w * y)
        r21 = 2 * (y * z + w * x)
        r22 = 1 - 2 * (x * x + y * y)
        ox = 0.0
        oy = 0.0
        oz = 0.0
        dot = 0.0
        for c in range(3):
            if c == 0:
                a0, a1, a2 = r00, r10, r20
            elif c == 1:
                a0, a1, a2 = r01, r11, r21
            else:
                a0, a1, a2 = r02, r12, r22
            b0, b1, b2 = f[0, c], f[1, c], f[2, c]
            ox += a1 * b2 - a2 * b1
            oy += a2 * b0 - a0 * b2
            oz += a0 * b1 - a1 * b0
            dot += a0 * b0 + a1 * b1 + a2 * b2
        inv = 1.0 / (abs(dot) + 1e-12)
        ox *= inv
        oy *= inv
        oz *= inv
        angle = np.sqrt(ox * ox + oy * oy + oz * oz)
        if angle < 1e-10:
            break
        s = np.sin(0.5 * angle) / angle
        dw, dx, dy, dz = np.cos(0.5 * angle), ox * s, oy * s, oz * s
        nw = dw * w - dx * x - dy * y - dz * z
        nx = dw * x + dx * w + dy * z - dz * y
        ny = dw * y - dx * z + dy * w + dz * x
        nz = dw * z + dx * y - dy * x + dz * w
        norm = np.sqrt(nw * nw + nx * nx + ny * ny + nz * nz)
        q[0], q[1], q[2], q[3] = nw / norm, nx / norm, ny / norm, nz / norm


@njit(cache=True, fastmath=True, nogil=True)
def _quat_to_matrix(q: np.ndarray, r: np.ndarray) -> None:
    w, x, y, z = q[0], q[1], q[2], q[3]
    r[0, 0] = 1 - 2 * (y * y + z * z)
    r[0, 1] = 2 * (x * y - w * z)
    r[0, 2] = 2 * (x * z + w * y)
    r[1, 0] = 2 * (x * y + w * z)
    r[1, 1] = 1 - 2 * (x * x + z * z)
    r[1, 2] = 2 * (y * z - w * x)
    r[2, 0] = 2 * (x * z - w * y)
    r[2, 1] = 2 * (y * z + w * x)
    r[2, 2] = 1 - 2 * (x * x + y * y)


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def update_elements(x, elements, dndx_centre, dndxi, quats, rots, volumes, vol_grads, iterations):
    """Per element: rotation (from F at the centre), current volume and its gradient.

    The volume is the exact volume of the trilinear hexahedron (2x2x2 Gauss is exact for it) and
    its gradient is sum over Gauss points of cof(J) dN/dxi.
    """
    n_el = elements.shape[0]
    for e in prange(n_el):
        f = np.zeros((3, 3))
        for a in range(8):
            n = elements[e, a]
            for i in range(3):
                for j in range(3):
                    f[i, j] += x[n, i] * dndx_centre[a, j]
        _rotate_towards(quats[e], f, iterations)
        _quat_to_matrix(quats[e], rots[e])
        vol = 0.0
        for a in range(8):
            for i in range(3):
                vol_grads[e, 3 * a + i] = 0.0
        for g in range(8):
            jm = np.zeros((3, 3))
            for a in range(8):
                n = elements[e, a]
                for i in range(3):
                    for j in range(3):
                        jm[i, j] += x[n, i] * dndxi[g, a, j]
            c00 = jm[1, 1] * jm[2, 2] - jm[1, 2] * jm[2, 1]
            c01 = jm[1, 2] * jm[2, 0] - jm[1, 0] * jm[2, 2]
            c02 = jm[1, 0] * jm[2, 1] - jm[1, 1] * jm[2, 0]
            c10 = jm[0, 2] * jm[2, 1] - jm[0, 1] * jm[2, 2]
            c11 = jm[0, 0] * jm[2, 2] - jm[0, 2] * jm[2, 0]
            c12 = jm[0, 1] * jm[2, 0] - jm[0, 0] * jm[2, 1]
            c20 = jm[0, 1] * jm[1, 2] - jm[0, 2] * jm[1, 1]
            c21 = jm[0, 2] * jm[1, 0] - jm[0, 0] * jm[1, 2]
            c22 = jm[0, 0] * jm[1, 1] - jm[0, 1] * jm[1, 0]
            vol += jm[0, 0] * c00 + jm[0, 1] * c01 + jm[0, 2] * c02
            for a in range(8):
                d0, d1, d2 = dndxi[g, a, 0], dndxi[g, a, 1], dndxi[g, a, 2]
                vol_grads[e, 3 * a] += c00 * d0 + c01 * d1 + c02 * d2
                vol_grads[e, 3 * a + 1] += c10 * d0 + c11 * d1 + c12 * d2
                vol_grads[e, 3 * a + 2] += c20 * d0 + c21 * d1 + c22 * d2
        volumes[e] = vol


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def element_forces(x, elements, rots, k_dev, rest_force, volumes, vol_grads, rest_volume, bulk, buf):
    """Elastic force per element corner into ``buf`` (E, 24).

    Co-rotated deviatoric part: -R K (R^T x - X); volume part: -kappa (v/V0 - 1) dv/dx.
    """
    n_el = elements.shape[0]
    for e in prange(n_el):
        r = rots[e]
        n0 = elements[e, 0]
        local = np.empty(24)
        for a in range(8):
            n = elements[e, a]
            dx0 = x[n, 0] - x[n0, 0]
            dx1 = x[n, 1] - x[n0, 1]
            dx2 = x[n, 2] - x[n0, 2]
            for i in range(3):
                local[3 * a + i] = r[0, i] * dx0 + r[1, i] * dx1 + r[2, i] * dx2
        pressure = bulk * (volumes[e] / rest_volume - 1.0)
        for a in range(8):
            f0 = rest_force[3 * a]
            f1 = rest_force[3 * a + 1]
            f2 = rest_force[3 * a + 2]
            for j in range(24):
                f0 -= k_dev[3 * a, j] * local[j]
                f1 -= k_dev[3 * a + 1, j] * local[j]
                f2 -= k_dev[3 * a + 2, j] * local[j]
            for i in range(3):
                buf[e, 3 * a + i] = (
                    r[i, 0] * f0 + r[i, 1] * f1 + r[i, 2] * f2 - pressure * vol_grads[e, 3 * a + i]
                )


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def element_product(p, elements, rots, k_dev, vol_grads, volume_stiffness, buf):
    """buf[e] = (R K R^T + k_v g g^T) p_e: the linearised element stiffness times ``p``."""
    n_el = elements.shape[0]
    for e in prange(n_el):
        r = rots[e]
        local = np.empty(24)
        gp = 0.0
        for a in range(8):
            n = elements[e, a]
            p0, p1, p2 = p[n, 0], p[n, 1], p[n, 2]
            gp += vol_grads[e, 3 * a] * p0 + vol_grads[e, 3 * a + 1] * p1 + vol_grads[e, 3 * a + 2] * p2
            for i in range(3):
                local[3 * a + i] = r[0, i] * p0 + r[1, i] * p1 + r[2, i] * p2
        gp *= volume_stiffness
        t = np.empty(24)
        for i in range(24):
            acc = 0.0
            for j in range(24):
                acc += k_dev[i, j] * local[j]
            t[i] = acc
        for a in range(8):
            t0, t1, t2 = t[3 * a], t[3 * a + 1], t[3 * a + 2]
            for i in range(3):
                buf[e, 3 * a + i] = r[i, 0] * t0 + r[i, 1] * t1 + r[i, 2] * t2 + gp * vol_grads[e, 3 * a + i]


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def gather(buf, node_ptr, node_slots, out):
    """out[n] = sum of buf over the element corners that are node n."""
    n_nodes = out.shape[0]
    for n in prange(n_nodes):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        for k in range(node_ptr[n], node_ptr[n + 1]):
            slot = node_slots[k]
            e = slot // 8
            a = slot - 8 * e
            s0 += buf[e, 3 * a]
            s1 += buf[e, 3 * a + 1]
            s2 += buf[e, 3 * a + 2]
        out[n, 0] = s0
        out[n, 1] = s1
        out[n, 2] = s2


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def system_product(
    p,
    elements,
    rots,
    k_dev,
    vol_grads,
    volume_stiffness,
    buf,
    node_ptr,
    node_slots,
    mass,
    springs,
    free,
    cm,
    ck,
    cs,
    out,
):  # noqa: E501
    """out = (cm M + ck K + cs S) p on the free dofs, 0 on constrained ones."""
    element_product(p, elements, rots, k_dev, vol_grads, volume_stiffness, buf)
    gather(buf, node_ptr, node_slots, out)
    n_nodes = out.shape[0]
    for n in prange(n_nodes):
        for i in range(3):
            s = springs[n, i, 0] * p[n, 0] + springs[n, i, 1] * p[n, 1] + springs[n, i, 2] * p[n, 2]
            v = ck * out[n, i] + cm * mass[n] * p[n, i] + cs * s
            out[n, i] = v if free[n, i] else 0.0


@njit(cache=True, fastmath=True, nogil=True)
def _invert3(m, out):
    c00 = m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]
    c01 = m[1, 2] * m[2, 0] - m[1, 0] * m[2, 2]
    c02 = m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]
    det = m[0, 0] * c00 + m[0, 1] * c01 + m[0, 2] * c02
    inv = 1.0 / det
    out[0, 0] = c00 * inv
    out[1, 0] = c01 * inv
    out[2, 0] = c02 * inv
    out[0, 1] = (m[0, 2] * m[2, 1] - m[0, 1] * m[2, 2]) * inv
    out[1, 1] = (m[0, 0] * m[2, 2] - m[0, 2] * m[2, 0]) * inv
    out[2, 1] = (m[0, 1] * m[2, 0] - m[0, 0] * m[2, 1]) * inv
    out[0, 2] = (m[0, 1] * m[1, 2] - m[0, 2] * m[1, 1]) * inv
    out[1, 2] = (m[0, 2] * m[1, 0] - m[0, 0] * m[1, 2]) * inv
    out[2, 2] = (m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]) * inv


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def block_jacobi(
    elements,
    rots,
    k_dev,
    vol_grads,
    volume_stiffness,
    buf,  # unused: the same system arguments as system_product and pcg
    node_ptr,
    node_slots,
    mass,
    springs,
    free,
    cm,
    ck,
    cs,
    inv_blocks,
):  # noqa: E501
    """Inverse 3x3 diagonal blocks of the system matrix (constrained dofs decoupled)."""
    n_nodes = mass.shape[0]
    for n in prange(n_nodes):
        blk = np.zeros((3, 3))
        tmp = np.empty((3, 3))
        for k in range(node_ptr[n], node_ptr[n + 1]):
            slot = node_slots[k]
            e = slot // 8
            a = slot - 8 * e
            r = rots[e]
            for i in range(3):  # tmp = R K_aa
                for j in range(3):
                    s = 0.0
                    for m in range(3):
                        s += r[i, m] * k_dev[3 * a + m, 3 * a + j]
                    tmp[i, j] = s
            for i in range(3):
                gi = vol_grads[e, 3 * a + i]
                for j in range(3):
                    s = 0.0
                    for m in range(3):
                        s += tmp[i, m] * r[j, m]
                    blk[i, j] += s + volume_stiffness * gi * vol_grads[e, 3 * a + j]
        for i in range(3):
            for j in range(3):
                blk[i, j] = ck * blk[i, j] + cs * springs[n, i, j]
            blk[i, i] += cm * mass[n]
        for i in range(3):
            if not free[n, i]:
                for j in range(3):
                    blk[i, j] = 0.0
                    blk[j, i] = 0.0
                blk[i, i] = 1.0
        _invert3(blk, inv_blocks[n])


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def apply_blocks(blocks, r, out):
    n_nodes = r.shape[0]
    for n in prange(n_nodes):
        for i in range(3):
            out[n, i] = blocks[n, i, 0] * r[n, 0] + blocks[n, i, 1] * r[n, 1] + blocks[n, i, 2] * r[n, 2]


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _update_iterate(x, r, p, ap, alpha, blocks, z):
    """x += alpha p; r -= alpha Ap; z = P r; returns (r.z, r.r)."""
    n_nodes = x.shape[0]
    rz = 0.0
    rr = 0.0
    for n in prange(n_nodes):
        r0 = r[n, 0] - alpha * ap[n, 0]
        r1 = r[n, 1] - alpha * ap[n, 1]
        r2 = r[n, 2] - alpha * ap[n, 2]
        r[n, 0] = r0
        r[n, 1] = r1
        r[n, 2] = r2
        for i in range(3):
            x[n, i] += alpha * p[n, i]
        z0 = blocks[n, 0, 0] * r0 + blocks[n, 0, 1] * r1 + blocks[n, 0, 2] * r2
        z1 = blocks[n, 1, 0] * r0 + blocks[n, 1, 1] * r1 + blocks[n, 1, 2] * r2
        z2 = blocks[n, 2, 0] * r0 + blocks[n, 2, 1] * r1 + blocks[n, 2, 2] * r2
        z[n, 0] = z0
        z[n, 1] = z1
        z[n, 2] = z2
        rz += r0 * z0 + r1 * z1 + r2 * z2
        rr += r0 * r0 + r1 * r1 + r2 * r2
    return rz, rr


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _dot(a, b):
    s = 0.0
    for n in prange(a.shape[0]):
        s += a[n, 0] * b[n, 0] + a[n, 1] * b[n, 1] + a[n, 2] * b[n, 2]
    return s


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _new_direction(p, z, beta):
    for n in prange(p.shape[0]):
        for i in range(3):
            p[n, i] = z[n, i] + beta * p[n, i]


@njit(cache=True, nogil=True)
def pcg(
    x,
    r,
    ref,
    tol,
    max_iterations,
    elements,
    rots,
    k_dev,
    vol_grads,
    volume_stiffness,
    buf,
    node_ptr,
    node_slots,
    mass,
    springs,
    free,
    cm,
    ck,
    cs,
    blocks,
):  # noqa: E501
    """Block-Jacobi preconditioned CG from residual ``r`` (= b - A x on entry), in place.

    Stops when ||r|| <= tol * ref; returns (iterations, ||r|| / ref).
    """
    z = np.empty_like(x)
    ap = np.empty_like(x)
    apply_blocks(blocks, r, z)
    p = z.copy()
    rz = _dot(r, z)
    res = np.sqrt(_dot(r, r)) / ref
    it = 0
    while res > tol and it < max_iterations:
        system_product(
            p,
            elements,
            rots,
            k_dev,
            vol_grads,
            volume_stiffness,
            buf,
            node_ptr,
            node_slots,
            mass,
            springs,
            free,
            cm,
            ck,
            cs,
            ap,
        )  # noqa: E501
        pap = _dot(p, ap)
        if not pap > 0.0:
            break
        alpha = rz / pap
        rz_new, rr = _update_iterate(x, r, p, ap, alpha, blocks, z)
        _new_direction(p, z, rz_new / rz)
        rz = rz_new
        it += 1
        res = np.sqrt(rr) / ref
    return it, res


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def corner_jacobians_min(x, elements):
    """Smallest corner Jacobian determinant per element (negative or zero: inverted corner)."""
    n_el = elements.shape[0]
    out = np.empty(n_el)
    # for each corner: its three edge neighbours, ordered so the rest cube gives a positive det
    nb = np.array(
        [[1, 3, 4], [2, 0, 5], [3, 1, 6], [0, 2, 7], [7, 5, 0], [4, 6, 1], [5, 7, 2], [6, 4, 3]],
        dtype=np.int64,
    )
    for e in prange(n_el):
        m = np.inf
        for a in range(8):
            p = elements[e, a]
            u = x[elements[e, nb[a, 0]]] - x[p]
            v = x[elements[e, nb[a, 1]]] - x[p]
            w = x[elements[e, nb[a, 2]]] - x[p]
            d = (
                u[0] * (v[1] * w[2] - v[2] * w[1])
                - u[1] * (v[0] * w[2] - v[2] * w[0])
                + u[2] * (v[0] * w[1] - v[1] * w[0])
            )
            if d < m:
                m = d
        out[e] = m
    return out


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def centre_strains(x, elements, rots, dndx_centre, out):
    """Co-rotated small strain R^T F - I (symmetrised) at each element centre, Voigt (E, 6)."""
    n_el = elements.shape[0]
    for e in prange(n_el):
        f = np.zeros((3, 3))
        for a in range(8):
            n = elements[e, a]
            for i in range(3):
                for j in range(3):
                    f[i, j] += x[n, i] * dndx_centre[a, j]
        s = rots[e].T @ f
        out[e, 0] = s[0, 0] - 1.0
        out[e, 1] = s[1, 1] - 1.0
        out[e, 2] = s[2, 2] - 1.0
        out[e, 3] = s[0, 1] + s[1, 0]
        out[e, 4] = s[1, 2] + s[2, 1]
        out[e, 5] = s[2, 0] + s[0, 2]
