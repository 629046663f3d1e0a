"""Outputs of the 3D flow: wall shear stress on a vessel surface, and streamlines.

Both read a steady velocity field on a regular grid as :class:`~surgtwin.core.flow.lbm.LbmResult`
gives it: ``velocity_m_s[i, j, k]`` holds the components along the grid's axes 0, 1, 2 in m/s, zero
outside the ``fluid`` mask, and ``grid_to_lps`` maps grid index (i, j, k) to patient LPS millimetres
(cells may be anisotropic or rotated). A mask cut from a volume's ``voxels[k, j, i]`` gets its
``grid_to_lps`` from :func:`grid_to_lps_from_ijk`. Fields are sampled by trilinear interpolation;
the fluid indicator (1 in fluid cells, 0 elsewhere) is interpolated alongside, and "inside the
fluid" means it is >= 1/2: the halfway wall of a bounce-back solver.

Wall shear stress (magnitude, Pa, per vertex): from each vertex the velocity is sampled along the
inward normal at s = h, 2h, 3h, 4h (h: one cell along that normal); its tangential part
u_t = u - (u.n) n is fitted by least squares with a quadratic a + b s + c s^2, and tau = mu |b|,
the shear rate at the vertex. Why this fit:
- it is exact for Poiseuille flow, and the constant term absorbs both trilinear interpolation's
  bias near the wall and any offset between the mesh and the solver's wall. Forcing u_t = 0 at the
  vertex instead (no-slip at the mesh) turns the up-to-half-a-cell gap between a smoothed mesh
  and a staircase lumen into an error of gap / h: on LBM tubes 10-16 cells across (meshed by the
  project's own mesher) that read WSS 7-13 % low on average, 95th percentile 19-30 %, against a
  mean within +-5 % and a 95th percentile of 8-14 % for this fit;
- the samples start a cell inside, where the interpolation corners are (almost always) fluid
  cells: the first half cell is a staircase in the solver's own field.
The cost is a stencil four cells deep: where it reaches out of a thin vessel (under ~5 cells
across) it is sampled again at half the spacing, and curvature of the profile over four cells
(bends, jets) is smoothed out.
Normals are the mesh's outward normals (negated) if given, else the gradient of a fluid mask
smoothed over about a cell. A vertex whose samples leave the fluid or the grid takes the value of
the nearest valid vertex (``invalid="nearest"``, the default) or NaN (``invalid="nan"``).

Streamlines: classic RK4 on the unit direction of the interpolated velocity, so each step covers
``step_mm`` of arc length whatever the speed; all seeds are integrated together with numpy. A
streamline stops at its last point inside when the next one would leave the fluid or the grid,
when the speed falls below ``min_speed_m_s`` (stagnation), or at ``max_length_mm``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from surgtwin.core.flow.centerline import plane_axes
from surgtwin.core.flow.errors import FlowError

StopReason = Literal["left_fluid", "left_grid", "stagnated", "max_length"]
InvalidPolicy = Literal["nearest", "nan"]
MM_PER_M = 1000.0
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
WSS_SAMPLES = np.array([1.0, 2.0, 3.0, 4.0])  # distances from the wall, in cells along the normal
WSS_STENCIL_SCALES = (1.0, 0.5)  # a thin vessel is sampled again at half the spacing
# least-squares quadratic through the samples: the row giving its slope at s = 0
_SLOPE_AT_WALL = np.linalg.pinv(np.stack([np.ones(4), WSS_SAMPLES, WSS_SAMPLES**2], axis=1))[1]
STAGNATION_FRACTION = 1e-3  # default stop speed, relative to the field's peak speed


@dataclass(frozen=True)
class Streamline:
    """One integrated streamline: points in LPS mm (the seed first) and the speed at each point."""

    points_lps: np.ndarray  # (n, 3) float64, mm
    speed_m_s: np.ndarray  # (n,) float64
    stop: StopReason  # why the integration ended

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(np.diff(self.points_lps, axis=0), axis=1).sum())


def grid_to_lps_from_ijk(ijk_to_lps: np.ndarray) -> np.ndarray:
    """The affine of an array indexed ``[k, j, i]`` (a volume's voxels) from the volume's ``ijk_to_lps``."""
    affine = np.array(ijk_to_lps, dtype=np.float64)
    affine[:3, :3] = affine[:3, 2::-1]
    return affine


class _SampledField:
    """Velocity and fluid indicator over the fluid's bounding box, ready to interpolate in LPS mm."""

    def __init__(self, velocity_m_s: np.ndarray | None, fluid: np.ndarray, grid_to_lps: np.ndarray) -> None:
        velocity, mask, affine = _checked_field(velocity_m_s, fluid, grid_to_lps)
        box = ndimage.find_objects(mask.astype(np.uint8))[0]
        # one cell of margin keeps the wall's solid neighbours; 2 cells along each axis at least
        box = tuple(
            slice(max(min(b.start - 1, n - 2), 0), min(max(b.stop + 1, 2), n))
            for b, n in zip(box, mask.shape, strict=True)
        )
        self.mask = np.ascontiguousarray(mask[box])
        start = np.array([b.start for b in box], dtype=np.float64)
        self.affine = affine.copy()
        self.affine[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
        self.inverse = np.linalg.inv(self.affine)
        self.spacing_mm = np.linalg.norm(self.affine[:3, :3], axis=0)
        self.to_lps_direction = self.affine[:3, :3] / self.spacing_mm  # grid components -> LPS axes
        self.shape = np.array(self.mask.shape)
        self.strides = np.array([self.shape[1] * self.shape[2], self.shape[2], 1], dtype=np.intp)
        channels = np.zeros(self.mask.shape + (4,), dtype=np.float32)
        self.max_speed_m_s = 0.0
        if velocity is not None:
            channels[..., :3] = np.where(self.mask[..., None], velocity[box], np.float32(0))
            self.max_speed_m_s = float(np.sqrt((channels[..., :3].astype(np.float64) ** 2).sum(-1)).max())
        channels[..., 3] = self.mask
        self.channels = channels.reshape(-1, 4)

    def to_index(self, points_lps: np.ndarray) -> np.ndarray:
        return points_lps @ self.inverse[:3, :3].T + self.inverse[:3, 3]

    def sample(self, points_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Velocity along the LPS axes (m/s), fluid indicator, and whether each point is in the grid."""
        ijk = self.to_index(points_lps)
        tolerance = 1e-6  # points exactly on the grid's faces (seeds on an inlet face) count as in
        in_grid = np.all((ijk >= -tolerance) & (ijk <= self.shape - 1 + tolerance), axis=1)
        values = _trilinear(self.channels, self.shape, self.strides, ijk)
        velocity = values[:, :3].astype(np.float64) @ self.to_lps_direction.T
        return velocity, values[:, 3].astype(np.float64), in_grid

    def inward_normals(self, points_lps: np.ndarray) -> np.ndarray:
        """Unit normals into the fluid: the gradient of the fluid mask smoothed over about a cell."""
        sigma = self.spacing_mm.max() / self.spacing_mm
        smooth = ndimage.gaussian_filter(self.mask.astype(np.float32), sigma, mode="nearest").reshape(-1, 1)
        ijk = self.to_index(points_lps)
        gradient_ijk = np.empty_like(ijk)
        for axis in range(3):
            step = np.zeros(3)
            step[axis] = 0.5
            ahead = _trilinear(smooth, self.shape, self.strides, ijk + step)[:, 0]
            behind = _trilinear(smooth, self.shape, self.strides, ijk - step)[:, 0]
            gradient_ijk[:, axis] = ahead - behind
        # gradients transform with the inverse transpose of the grid matrix
        return _unit(gradient_ijk @ self.inverse[:3, :3])

    def cell_along(self, directions: np.ndarray) -> np.ndarray:
        """Length (mm) of a unit step in index space along each unit LPS direction."""
        return 1.0 / np.linalg.norm(directions @ self.inverse[:3, :3].T, axis=1)


def _checked_field(
    velocity_m_s: np.ndarray | None, fluid: np.ndarray, grid_to_lps: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    mask = np.asarray(fluid)
    affine = np.asarray(grid_to_lps, dtype=np.float64)
    if mask.ndim != 3:
        raise FlowError(f"the fluid mask must be a 3D array, not shape {mask.shape}")
    if min(mask.shape) < 2:
        raise FlowError(f"the grid needs at least 2 cells along each axis, not {mask.shape}")
    mask = mask.astype(bool, copy=False)
    if not mask.any():
        raise FlowError("the fluid mask is empty: there is no flow to sample")
    if (
        affine.shape != (4, 4)
        or not np.all(np.isfinite(affine))
        or abs(np.linalg.det(affine[:3, :3])) < 1e-12
    ):
        raise FlowError("grid_to_lps must be a finite, invertible 4x4 affine (grid index -> LPS mm)")
    if velocity_m_s is None:
        return None, mask, affine
    velocity = np.asarray(velocity_m_s)
    if velocity.shape != mask.shape + (3,):
        raise FlowError(
            f"the velocity field has shape {velocity.shape} but the fluid mask {mask.shape}: "
            f"expected {mask.shape + (3,)} (three components per cell)"
        )
    bad = int(np.count_nonzero(~np.isfinite(velocity[mask])))
    if bad:
        raise FlowError(
            f"the velocity field has {bad} non-finite values inside the fluid (did the flow run diverge?)"
        )
    return velocity.astype(np.float32, copy=False), mask, affine


def _trilinear(values: np.ndarray, shape: np.ndarray, strides: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of ``values`` ((cells, channels), C order over ``shape``) at index points;
    points outside the grid take the value at the nearest point of the grid."""
    ijk = np.clip(ijk, 0, shape - 1)
    base = np.minimum(np.floor(ijk).astype(np.intp), shape - 2)
    frac = (ijk - base).astype(np.float32)
    w = np.stack([1 - frac, frac], axis=2)  # (n, axis, 0 or 1)
    weights = (w[:, 0, :, None, None] * w[:, 1, None, :, None] * w[:, 2, None, None, :]).reshape(-1, 8)
    corners = (np.indices((2, 2, 2)).reshape(3, 8).T @ strides).astype(np.intp)
    gathered = values[(base @ strides)[:, None] + corners]  # (n, 8, channels)
    return np.einsum("nc,ncd->nd", weights, gathered)


def _unit(vectors: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, length, out=np.zeros_like(vectors), where=length > 0)


def _points(points: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise FlowError(f"{what} must be an (N, 3) array of LPS mm, not shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise FlowError(f"{what} hold values that are not finite numbers")
    return array


def _positive(value: float, what: str) -> float:
    if not (np.isfinite(value) and value > 0):
        raise FlowError(f"{what} must be a positive number, not {value}")
    return float(value)


def wall_shear_stress(
    velocity_m_s: np.ndarray,
    fluid: np.ndarray,
    grid_to_lps: np.ndarray,
    viscosity_pa_s: float,
    vertices_lps: np.ndarray,
    normals_lps: np.ndarray | None = None,
    *,
    invalid: InvalidPolicy = "nearest",
) -> np.ndarray:
    """Magnitude of the wall shear stress (Pa) at each vertex of a vessel surface (method: module doc).

    ``normals_lps`` are the surface's outward normals (out of the lumen, as a
    :class:`~surgtwin.core.mesh.surface.SurfaceMesh` is oriented); without them, or where one is
    zero, the normal comes from the fluid mask.
    """
    _positive(viscosity_pa_s, "the viscosity (Pa s)")
    if invalid not in ("nearest", "nan"):
        raise FlowError(f"unknown policy for invalid vertices {invalid!r}: use 'nearest' or 'nan'")
    field = _SampledField(velocity_m_s, fluid, grid_to_lps)
    vertices = _points(vertices_lps, "the surface vertices")
    if len(vertices) == 0:
        return np.zeros(0)
    inward = field.inward_normals(vertices)
    if normals_lps is not None:
        given = _points(normals_lps, "the surface normals")
        if given.shape != vertices.shape:
            raise FlowError(f"{len(given)} normals were given for {len(vertices)} vertices")
        given = -_unit(given)
        _check_orientation(given, inward)
        inward = np.where(np.linalg.norm(given, axis=1, keepdims=True) > 0, given, inward)
    tau = np.full(len(vertices), np.nan)
    todo = np.flatnonzero(np.linalg.norm(inward, axis=1) > 0)
    for scale in WSS_STENCIL_SCALES:
        shear_rate, valid = _shear_rate(field, vertices[todo], inward[todo], scale)
        tau[todo[valid]] = viscosity_pa_s * shear_rate[valid]
        todo = todo[~valid]
    return _fill_invalid(tau, vertices, invalid)


def _shear_rate(
    field: _SampledField, vertices: np.ndarray, inward: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """|du_t/ds| at each vertex (1/s) from the quadratic fit; whether all its samples were in the fluid."""
    h = field.cell_along(inward) * scale
    slope = np.zeros_like(vertices)
    valid = np.ones(len(vertices), dtype=bool)
    for weight, s in zip(_SLOPE_AT_WALL, WSS_SAMPLES, strict=True):
        velocity, indicator, in_grid = field.sample(vertices + (s * h)[:, None] * inward)
        tangential = velocity - (velocity * inward).sum(axis=1, keepdims=True) * inward
        slope += weight * tangential
        valid &= in_grid & (indicator >= 0.5)
    return np.linalg.norm(slope, axis=1) / h * MM_PER_M, valid


def _check_orientation(inward_given: np.ndarray, inward_from_mask: np.ndarray) -> None:
    agreement = (inward_given * inward_from_mask).sum(axis=1)
    if np.median(agreement) < 0:
        raise FlowError("the surface normals point into the vessel; pass outward normals (out of the lumen)")


def _fill_invalid(tau: np.ndarray, vertices: np.ndarray, policy: InvalidPolicy) -> np.ndarray:
    valid = np.isfinite(tau)
    if valid.all() or policy == "nan":
        return tau
    if not valid.any():
        raise FlowError(
            "no surface vertex lies on the wall of the fluid: is the mesh in the same place (LPS mm) "
            "as the flow grid, and the vessel at least 3 cells across?"
        )
    _, nearest = cKDTree(vertices[valid]).query(vertices[~valid])
    tau[~valid] = tau[valid][nearest]
    return tau


def streamlines(
    velocity_m_s: np.ndarray,
    fluid: np.ndarray,
    grid_to_lps: np.ndarray,
    seeds_lps: np.ndarray,
    *,
    max_length_mm: float = 300.0,
    step_mm: float | None = None,
    min_speed_m_s: float | None = None,
) -> list[Streamline]:
    """Streamlines downstream of each seed (one per seed, in order; method: module doc).

    ``step_mm`` defaults to half the smallest cell; ``min_speed_m_s`` to 1/1000 of the field's peak
    speed. A seed outside the fluid gives a streamline of that one point.
    """
    field = _SampledField(velocity_m_s, fluid, grid_to_lps)
    seeds = _points(seeds_lps, "the seed points")
    max_length = _positive(max_length_mm, "the maximum streamline length (mm)")
    step = 0.5 * float(field.spacing_mm.min()) if step_mm is None else _positive(step_mm, "the step (mm)")
    if min_speed_m_s is None:
        min_speed = STAGNATION_FRACTION * field.max_speed_m_s
    else:
        min_speed = float(min_speed_m_s)
        if not (np.isfinite(min_speed) and min_speed >= 0):
            raise FlowError(f"the stagnation speed must be zero or positive, not {min_speed_m_s}")
    if len(seeds) == 0:
        return []
    if field.max_speed_m_s <= min_speed:
        raise FlowError("the velocity field is at rest: no streamline to trace")

    stop = np.full(len(seeds), "max_length", dtype=object)
    velocity, indicator, in_grid = field.sample(seeds)
    speed = np.linalg.norm(velocity, axis=1)
    alive = _still_going(stop, np.arange(len(seeds)), speed, indicator, in_grid, min_speed)
    records = [(np.arange(len(seeds)), seeds, speed)]
    current = seeds.copy()
    heading = _unit(velocity)  # the next step's first RK4 stage: sampled already
    travelled, n_steps = 0.0, math.ceil(max_length / step - 1e-9)
    for _ in range(n_steps):
        index = np.flatnonzero(alive)
        if index.size == 0:
            break
        h = min(step, max_length - travelled)
        moved = _rk4_step(field, current[index], heading[index], h)
        velocity, indicator, in_grid = field.sample(moved)
        speed = np.linalg.norm(velocity, axis=1)
        inside = in_grid & (indicator >= 0.5)
        records.append((index[inside], moved[inside], speed[inside]))
        current[index[inside]] = moved[inside]
        heading[index] = _unit(velocity)
        alive[index] = _still_going(stop, index, speed, indicator, in_grid, min_speed)
        travelled += h
    return _assemble(records, stop, len(seeds))


def _still_going(
    stop: np.ndarray,
    index: np.ndarray,
    speed: np.ndarray,
    indicator: np.ndarray,
    in_grid: np.ndarray,
    min_speed: float,
) -> np.ndarray:
    """Marks why the streamlines ``index`` stop at their new point; True for those that go on."""
    reasons = np.select(
        [~in_grid, indicator < 0.5, speed < min_speed], ["left_grid", "left_fluid", "stagnated"], ""
    )
    going = reasons == ""
    stop[index[~going]] = reasons[~going]
    return going


def _rk4_step(field: _SampledField, points: np.ndarray, k1: np.ndarray, h: float) -> np.ndarray:
    def direction(x: np.ndarray) -> np.ndarray:
        return _unit(field.sample(x)[0])

    k2 = direction(points + 0.5 * h * k1)
    k3 = direction(points + 0.5 * h * k2)
    k4 = direction(points + h * k3)
    return points + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _assemble(
    records: list[tuple[np.ndarray, np.ndarray, np.ndarray]], stop: np.ndarray, n: int
) -> list[Streamline]:
    seed = np.concatenate([r[0] for r in records])
    points = np.concatenate([r[1] for r in records])
    speed = np.concatenate([r[2] for r in records])
    order = np.argsort(seed, kind="stable")  # records are in step order: stable keeps each line in order
    bounds = np.searchsorted(seed[order], np.arange(n + 1))
    points, speed = points[order], speed[order]
    return [
        Streamline(points[a:b], speed[a:b], stop[i])
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]


def inlet_seeds(
    fluid: np.ndarray,
    grid_to_lps: np.ndarray,
    centre_lps: np.ndarray,
    normal_lps: np.ndarray,
    radius_mm: float,
    count: int,
) -> np.ndarray:
    """Up to ``count`` seed points (LPS mm) spread evenly (a sunflower spiral) over the disc of
    ``radius_mm`` around ``centre_lps`` across ``normal_lps``; only those inside the fluid are kept."""
    field = _SampledField(None, fluid, grid_to_lps)
    centre = _points(np.reshape(centre_lps, (1, 3)), "the inlet centre")[0]
    normal = _points(np.reshape(normal_lps, (1, 3)), "the inlet normal")[0]
    radius = _positive(radius_mm, "the inlet radius (mm)")
    if np.linalg.norm(normal) == 0:
        raise FlowError("the inlet normal must not be zero")
    if int(count) != count or count < 1:
        raise FlowError(f"the seed count must be a positive whole number, not {count}")
    e1, e2 = plane_axes(normal / np.linalg.norm(normal))
    k = np.arange(int(count))
    r = radius * np.sqrt((k + 0.5) / count)
    angle = k * GOLDEN_ANGLE
    points = centre + r[:, None] * (np.cos(angle)[:, None] * e1 + np.sin(angle)[:, None] * e2)
    _, indicator, in_grid = field.sample(points)
    inside = in_grid & (indicator >= 0.5)
    if not inside.any():
        raise FlowError(
            f"no point of the {radius:g} mm disc around {np.round(centre, 2).tolist()} lies inside the fluid"
        )
    return points[inside]
