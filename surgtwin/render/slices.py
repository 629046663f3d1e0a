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
oblique it is (e.g. "RA").
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
        along = corners @ normal
        step = float(spacing[_best_axis(volume, normal)])
        count = int(np.floor((along.max() - along.min()) / step + 1e-6)) + 1
        if position_mm is not None:
            index = int(round((position_mm - along.min()) / step))
        index = count // 2 if index is None else int(index)
        if not 0 <= index < count:
            raise RenderError(f"{axis} slice {index} is outside 0..{count - 1}")
        u0, v0 = (corners @ col).min(), (corners @ row).min()
        ncols = int(np.floor(((corners @ col).max() - u0) / pixel + 1e-6)) + 1
        nrows = int(np.floor(((corners @ row).max() - v0) / pixel + 1e-6)) + 1
        origin = u0 * col + v0 * row + (along.min() + index * step) * normal
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


def _sample(volume_ijk_to_lps: np.ndarray, data: np.ndarray, points: np.ndarray, order: int) -> np.ndarray:
    inverse = np.linalg.inv(volume_ijk_to_lps)
    ijk = points @ inverse[:3, :3].T + inverse[:3, 3]
    coords = np.stack([ijk[..., 2], ijk[..., 1], ijk[..., 0]])  # arrays are [k, j, i]
    if order == 0:
        return ndimage.map_coordinates(data, np.rint(coords), order=0, mode="constant", cval=0)
    sampled = ndimage.map_coordinates(
        data.astype(np.float32, copy=False), coords, order=1, mode="constant", cval=np.nan
    )
    # Voxel centres on the border are inside; beyond half a voxel is outside.
    shape = np.array(data.shape)[:, None, None]
    outside = np.any((coords < -0.5) | (coords > shape - 0.5), axis=0)
    sampled[outside] = np.nan
    return sampled


def _overlay_lut(segmentation: Segmentation, opacity: float) -> tuple[np.ndarray, np.ndarray]:
    top = max(int(segmentation.labels.max()), max(segmentation.segments, default=0))
    colors = np.zeros((top + 1, 3), dtype=np.float32)
    alpha = np.zeros(top + 1, dtype=np.float32)
    for label, segment in segmentation.segments.items():
        if segment.visible:
            colors[label] = segment.color
            alpha[label] = opacity * segment.opacity
    return colors, alpha


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
    points = geometry.lps_points()
    values = _sample(volume.ijk_to_lps, volume.voxels, points, order=1)
    width, level = resolve_window_level(window_level, values)
    grey = apply_window(values, width, level)
    rgb = np.repeat(np.nan_to_num(grey, nan=0.0)[..., None], 3, axis=2)
    label_map = None
    if segmentation is not None:
        # Sampled through its own geometry: a label map on another grid lines up too.
        label_map = _sample(segmentation.ijk_to_lps, segmentation.labels, points, order=0)
        colors, alpha = _overlay_lut(segmentation, overlay_opacity)
        label_map = np.where(label_map < len(alpha), label_map, 0)
        a = alpha[label_map][..., None]
        rgb = rgb * (1.0 - a) + colors[label_map] * a
    image = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    labels = orientation_labels(geometry.column_step, geometry.row_step)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    if draw_labels:
        scale = max(1, min(image.shape[:2]) // 160)
        for edge, text in labels.items():
            if all(ch in GLYPHS for ch in text):
                boxes[edge] = draw_text(image, text, edge, LABEL_COLOR, scale)
    return SliceImage(image, labels, geometry, values, label_map, (width, level), axis, boxes)
