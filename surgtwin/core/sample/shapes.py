"""Signed-distance primitives on a voxel grid, in patient LPS millimetres.

Every shape is an (approximate) signed distance: negative inside, in mm. The label map
takes ``sd <= 0``; the CT simulation turns the same distances into soft edges (partial
volume). Work is limited to a box of voxels around each shape to stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

Box = tuple[slice, slice, slice]  # (k, j, i) numpy order
Scalar = float | np.ndarray  # a number, or one per voxel
Vector = Sequence[float] | np.ndarray
FAR = 1.0e3  # "far outside": distance given to voxels a shape's box does not reach


@dataclass(frozen=True)
class Grid:
    """A regular axis-aligned grid; arrays are indexed ``[k, j, i]``."""

    shape: tuple[int, int, int]  # (nz, ny, nx)
    spacing: tuple[float, float, float]  # (dx, dy, dz) mm along i, j, k
    origin: tuple[float, float, float]  # LPS mm of voxel (0, 0, 0)

    @property
    def full(self) -> Box:
        return (slice(0, self.shape[0]), slice(0, self.shape[1]), slice(0, self.shape[2]))

    @property
    def ijk_to_lps(self) -> np.ndarray:
        affine = np.diag([*self.spacing, 1.0])
        affine[:3, 3] = self.origin
        return affine

    def z_positions(self) -> np.ndarray:
        return self.origin[2] + self.spacing[2] * np.arange(self.shape[0])

    def coords(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable x (1,1,n), y (1,n,1), z (n,1,1) in mm for the voxels of ``box``."""
        k, j, i = box
        x = self.origin[0] + self.spacing[0] * np.arange(i.start, i.stop, dtype=np.float64)
        y = self.origin[1] + self.spacing[1] * np.arange(j.start, j.stop, dtype=np.float64)
        z = self.origin[2] + self.spacing[2] * np.arange(k.start, k.stop, dtype=np.float64)
        return x[None, None, :], y[None, :, None], z[:, None, None]

    def box(self, lo: Vector, hi: Vector) -> Box:
        """Voxels whose centres lie within the LPS bounds [lo, hi] (clipped to the grid)."""
        out = []
        for axis, n in zip((2, 1, 0), self.shape, strict=True):
            o, s = self.origin[axis], self.spacing[axis]
            a = int(np.clip(np.ceil((lo[axis] - o) / s), 0, n))
            b = int(np.clip(np.floor((hi[axis] - o) / s) + 1, a, n))
            out.append(slice(a, b))
        return (out[0], out[1], out[2])


def box_shape(box: Box) -> tuple[int, int, int]:
    return (box[0].stop - box[0].start, box[1].stop - box[1].start, box[2].stop - box[2].start)


def sub_box(outer: Box, inner: Box) -> tuple[slice, slice, slice]:
    """Slices of ``inner`` relative to ``outer`` (both absolute); empty if disjoint."""
    rel = []
    for o, n in zip(outer, inner, strict=True):
        a, b = max(o.start, n.start), min(o.stop, n.stop)
        rel.append(slice(a - o.start, max(a, b) - o.start))
    return (rel[0], rel[1], rel[2])


# --- closed-form primitives (arguments broadcast) ----------------------------------


def ellipse_sd(x: np.ndarray, y: np.ndarray, cx: Scalar, cy: Scalar, a: Scalar, b: Scalar) -> np.ndarray:
    """In-plane ellipse, extruded along z (Quilez' first-order distance estimate)."""
    u, v = (x - cx) / a, (y - cy) / b
    k0 = np.sqrt(u * u + v * v)
    k1 = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return np.where(k1 > 0, k0 * (k0 - 1.0) / np.maximum(k1, 1e-12), -np.minimum(a, b))


def ellipsoid_sd(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    centre: Vector,
    semi: Vector,
    rotation: np.ndarray | None = None,
) -> np.ndarray:
    """Ellipsoid; ``rotation`` columns are its local axes expressed in LPS."""
    p = [x - centre[0], y - centre[1], z - centre[2]]
    if rotation is not None:
        r = rotation
        p = [p[0] * r[0, n] + p[1] * r[1, n] + p[2] * r[2, n] for n in range(3)]
    u = [p[n] / semi[n] for n in range(3)]
    k0 = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
    k1 = np.sqrt((u[0] / semi[0]) ** 2 + (u[1] / semi[1]) ** 2 + (u[2] / semi[2]) ** 2)
    return np.where(k1 > 0, k0 * (k0 - 1.0) / np.maximum(k1, 1e-12), -min(semi))


def box_sd(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    centre: Sequence[Scalar] | np.ndarray,
    half: Vector,
) -> np.ndarray:
    """Axis-aligned box (exact Euclidean signed distance)."""
    q = [np.abs(c - m) - h for c, m, h in zip((x, y, z), centre, half, strict=True)]
    outside = np.sqrt(sum(np.maximum(qq, 0.0) ** 2 for qq in q))
    inside = np.minimum(np.maximum(np.maximum(q[0], q[1]), q[2]), 0.0)
    return outside + inside


def rotation(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Rotation about z (yaw), then x (pitch), then y (roll); columns = local axes in LPS."""
    a, b, c = np.radians([yaw_deg, pitch_deg, roll_deg])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


# --- tubes along smooth centrelines --------------------------------------------------


def spline_path(
    control: Sequence[Sequence[float]] | np.ndarray, radii: Vector, step: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """Dense centreline (N, 3) and radii (N,) through control points, ~``step`` mm apart.

    Position: a cubic spline on chord length (smooth curvature). Radius: PCHIP, so an
    aneurysm or a stenosis does not overshoot between its control values.
    """
    pts = np.asarray(control, dtype=np.float64)
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    n = max(int(np.ceil(chord[-1] / step)) + 1, 2)
    s = np.linspace(0.0, chord[-1], n)
    path = CubicSpline(chord, pts, axis=0, bc_type="natural")(s)
    return path, PchipInterpolator(chord, np.asarray(radii, dtype=np.float64))(s)


def tube_sd(grid: Grid, box: Box, path: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Union of round cones along ``path``: distance to the axis minus the local radius."""
    out = np.full(box_shape(box), FAR)
    margin = 6.0  # mm beyond the surface where soft edges still need a true distance
    for a, b, ra, rb in zip(path[:-1], path[1:], radii[:-1], radii[1:], strict=True):
        reach = max(ra, rb) + margin
        seg_box = grid.box(np.minimum(a, b) - reach, np.maximum(a, b) + reach)
        rel = sub_box(box, seg_box)
        if any(r.stop <= r.start for r in rel):
            continue
        absolute = tuple(slice(o.start + r.start, o.start + r.stop) for o, r in zip(box, rel, strict=True))
        x, y, z = grid.coords(absolute)  # type: ignore[arg-type]
        d = b - a
        px, py, pz = x - a[0], y - a[1], z - a[2]
        t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / float(d @ d), 0.0, 1.0)
        dist = np.sqrt((px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2)
        np.minimum(out[rel], dist - (ra + t * (rb - ra)), out=out[rel])
    return out


def path_box(grid: Grid, path: np.ndarray, radii: np.ndarray, margin: float = 6.0) -> Box:
    reach = float(radii.max()) + margin
    return grid.box(path.min(axis=0) - reach, path.max(axis=0) + reach)
