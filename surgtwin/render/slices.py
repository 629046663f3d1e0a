"""Slice views: a volume (and its segmentation) resampled on a plane, as an RGB image.

Display convention (radiological, as in most PACS and 3D Slicer): the image is seen
from the patient's feet (axial), front (coronal) or left side (sagittal):

==========  ======================  ======================
view        image left -> right     image top -> bottom
==========  ======================  ======================
axial       patient R -> L (+x)     A -> P (+y)
coronal     patient R -> L (+x)     S -> I (-z)
sagittal    A -> P (+y)             S -> I (-z)
==========  ======================  ======================

(x, y, z are LPS millimetres.) Every pixel is placed through the volume's ``ijk_to_lps``,
so flipped, permuted and oblique voxel grids all display the right way round. With
``plane="patient"`` (default) the plane is a patient plane; with ``plane="voxel"`` it is
the volume's own (acquisition) plane closest to it, and the orientation letters say how
oblique it is (e.g. "RA"). :func:`plane_geometry` + :func:`render_plane` show any plane
(e.g. a trajectory reslice); every view goes through :func:`render_plane`, itself split
into :func:`sample_plane` (the slow part) and :func:`shade` (window/level and overlay) so a
viewer can re-window or re-colour without resampling the volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import ndimage

from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render.errors import RenderError
from surgtwin.render.glyphs import GLYPHS, draw_text
from surgtwin.render.window_level import WindowLevel, apply_window, resolve_window_level

SliceAxis = Literal["axial", "coronal", "sagittal"]
SlicePlane = Literal["patient", "voxel"]

# view -> (column direction, row direction, normal), unit vectors in LPS.
VIEW_AXES: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    "axial": (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])),
    "coronal": (np.array([1.0, 0, 0]), np.array([0, 0, -1.0]), np.array([0, 1.0, 0])),
    "sagittal": (np.array([0, 1.0, 0]), np.array([0, 0, -1.0]), np.array([1.0, 0, 0])),
}
# Letter for the + and - direction of each LPS axis.
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))
# A secondary letter is shown when the direction leans this much (cosine) towards a 2nd axis.
OBLIQUE_LETTER_THRESHOLD = 0.25
LABEL_COLOR = (255, 230, 60)


def direction_letters(direction: np.ndarray, threshold: float = OBLIQUE_LETTER_THRESHOLD) -> str:
    """Letters for where an LPS direction points: "L", "A", or "LA" for an oblique one."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    order = np.argsort(-np.abs(d))
    letters = ""
    for n, axis in enumerate(order):
        if n == 0 or abs(d[axis]) >= threshold:
            letters += _AXIS_LETTERS[axis][0 if d[axis] > 0 else 1]
    return letters


def orientation_labels(column_direction: np.ndarray, row_direction: np.ndarray) -> dict[str, str]:
    """Edge -> letters for an image whose columns run along ``column_direction`` (left to
    right) and rows along ``row_direction`` (top to bottom), both in LPS."""
    col = np.asarray(column_direction, dtype=np.float64)
    row = np.asarray(row_direction, dtype=np.float64)
    return {
        "left": direction_letters(-col),
        "right": direction_letters(col),
        "top": direction_letters(-row),
        "bottom": direction_letters(row),
    }


@dataclass
class SliceGeometry:
    """Pixel (row r, column c) centre = ``origin + c * column_step + r * row_step`` (LPS mm)."""

    origin: np.ndarray
    column_step: np.ndarray
    row_step: np.ndarray
    shape: tuple[int, int]  # (rows, columns)
    index: int  # slice number along the view's normal (see render_slice)
    slice_count: int

    def pixel_to_lps(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        r = np.asarray(rows, dtype=np.float64)[..., None]
        c = np.asarray(cols, dtype=np.float64)[..., None]
        return self.origin + c * self.column_step + r * self.row_step

    def lps_points(self) -> np.ndarray:
        """(rows, columns, 3) LPS position of every pixel centre."""
        rr, cc = np.mgrid[0 : self.shape[0], 0 : self.shape[1]]
        return self.pixel_to_lps(rr, cc)


@dataclass
class SliceImage:
    """A rendered slice: ``rgb`` (rows, columns, 3) uint8 plus what it shows, as data."""

    rgb: np.ndarray
    labels: dict[str, str]  # edge ("left", "right", "top", "bottom") -> orientation letters
    geometry: SliceGeometry
    values: np.ndarray  # resampled intensities (NaN outside the volume)
    label_map: np.ndarray | None  # resampled segment labels (0 = none)
    window_level: tuple[float, float]
    axis: str
    label_boxes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return self.rgb if dtype is None else self.rgb.astype(dtype)


def _corners_lps(volume: Volume) -> np.ndarray:
    i, j, k = (n - 1 for n in volume.shape_ijk)
    corners = np.array([[a, b, c] for a in (0, i) for b in (0, j) for c in (0, k)], dtype=np.float64)
    return volume.index_to_lps(corners)


def _best_axis(volume: Volume, direction: np.ndarray) -> int:
    """The voxel axis (0=i, 1=j, 2=k) closest in direction to ``direction``."""
    return int(np.argmax(np.abs(volume.direction.T @ direction)))


# An oblique plane image is capped at this many pixels a side (its pixels grow instead).
MAX_PLANE_PIXELS = 1024


def _patient_stack(volume: Volume, normal: np.ndarray) -> tuple[float, float, int]:
    """Slices along ``normal`` through the volume: (position of the first, step mm, count)."""
    along = _corners_lps(volume) @ normal
    step = float(volume.spacing[_best_axis(volume, normal)])
    count = int(np.floor((along.max() - along.min()) / step + 1e-6)) + 1
    return float(along.min()), step, count


def slice_index_at(volume: Volume, axis: SliceAxis, lps: np.ndarray) -> int:
    """The patient-plane slice (as counted by :func:`slice_geometry`) nearest to an LPS point,
    clamped to the volume."""
    if axis not in VIEW_AXES:
        raise RenderError(f"unknown slice axis {axis!r} (axial, coronal or sagittal)")
    first, step, count = _patient_stack(volume, VIEW_AXES[axis][2])
    index = int(np.rint((np.asarray(lps, dtype=np.float64) @ VIEW_AXES[axis][2] - first) / step))
    return min(max(index, 0), count - 1)


def plane_axes(column_dir: np.ndarray, row_dir: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit column and row directions (the row made perpendicular to the column) and the
    normal ``column x row``."""
    col = np.asarray(column_dir, dtype=np.float64).reshape(3)
    row = np.asarray(row_dir, dtype=np.float64).reshape(3)
    if not (np.all(np.isfinite(col)) and np.all(np.isfinite(row))) or np.linalg.norm(col) == 0:
        raise RenderError("a plane needs two finite, non-zero LPS directions")
    col = col / np.linalg.norm(col)
    row = row - (row @ col) * col
    if np.linalg.norm(row) < 1e-6 * max(1.0, float(np.linalg.norm(row_dir))):
        raise RenderError("the plane's column and row directions are parallel")
    row = row / np.linalg.norm(row)
    return col, row, np.cross(col, row)


def plane_geometry(
    volume: Volume,
    origin_lps: np.ndarray,
    column_dir: np.ndarray,
    row_dir: np.ndarray,
    *,
    pixel_mm: float | None = None,
    half_size_mm: float | None = None,
) -> SliceGeometry:
    """A square image of any plane, centred on ``origin_lps`` (its centre pixel lies there).

    Columns run along ``column_dir``, rows along ``row_dir`` (made perpendicular to the
    column if needed). By default the image covers the volume's projection on the plane
    with pixels of the finest voxel spacing (coarser if it would pass
    :data:`MAX_PLANE_PIXELS`). ``index``/``slice_count`` count finest-spacing steps along
    the normal ``column x row`` through the volume (``index`` may lie outside when the
    origin does).
    """
    col, row, normal = plane_axes(column_dir, row_dir)
    origin = np.asarray(origin_lps, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(origin)):
        raise RenderError(f"the plane's origin must be a finite LPS point, got {origin_lps!r}")
    finest = float(volume.spacing.min())
    offsets = _corners_lps(volume) - origin
    if half_size_mm is None:
        half = float(max(np.abs(offsets @ col).max(), np.abs(offsets @ row).max()))
    else:
        half = float(half_size_mm)
        if not half > 0:
            raise RenderError(f"the plane's half size must be positive, got {half_size_mm!r}")
    pixel = float(pixel_mm) if pixel_mm is not None else finest
    if not pixel > 0:
        raise RenderError(f"pixel size must be positive, got {pixel_mm!r}")
    pixel = max(pixel, half / ((MAX_PLANE_PIXELS - 1) // 2))
    middle = int(np.ceil(half / pixel - 1e-6))
    size = 2 * middle + 1
    along = offsets @ normal  # the volume's corners, measured from the plane
    count = int(np.floor((along.max() - along.min()) / finest + 1e-6)) + 1
    index = int(np.rint(-along.min() / finest))
    first = origin - middle * pixel * (col + row)
    return SliceGeometry(first, col * pixel, row * pixel, (size, size), index, count)


def slice_geometry(
    volume: Volume,
    axis: SliceAxis = "axial",
    index: int | None = None,
    *,
    position_mm: float | None = None,
    plane: SlicePlane = "patient",
    pixel_mm: float | None = None,
) -> SliceGeometry:
    """Where the pixels of a slice view lie in LPS (see :func:`render_slice`)."""
    if axis not in VIEW_AXES:
        raise RenderError(f"unknown slice axis {axis!r} (axial, coronal or sagittal)")
    col, row, normal = VIEW_AXES[axis]
    spacing = volume.spacing
    pixel = float(pixel_mm) if pixel_mm is not None else float(spacing.min())
    if not pixel > 0:
        raise RenderError(f"pixel size must be positive, got {pixel_mm!r}")
    if plane == "patient":
        corners = _corners_lps(volume)
        first, step, count = _patient_stack(volume, normal)
        if position_mm is not None:
            index = int(round((position_mm - first) / step))
        index = count // 2 if index is None else int(index)
        if not 0 <= index < count:
            raise RenderError(f"{axis} slice {index} is outside 0..{count - 1}")
        u0, v0 = (corners @ col).min(), (corners @ row).min()
        ncols = int(np.floor(((corners @ col).max() - u0) / pixel + 1e-6)) + 1
        nrows = int(np.floor(((corners @ row).max() - v0) / pixel + 1e-6)) + 1
        origin = u0 * col + v0 * row + (first + index * step) * normal
        return SliceGeometry(origin, col * pixel, row * pixel, (nrows, ncols), index, count)
    if plane != "voxel":
        raise RenderError(f"plane must be 'patient' or 'voxel', not {plane!r}")
    shape_ijk = volume.shape_ijk
    direction = volume.direction
    n_axis = _best_axis(volume, normal)
    in_plane = [a for a in range(3) if a != n_axis]
    c_axis = max(in_plane, key=lambda a: abs(direction[:, a] @ col))
    r_axis = next(a for a in in_plane if a != c_axis)
    count = shape_ijk[n_axis]
    if position_mm is not None:
        centre = volume.index_to_lps(np.array([(n - 1) / 2 for n in shape_ijk]))[0]
        index = int(
            round(
                (position_mm - centre @ normal) / (direction[:, n_axis] @ normal) / spacing[n_axis]
                + (count - 1) / 2
            )
        )
    index = count // 2 if index is None else int(index)
    if not 0 <= index < count:
        raise RenderError(f"{axis} slice {index} is outside 0..{count - 1}")
    start = np.zeros(3)
    start[n_axis] = index
    steps = []
    sizes = []
    for a, target in ((c_axis, col), (r_axis, row)):
        sign = 1.0 if direction[:, a] @ target >= 0 else -1.0
        start[a] = 0 if sign > 0 else shape_ijk[a] - 1
        steps.append(sign * direction[:, a] * pixel)
        sizes.append(int(np.floor((shape_ijk[a] - 1) * spacing[a] / pixel + 1e-6)) + 1)
    origin = volume.index_to_lps(start)[0]
    return SliceGeometry(origin, steps[0], steps[1], (sizes[1], sizes[0]), index, count)


def _index_affine(
    ijk_to_lps: np.ndarray, geometry: SliceGeometry
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array index (k, j, i) of pixel (r, c) = ``base + r * d_row + c * d_col``."""
    inverse = np.linalg.inv(ijk_to_lps)
    matrix = inverse[:3, :3]
    base = matrix @ geometry.origin + inverse[:3, 3]
    return base[::-1], (matrix @ geometry.row_step)[::-1], (matrix @ geometry.column_step)[::-1]


def _array_coords(
    base: np.ndarray, d_row: np.ndarray, d_col: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """(3, rows, columns) continuous array indices (k, j, i) of every pixel."""
    r = np.arange(shape[0], dtype=np.float64)[None, :, None]
    c = np.arange(shape[1], dtype=np.float64)[None, None, :]
    return base[:, None, None] + d_row[:, None, None] * r + d_col[:, None, None] * c


def _separable_axes(d_row: np.ndarray, d_col: np.ndarray) -> tuple[int, int, int] | None:
    """(row axis, column axis, constant axis) when rows and columns each run along one array
    axis (a patient plane on an axis-aligned grid): sampling is then a cheap separable lookup."""
    tiny = 1e-9 * max(float(np.abs(d_row).max()), float(np.abs(d_col).max()))
    rows, cols = np.flatnonzero(np.abs(d_row) > tiny), np.flatnonzero(np.abs(d_col) > tiny)
    if len(rows) != 1 or len(cols) != 1 or rows[0] == cols[0]:
        return None
    return int(rows[0]), int(cols[0]), 3 - int(rows[0]) - int(cols[0])


def _linear_weights(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices, weight of the upper one, and validity (inside the voxel centres)."""
    valid = (x >= -1e-6) & (x <= n - 1 + 1e-6)
    x = np.clip(x, 0, n - 1)
    low = np.minimum(np.floor(x).astype(np.int64), max(n - 2, 0))
    return low, np.minimum(low + 1, n - 1), (x - low).astype(np.float32), valid


def _separable_plane(data: np.ndarray, base, d_row, d_col, shape, axes, linear: bool) -> np.ndarray:
    row_axis, col_axis, fixed_axis = axes
    n = data.shape
    x_row = base[row_axis] + d_row[row_axis] * np.arange(shape[0])
    x_col = base[col_axis] + d_col[col_axis] * np.arange(shape[1])
    x_fixed = np.array([base[fixed_axis]])
    if not linear:
        idx = [np.rint(x).astype(np.int64) for x in (x_row, x_col, x_fixed)]
        ok = [
            (i >= 0) & (i < size)
            for i, size in zip(idx, (n[row_axis], n[col_axis], n[fixed_axis]), strict=True)
        ]
        out = np.zeros(shape, dtype=data.dtype)
        if ok[2][0] and ok[0].any() and ok[1].any():
            layer = np.moveaxis(data.take(idx[2][0], axis=fixed_axis), 0 if row_axis < col_axis else 1, 0)
            out[np.ix_(ok[0], ok[1])] = layer[np.ix_(idx[0][ok[0]], idx[1][ok[1]])]
        return out
    low, high, weight, valid = _linear_weights(x_fixed, n[fixed_axis])
    out = np.full(shape, np.nan, dtype=np.float32)
    if not valid[0]:
        return out
    layers = [
        np.moveaxis(data.take(i[0], axis=fixed_axis), 0 if row_axis < col_axis else 1, 0) for i in (low, high)
    ]
    r_low, r_high, r_w, r_ok = _linear_weights(x_row, n[row_axis])
    c_low, c_high, c_w, c_ok = _linear_weights(x_col, n[col_axis])
    plane = layers[0] * (1 - weight[0]) + layers[1] * weight[0] if weight[0] else layers[0].astype(np.float32)
    rows = plane[r_low] * (1 - r_w)[:, None] + plane[r_high] * r_w[:, None]
    values = rows[:, c_low] * (1 - c_w)[None, :] + rows[:, c_high] * c_w[None, :]
    out[np.ix_(r_ok, c_ok)] = values[np.ix_(r_ok, c_ok)]
    return out


def _sample_linear(data: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Trilinear samples (float32, NaN outside); reads only the block the points need."""
    shape = np.array(data.shape)
    flat = coords.reshape(3, -1)
    # Only points within the voxel centres' extent interpolate (scipy's "constant" mode).
    outside = np.any((flat < 0) | (flat > shape[:, None] - 1), axis=0)
    sampled = np.full(flat.shape[1], np.nan, dtype=np.float32)
    if not outside.all():
        inside = flat[:, ~outside]
        low = np.maximum(np.floor(inside.min(axis=1)).astype(np.int64) - 1, 0)
        high = np.minimum(np.ceil(inside.max(axis=1)).astype(np.int64) + 2, shape)
        block = data[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
        sampled[~outside] = ndimage.map_coordinates(
            block, inside - low[:, None], order=1, mode="constant", cval=np.nan, output=np.float32
        )
    return sampled.reshape(coords.shape[1:])


def _sample_nearest(data: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Nearest-voxel samples (0 outside the grid)."""
    index = np.rint(coords).astype(np.int64)
    shape = np.array(data.shape).reshape(3, *([1] * (index.ndim - 1)))
    inside = np.all((index >= 0) & (index < shape), axis=0)
    index = np.where(inside, index, 0)
    return np.where(inside, data[index[0], index[1], index[2]], 0)


def _sample(data: np.ndarray, ijk_to_lps: np.ndarray, geometry: SliceGeometry, linear: bool) -> np.ndarray:
    base, d_row, d_col = _index_affine(ijk_to_lps, geometry)
    axes = _separable_axes(d_row, d_col)
    if axes is not None:
        return _separable_plane(data, base, d_row, d_col, geometry.shape, axes, linear)
    coords = _array_coords(base, d_row, d_col, geometry.shape)
    return _sample_linear(data, coords) if linear else _sample_nearest(data, coords)


def sample_values(volume: Volume, geometry: SliceGeometry) -> np.ndarray:
    """Intensities (float32, trilinear, NaN outside the volume) at every pixel of ``geometry``."""
    return _sample(volume.voxels, volume.ijk_to_lps, geometry, linear=True)


def sample_labels(segmentation: Segmentation, geometry: SliceGeometry) -> np.ndarray:
    """Segment labels (nearest voxel, 0 = none or outside) at every pixel of ``geometry``;
    sampled through the segmentation's own grid, so a label map on another grid lines up."""
    return _sample(segmentation.labels, segmentation.ijk_to_lps, geometry, linear=False)


def sample_plane(
    volume: Volume, segmentation: Segmentation | None, geometry: SliceGeometry
) -> tuple[np.ndarray, np.ndarray | None]:
    """The slow half of a slice: :func:`sample_values` and (``None`` without a
    segmentation) :func:`sample_labels`."""
    values = sample_values(volume, geometry)
    return values, None if segmentation is None else sample_labels(segmentation, geometry)


def _overlay_lut(segmentation: Segmentation, opacity: float) -> tuple[np.ndarray, np.ndarray]:
    top = max(int(segmentation.labels.max()), max(segmentation.segments, default=0))
    colors = np.zeros((top + 1, 3), dtype=np.float32)
    alpha = np.zeros(top + 1, dtype=np.float32)
    for label, segment in segmentation.segments.items():
        if segment.visible:
            colors[label] = segment.color
            alpha[label] = opacity * segment.opacity
    return colors, alpha


def overlay_layers(
    segmentation: Segmentation | None, label_map: np.ndarray | None, opacity: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-pixel overlay alpha (h, w, 1) and alpha-premultiplied colour (h, w, 3); ``None``
    when nothing is overlaid. Hidden segments get alpha 0."""
    if not 0.0 <= opacity <= 1.0:
        raise RenderError(f"overlay opacity must be in 0..1, got {opacity!r}")
    if segmentation is None or label_map is None:
        return None
    colors, alpha = _overlay_lut(segmentation, opacity)
    label_map = np.where(label_map < len(alpha), label_map, 0)
    a = alpha[label_map][..., None]
    if not a.any():
        return None
    return a, colors[label_map] * a


def shade(
    values: np.ndarray, width: float, level: float, layers: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """The fast half of a slice: window/level to grey, then the overlay; (h, w, 3) uint8."""
    grey = np.nan_to_num(apply_window(values, width, level), nan=0.0)[..., None]
    if layers is None:
        rgb = np.repeat(grey, 3, axis=2)
    else:
        alpha, premultiplied = layers
        rgb = grey * (1.0 - alpha) + premultiplied
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def render_plane(
    volume: Volume,
    segmentation: Segmentation | None,
    geometry: SliceGeometry,
    window_level: WindowLevel = "soft_tissue",
    overlay_opacity: float = 0.4,
    draw_labels: bool = True,
    *,
    axis: str = "oblique",
) -> SliceImage:
    """The image of the plane ``geometry`` (from :func:`slice_geometry` or
    :func:`plane_geometry`): grey values windowed, segments overlaid, orientation letters."""
    if not 0.0 <= overlay_opacity <= 1.0:
        raise RenderError(f"overlay opacity must be in 0..1, got {overlay_opacity!r}")
    values, label_map = sample_plane(volume, segmentation, geometry)
    width, level = resolve_window_level(window_level, values)
    image = shade(values, width, level, overlay_layers(segmentation, label_map, overlay_opacity))
    labels = orientation_labels(geometry.column_step, geometry.row_step)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    if draw_labels:
        scale = max(1, min(image.shape[:2]) // 160)
        for edge, text in labels.items():
            if all(ch in GLYPHS for ch in text):
                boxes[edge] = draw_text(image, text, edge, LABEL_COLOR, scale)
    return SliceImage(image, labels, geometry, values, label_map, (width, level), axis, boxes)


def render_slice(
    volume: Volume,
    segmentation: Segmentation | None = None,
    axis: SliceAxis = "axial",
    index: int | None = None,
    window_level: WindowLevel = "soft_tissue",
    overlay_opacity: float = 0.4,
    *,
    position_mm: float | None = None,
    plane: SlicePlane = "patient",
    pixel_mm: float | None = None,
    draw_labels: bool = True,
) -> SliceImage:
    """One slice of ``volume`` in radiological display, with the segmentation overlaid.

    ``index`` counts slices along the view's patient axis from its low LPS end (axial:
    from inferior, coronal: from anterior, sagittal: from the right), one step per voxel
    of the volume axis closest to it; with ``plane="voxel"`` it is the voxel index along
    that axis. ``position_mm`` (the LPS coordinate along the axis) may be given instead.
    ``window_level`` is ``(width, level)``, a preset name of
    :data:`~surgtwin.render.window_level.CT_WINDOW_PRESETS`, or ``None`` (automatic).
    Pixels are square, ``pixel_mm`` wide (default: the finest voxel spacing). Hidden
    segments are not overlaid. Outside the volume is black.
    """
    if not 0.0 <= overlay_opacity <= 1.0:
        raise RenderError(f"overlay opacity must be in 0..1, got {overlay_opacity!r}")
    geometry = slice_geometry(volume, axis, index, position_mm=position_mm, plane=plane, pixel_mm=pixel_mm)
    return render_plane(volume, segmentation, geometry, window_level, overlay_opacity, draw_labels, axis=axis)
