"""Put slices that are not on a regular grid (tilt, variable or missing steps) onto one.

Each output slice lies at a regular step along the slice normal; it is interpolated
linearly between the two acquired slices around it, each shifted in-plane to undo the
gantry-tilt shear. Only called by the loader, which records the decision.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from surgtwin.core.dicom.geometry import SliceGeometry

# Variable spacing is resampled at the smallest step, unless that makes the volume
# more than this many times taller (then at the median step).
MAX_SLICE_GROWTH = 8


def output_step(geometry: SliceGeometry) -> float:
    steps = np.diff(geometry.positions_mm)
    smallest = float(steps.min())
    extent = float(geometry.positions_mm[-1] - geometry.positions_mm[0])
    if extent / smallest + 1 <= MAX_SLICE_GROWTH * (len(steps) + 1):
        return smallest
    return geometry.step_mm


def resample_to_grid(
    slices: np.ndarray, geometry: SliceGeometry, step_mm: float, fill: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return (voxels, ijk_to_lps) on an orthogonal grid with ``step_mm`` along the normal."""
    n, rows, cols = slices.shape
    sy, sx = geometry.pixel_spacing
    p0 = geometry.frames[0].position
    assert p0 is not None
    offsets = np.array([f.position - p0 for f in geometry.frames])
    u = offsets @ geometry.row_cosine / sx  # in-plane shift of each slice, in columns
    v = offsets @ geometry.column_cosine / sy  # ... and in rows
    if geometry.tilt_deg == 0.0 and not geometry.shifted:
        u[:], v[:] = 0.0, 0.0  # within tolerance: rounding in the position strings
    umin, vmin = float(np.floor(u.min() + 1e-6)), float(np.floor(v.min() + 1e-6))
    out_cols = cols + int(np.ceil(u.max() - umin - 1e-6))
    out_rows = rows + int(np.ceil(v.max() - vmin - 1e-6))
    d = geometry.positions_mm
    count = int(np.floor((d[-1] - d[0]) / step_mm + 1e-6)) + 1
    targets = d[0] + step_mm * np.arange(count)
    out = np.empty((count, out_rows, out_cols), dtype=slices.dtype)
    integral = np.issubdtype(slices.dtype, np.integer)

    cache: dict[int, np.ndarray] = {}

    def placed(k: int) -> np.ndarray:
        if k not in cache:
            if len(cache) > 4:
                cache.pop(min(cache))
            canvas = np.full((out_rows, out_cols), fill, dtype=np.float32)
            canvas[:rows, :cols] = slices[k]
            shift = (v[k] - vmin, u[k] - umin)
            if abs(shift[0]) > 1e-6 or abs(shift[1]) > 1e-6:
                # "grid-constant" blends the edge row/column with the fill; "constant" would
                # return the fill for any output point whose source lies before row/column 0,
                # so the slice's first row/column would be lost.
                canvas = ndimage.shift(canvas, shift, order=1, mode="grid-constant", cval=fill)
            cache[k] = canvas
        return cache[k]

    for m, target in enumerate(targets):
        kf = float(np.interp(target, d, np.arange(n)))
        k0 = min(int(np.floor(kf)), n - 1)
        w = kf - k0
        value = placed(k0) if w < 1e-6 else (1 - w) * placed(k0) + w * placed(min(k0 + 1, n - 1))
        out[m] = np.rint(value) if integral else value
    affine = np.eye(4)
    affine[:3, 0] = geometry.row_cosine * sx
    affine[:3, 1] = geometry.column_cosine * sy
    affine[:3, 2] = geometry.normal * step_mm
    affine[:3, 3] = p0 + umin * sx * geometry.row_cosine + vmin * sy * geometry.column_cosine
    return out, affine
