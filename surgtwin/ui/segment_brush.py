"""Paint/erase brush and region-growing seed: slice tools that edit the selected segment.

Each gesture becomes one core command (one undo step) handed to ``context.execute``:
a brush stroke (press, drag, release) is one ``EditLabels``; a seed click is one
``EditLabels`` of the grown region.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.commands import EditLabels
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools import apply_mask, connected_threshold, paint, stroke_mask
from surgtwin.core.segmentation.tools.grid import seed_indices
from surgtwin.ui.view_tools import SlicePoint, SliceTool, ToolContext, ViewFrame

if TYPE_CHECKING:
    from surgtwin.core.progress import Progress
    from surgtwin.core.volume import Volume

NO_SEGMENT = "no segment is selected: choose or add one in the Segments panel, then try again"


def _selected(context: ToolContext, action: str) -> tuple[Segmentation, int] | None:
    """The segmentation and label to edit, or None after telling the user why not."""
    chosen = context.selected_segment()
    segmentation = None if chosen is None else context.scene.segmentations.get(chosen[0])
    if chosen is None or segmentation is None or chosen[1] not in segmentation.segments:
        context.report_error(action, SegmentationError(NO_SEGMENT))
        return None
    return segmentation, chosen[1]


def slab_mask(
    segmentation: Segmentation,
    start: tuple[int, int, int],
    shape: tuple[int, ...],
    plane_point: np.ndarray,
    normal: np.ndarray,
) -> np.ndarray:
    """Voxels of a sub-box (first voxel ``start`` (k, j, i)) whose centre lies in the
    one-voxel-thick slab of the plane: ``-t/2 <= distance < t/2`` with ``t`` the voxel
    step along the normal, so exactly one layer on a grid aligned with the view."""
    grids = np.meshgrid(*(np.arange(s, s + n) for s, n in zip(start, shape, strict=True)), indexing="ij")
    ijk = np.stack([grids[2], grids[1], grids[0]], axis=-1).astype(np.float64)
    points = ijk @ segmentation.ijk_to_lps[:3, :3].T + segmentation.ijk_to_lps[:3, 3]
    distance = (points - plane_point) @ normal
    thickness = float(np.max(np.abs(segmentation.ijk_to_lps[:3, :3].T @ normal)))
    return (distance >= -thickness / 2 - 1e-6) & (distance < thickness / 2 - 1e-6)


class BrushTool(SliceTool):
    """Paint (or erase) the selected segment along a stroke; one stroke = one undo step.

    With ``sphere=False`` (default) the brush is a disc on the slice: the stroke's
    capsule mask (the core's ``stroke_mask``, as ``paint`` uses) is cut to the one voxel
    layer under the view's plane and applied with ``apply_mask`` (the same ``EditLabels``
    ``paint`` makes). ``paint`` itself cannot be made 2D by its arguments: a ball always
    reaches the neighbouring slices. With ``sphere=True`` it is the core's 3D ``paint``.
    """

    name = "brush"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(
        self, context: ToolContext, radius_mm: float = 5.0, erase: bool = False, sphere: bool = False
    ) -> None:
        super().__init__(context)
        self.radius_mm = float(radius_mm)
        self.erase = bool(erase)
        self.sphere = bool(sphere)
        self.stroke: list[np.ndarray] = []
        self._plane: tuple[np.ndarray, np.ndarray] | None = None  # (point, normal) of the stroke
        self._cursor: SlicePoint | None = None

    @property
    def action(self) -> str:
        return "Erase" if self.erase else "Paint"

    def press(self, at: SlicePoint) -> bool:
        self.stroke = [np.asarray(at.lps, dtype=np.float64).copy()]
        self._plane = (self.stroke[0], np.asarray(at.normal, dtype=np.float64))
        self._cursor = at
        self.context.tool_changed()
        return True

    def move(self, at: SlicePoint, buttons_down: bool) -> bool:
        self._cursor = at
        if buttons_down and self.stroke:
            point = np.asarray(at.lps, dtype=np.float64)
            if np.linalg.norm(point - self.stroke[-1]) > 1e-6:
                self.stroke.append(point.copy())
        self.context.tool_changed()
        return True

    def release(self, at: SlicePoint) -> bool:
        if not self.stroke:
            return False
        self.move(at, True)
        stroke, plane = self.stroke, self._plane
        self.stroke, self._plane = [], None
        self.context.tool_changed()
        chosen = _selected(self.context, self.action)
        if chosen is None:
            return True
        segmentation, label = chosen
        try:
            command = self.command(segmentation, label, np.array(stroke), plane)
        except Exception as exc:  # noqa: BLE001 - a bad stroke is reported, the case is unchanged
            self.context.report_error(self.action, exc)
            return True
        if command.is_empty:
            self.context.set_status(f"{self.action}: nothing changed")
        elif self.context.execute(command):
            self.context.set_status(f"{self.action}: {command.changed_voxels} voxels")
        return True

    def command(
        self,
        segmentation: Segmentation,
        label: int,
        centers_lps: np.ndarray,
        plane: tuple[np.ndarray, np.ndarray] | None,
    ) -> EditLabels:
        """The one edit for a stroke through ``centers_lps`` (see the class docstring)."""
        if self.sphere or plane is None:
            return paint(segmentation, label, centers_lps, self.radius_mm, erase=self.erase)
        segmentation.check_label(label)
        parameters: dict[str, Any] = {
            "centers_lps": np.round(centers_lps, 4).tolist(),
            "radius_mm": self.radius_mm,
            "erase": self.erase,
            "brush": "2d",
            "plane_normal": np.round(plane[1], 6).tolist(),
        }
        tool = "erase" if self.erase else "paint"
        mode = "remove" if self.erase else "add"
        found = stroke_mask(segmentation, centers_lps, self.radius_mm)
        if found is None:
            empty = np.zeros((1, 1, 1), dtype=bool)
            return apply_mask(
                segmentation, label, empty, mode, start=(0, 0, 0), tool=tool, parameters=parameters
            )
        mask, start = found
        mask = mask & slab_mask(segmentation, start, mask.shape, plane[0], plane[1])
        return apply_mask(segmentation, label, mask, mode, start=start, tool=tool, parameters=parameters)

    def cancel(self) -> None:
        self.stroke, self._plane = [], None
        self.context.tool_changed()

    def paint(self, painter: QPainter, frame: ViewFrame) -> None:
        colour = QColor(255, 80, 80) if self.erase else QColor(255, 230, 60)
        pixels = self.radius_mm / max(frame.mm_per_pixel, 1e-9)
        if len(self.stroke) > 1 and self._on_view(self.stroke[0], self._plane, frame):
            pen = QPen(colour, 2.0 * pixels, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            colour_fill = QColor(colour)
            colour_fill.setAlpha(90)
            pen.setColor(colour_fill)
            painter.setPen(pen)
            points = [frame.to_widget(p) for p in self.stroke]
            for a, b in zip(points[:-1], points[1:], strict=True):
                painter.drawLine(a, b)
        cursor = self._cursor
        if cursor is not None and self._on_view(cursor.lps, (cursor.lps, cursor.normal), frame):
            painter.setPen(QPen(colour, 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(frame.to_widget(cursor.lps), pixels, pixels)

    @staticmethod
    def _on_view(point: np.ndarray, plane: tuple[np.ndarray, np.ndarray] | None, frame: ViewFrame) -> bool:
        """Only the view the gesture happens in draws it (same plane, same orientation)."""
        if plane is None or abs(float(np.asarray(plane[1]) @ frame.normal)) < 0.999:
            return False
        return frame.distance_to_plane(point) < 1e-3 + 0.5 * frame.mm_per_pixel


def neighbourhood_range(
    volume: Volume, seed_lps: np.ndarray, radius_mm: float, multiplier: float, min_half_width: float
) -> tuple[float, float]:
    """Intensity range for a seed: mean ± max(multiplier·std, min_half_width) of the voxels
    within ``radius_mm`` of it (the floor keeps a flat region from giving a zero range)."""
    (k, j, i) = seed_indices(volume, seed_lps, volume.voxels.shape)[0]
    spacing = volume.spacing[::-1]  # k, j, i
    reach = [max(0, int(np.floor(radius_mm / s))) for s in spacing]
    box = tuple(
        slice(max(0, c - r), min(n, c + r + 1))
        for c, r, n in zip((k, j, i), reach, volume.voxels.shape, strict=True)
    )
    grids = np.meshgrid(
        *(np.arange(b.start, b.stop) - c for b, c in zip(box, (k, j, i), strict=True)), indexing="ij"
    )
    distance = np.sqrt(sum((g * s) ** 2 for g, s in zip(grids, spacing, strict=True)))
    values = volume.voxels[box][distance <= radius_mm + 1e-9].astype(np.float64)
    half = max(multiplier * float(values.std()), min_half_width)
    mean = float(values.mean())
    return mean - half, mean + half


class SeedTool(SliceTool):
    """Click: grow a region from the point (connected threshold) into the selected segment.

    The intensity range is ``value_range`` when given; otherwise automatic from the seed's
    neighbourhood (:func:`neighbourhood_range`: mean ± max(2.5 SD, 20) within 3 mm).
    Growing reads the whole volume (seconds on a 512² CT), so it runs through
    ``context.run_task``. Other segments' voxels are kept (``overwrite=False``): a grown
    region should not swallow organs already segmented.
    """

    name = "seed"
    cursor = Qt.CursorShape.PointingHandCursor

    def __init__(
        self,
        context: ToolContext,
        value_range: tuple[float, float] | None = None,
        *,
        radius_mm: float = 3.0,
        multiplier: float = 2.5,
        min_half_width: float = 20.0,
        overwrite: bool = False,
    ) -> None:
        super().__init__(context)
        self.value_range = value_range
        self.radius_mm = float(radius_mm)
        self.multiplier = float(multiplier)
        self.min_half_width = float(min_half_width)
        self.overwrite = overwrite
        self.last_range: tuple[float, float] | None = None
        self._seed: np.ndarray | None = None

    def press(self, at: SlicePoint) -> bool:
        self._seed = np.asarray(at.lps, dtype=np.float64).copy()
        return True

    def release(self, at: SlicePoint) -> bool:
        seed, self._seed = self._seed, None
        if seed is None:
            return False
        found = self.context.current_volume()
        if found is None:
            self.context.report_error("Grow from seed", SegmentationError("open an image first"))
            return True
        chosen = _selected(self.context, "Grow from seed")
        if chosen is None:
            return True
        volume = found[1]
        segmentation, label = chosen
        if segmentation.labels.shape != volume.voxels.shape or not np.allclose(
            segmentation.ijk_to_lps, volume.ijk_to_lps, atol=1e-4
        ):
            self.context.report_error(
                "Grow from seed",
                SegmentationError("the selected segmentation is not on the image's voxel grid"),
            )
            return True
        try:
            lower, upper = self.value_range or neighbourhood_range(
                volume, seed, self.radius_mm, self.multiplier, self.min_half_width
            )
        except Exception as exc:  # noqa: BLE001 - e.g. a seed outside the volume
            self.context.report_error("Grow from seed", exc)
            return True
        self.last_range = (float(lower), float(upper))

        def work(progress: Progress) -> np.ndarray:
            progress.check()
            return connected_threshold(volume, seed, lower, upper)

        def done(mask: np.ndarray) -> None:
            if segmentation.labels.shape != mask.shape or label not in segmentation.segments:
                return  # the case changed meanwhile
            command = apply_mask(
                segmentation,
                label,
                mask,
                "add",
                overwrite=self.overwrite,
                tool="grow_from_seed",
                parameters={"seed_lps": np.round(seed, 4).tolist(), "lower": lower, "upper": upper},
            )
            if command.is_empty:
                self.context.set_status("Grow from seed: nothing changed")
            elif self.context.execute(command):
                self.context.set_status(f"Grew {command.changed_voxels} voxels in [{lower:.0f}, {upper:.0f}]")

        self.context.run_task("Grow from seed", work, done)
        return True

    def cancel(self) -> None:
        self._seed = None

    def paint(self, painter: QPainter, frame: ViewFrame) -> None:
        if self._seed is not None and frame.distance_to_plane(self._seed) < frame.mm_per_pixel:
            at = frame.to_widget(self._seed)
            painter.setPen(QPen(QColor(60, 255, 120), 2.0))
            painter.drawLine(at - QPointF(6, 0), at + QPointF(6, 0))
            painter.drawLine(at - QPointF(0, 6), at + QPointF(0, 6))
