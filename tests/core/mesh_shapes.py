"""Analytic shapes voxelised on arbitrary (anisotropic, oblique, mirrored) grids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rotation(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    a = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def grid(
    shape_kji: tuple[int, int, int],
    spacing_ijk: tuple[float, float, float],
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    rot: np.ndarray | None = None,
) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = (np.eye(3) if rot is None else rot) @ np.diag(spacing_ijk)
    affine[:3, 3] = origin
    return affine


def centred_grid(
    center: np.ndarray,
    extent_mm: float,
    spacing_ijk: tuple[float, float, float],
    rot: np.ndarray | None = None,
) -> tuple[tuple[int, int, int], np.ndarray]:
    """A grid of ``extent_mm`` per side whose middle voxel lies at ``center`` (LPS)."""
    n = [int(np.ceil(extent_mm / s)) for s in spacing_ijk]
    shape = (n[2], n[1], n[0])
    affine = grid(shape, spacing_ijk, rot=rot)
    middle = affine[:3, :3] @ (np.array(n, dtype=float) - 1) / 2
    affine[:3, 3] = np.asarray(center) - middle
    return shape, affine


def lps_points(shape_kji: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    k, j, i = np.indices(shape_kji, dtype=np.float64)
    ijk = np.stack([i, j, k], axis=-1)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def voxelise(
    shape_kji: tuple[int, int, int], affine: np.ndarray, inside: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    return inside(lps_points(shape_kji, affine)).astype(np.uint8)


def ellipsoid(center: np.ndarray, radii: tuple[float, float, float]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda p: (((p - center) / np.asarray(radii)) ** 2).sum(-1) <= 1.0


def cylinder(
    center: np.ndarray, axis: np.ndarray, radius: float, half_length: float
) -> Callable[[np.ndarray], np.ndarray]:
    axis = axis / np.linalg.norm(axis)

    def inside(p: np.ndarray) -> np.ndarray:
        d = p - center
        t = d @ axis
        r = np.linalg.norm(d - t[..., None] * axis, axis=-1)
        return (r <= radius) & (np.abs(t) <= half_length)

    return inside


def radial_distance(
    points: np.ndarray, center: np.ndarray, axis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    axis = axis / np.linalg.norm(axis)
    d = points - center
    t = d @ axis
    return np.linalg.norm(d - t[:, None] * axis, axis=1), t


def large_body_phantom(
    shape_kji: tuple[int, int, int] = (250, 400, 400),
    spacing_ijk: tuple[float, float, float] = (0.8, 0.8, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """A CT-sized multi-label map (built slab by slab to keep memory low): 1 body (an
    ellipsoid filling the grid), 2 a 3 mm cylindrical bone-like shell (a rib cage),
    3 a 1.6 mm spherical shell (two voxels thin), 4 a thick ellipsoid (a lung)."""
    affine = grid(shape_kji, spacing_ijk)
    centre = (np.array(shape_kji[::-1], dtype=float) - 1) / 2 * np.array(spacing_ijk)
    affine[:3, 3] = -centre
    labels = np.zeros(shape_kji, dtype=np.uint8)
    y = (np.arange(shape_kji[1], dtype=np.float32) * spacing_ijk[1] - centre[1])[:, None]
    x = (np.arange(shape_kji[2], dtype=np.float32) * spacing_ijk[0] - centre[0])[None, :]
    for k in range(shape_kji[0]):
        z = np.float32(k * spacing_ijk[2] - centre[2])
        out = labels[k]
        out[(x / 150) ** 2 + (y / 125) ** 2 + (z / 115) ** 2 <= 1] = 1
        r_axis = np.sqrt(x**2 + y**2)
        if abs(z) < 70:
            out[(r_axis >= 95) & (r_axis <= 98)] = 2
        r_sphere = np.sqrt((x + 45) ** 2 + y**2 + z**2)
        out[(r_sphere >= 38.4) & (r_sphere <= 40)] = 3
        out[((x - 50) / 30) ** 2 + (y / 40) ** 2 + (z / 60) ** 2 <= 1] = 4
    return labels, affine
