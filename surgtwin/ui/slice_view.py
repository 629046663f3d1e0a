"""A 2D slice view: one axial/coronal/sagittal (or oblique) plane of the case, navigable.

Navigation belongs to the view whatever tool is active: wheel = slice, Ctrl+wheel = zoom
about the cursor, middle-drag or Shift+left-drag = pan, right-drag = window/level
(horizontal: width, vertical: level), R or a middle double-click = reset zoom/pan,
Escape = cancel the tool's gesture. With no tool the left button places the linked
crosshair; with one it goes to the tool (:mod:`surgtwin.ui.view_tools`).

Speed: the volume is resampled only when the slice, the volume, the segmentation or the
plane changes; window/level, overlay opacity and previews re-colour the cached samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import (
    SliceGeometry,
    SliceImage,
    overlay_layers,
    plane_axes,
    plane_geometry,
    resolve_window_level,
    sample_labels,
    sample_values,
    shade,
    slice_geometry,
    slice_index_at,
)
from surgtwin.render.slices import LABEL_COLOR, VIEW_AXES, orientation_labels
from surgtwin.render.window_level import WindowLevel
from surgtwin.ui.view_tools import OverlayPainter, Preview, SlicePoint, SliceTool, ViewFrame

logger = logging.getLogger(__name__)

ZOOM_RANGE = (0.25, 40.0)
ZOOM_STEP = 1.25  # per wheel notch
CROSSHAIR_COLOR = QColor(80, 220, 255)
# Keys the focused view keeps even if a window shortcut uses them.
VIEW_KEYS = (
    Qt.Key.Key_Escape,
    Qt.Key.Key_R,
    Qt.Key.Key_Up,
    Qt.Key.Key_Down,
    Qt.Key.Key_PageUp,
    Qt.Key.Key_PageDown,
)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A deep copy of an (h, w, 3) uint8 array as a QImage."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


@dataclass(frozen=True)
class ViewPlane:
    """An oblique plane shown instead of the view's standard axis (e.g. a trajectory reslice)."""

    origin: np.ndarray  # LPS point at the image centre; the wheel moves it along the normal
    column_dir: np.ndarray  # unit, image left -> right
    row_dir: np.ndarray  # unit, image top -> bottom
    normal: np.ndarray  # column_dir x row_dir
    title: str


class _Canvas(QWidget):
    """Paints the slice at the view's zoom/pan and hands input to the view."""

    def __init__(self, owner: SliceView) -> None:
        super().__init__(owner)
        self._owner = owner
        self.qimage: QImage | None = None
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMouseTracking(True)  # the brush circle follows the cursor
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def pixmap(self) -> QPixmap:
        """The full-resolution slice image (null before any is shown)."""
        return QPixmap() if self.qimage is None else QPixmap.fromImage(self.qimage)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        try:
            self._owner._paint(painter)
        finally:
            painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self._owner._mouse_press(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._owner._mouse_move(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._owner._mouse_release(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton:
            self._owner.reset_view()
        else:
            self._owner._mouse_press(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        if not self._owner._wheel(event):
            super().wheelEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in VIEW_KEYS:
            event.accept()  # deliver it as a key press here, not as a window shortcut
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if not self._owner._key(event):
            super().keyPressEvent(event)


class SliceView(QWidget):
    """One of axial/coronal/sagittal; shows what the window gives it, owns only view settings."""

    slice_changed = Signal(str, int)
    crosshair_moved = Signal(object)  # np.ndarray (3,) LPS mm
    window_changed = Signal(float, float)  # width, level after a right-drag

    def __init__(self, axis: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if axis not in VIEW_AXES:
            raise ValueError(f"unknown slice axis {axis!r} (axial, coronal or sagittal)")
        self.axis = axis
        self.setObjectName(f"slice_view_{axis}")
        self.index: int | None = None
        self.window_level: WindowLevel = "soft_tissue"
        self.overlay_opacity = 0.4
        self.image: SliceImage | None = None
        self.tool: SliceTool | None = None
        self._volume: Volume | None = None
        self._segmentation: Segmentation | None = None
        self._plane: ViewPlane | None = None
        self._plane_half_mm = 0.0
        self._axis_index: int | None = None  # the standard slice to return to from a plane
        self._crosshair: np.ndarray | None = None
        self._preview: Preview | None = None
        self._overlays: list[OverlayPainter] = []
        # Cached samples of the current plane (see the module docstring).
        self._geometry: SliceGeometry | None = None
        self._values: np.ndarray | None = None
        self._label_map: np.ndarray | None = None
        self._layers: tuple[np.ndarray, np.ndarray] | None = None
        self._base_rgb: np.ndarray | None = None
        self._voxel_lookup: np.ndarray | None = None  # flat volume index per pixel (-1 outside)
        self._zoom = 1.0
        self._pan = QPointF(0.0, 0.0)
        self._drag: tuple | None = None

        self.caption = QLabel(axis.capitalize())
        self.caption.setStyleSheet("color: #ddd; background: #222; padding: 2px;")
        self.view = _Canvas(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)

    # --- data ---------------------------------------------------------------------
    def set_data(self, volume: Volume | None, segmentation: Segmentation | None) -> None:
        if volume is not self._volume:
            # A new volume starts in its middle, unzoomed, on the standard plane.
            self.index = self._axis_index = None
            self._plane = None
            self._crosshair = None
            self._zoom, self._pan = 1.0, QPointF(0.0, 0.0)
            self._volume, self._segmentation = volume, segmentation
            self.refresh()
            return
        # Same volume: only the labels (edited in place) or segment colours may have changed.
        self._segmentation = segmentation
        if self._values is None:
            self.refresh()
        else:
            self._resample_labels()
            self._compose()

    @property
    def slice_count(self) -> int:
        return self.image.geometry.slice_count if self.image is not None else 0

    def set_index(self, index: int) -> None:
        if self.image is None or self.index is None:
            return
        low, high = 0, self.slice_count - 1
        if self._plane is not None:  # an off-volume plane may still move back inwards
            low, high = min(low, self.index), max(high, self.index)
        index = max(low, min(int(index), high))
        if index == self.index:
            return
        if self._plane is not None:
            step = float(self._volume.spacing.min())
            plane = self._plane
            origin = plane.origin + (index - self.index) * step * plane.normal
            self._plane = ViewPlane(origin, plane.column_dir, plane.row_dir, plane.normal, plane.title)
        self.index = index
        self.refresh()
        self.slice_changed.emit(self.axis, self.index)

    def refresh(self) -> None:
        """Resample the current plane (volume and labels) and redraw."""
        if self._volume is None:
            self.image = None
            self._geometry = self._values = self._label_map = self._base_rgb = None
            self._voxel_lookup = None
            self.view.qimage = None
            self.caption.setText(f"{self.axis.capitalize()} (no image)")
            self.view.update()
            return
        if self._plane is not None:
            plane = self._plane
            self._geometry = plane_geometry(
                self._volume, plane.origin, plane.column_dir, plane.row_dir, half_size_mm=self._plane_half_mm
            )
        else:
            self._geometry = slice_geometry(self._volume, self.axis, self.index)
        self.index = self._geometry.index
        self._values = sample_values(self._volume, self._geometry)
        self._voxel_lookup = None
        self._resample_labels()
        self._compose()

    def _resample_labels(self) -> None:
        seg = self._segmentation
        self._label_map = (
            None if seg is None or self._geometry is None else sample_labels(seg, self._geometry)
        )
        self._layers = overlay_layers(seg, self._label_map, self.overlay_opacity)

    def _compose(self) -> None:
        """Window/level and overlay on the cached samples, then the preview."""
        if self._values is None:
            return
        width, level = resolve_window_level(self.window_level, self._values)
        self._base_rgb = shade(self._values, width, level, self._layers)
        self._show(width, level)

    def _show(self, width: float, level: float) -> None:
        geometry = self._geometry
        assert geometry is not None and self._base_rgb is not None and self._values is not None
        rgb = self._with_preview(self._base_rgb)
        name = "reslice" if self._plane is not None else self.axis
        labels = orientation_labels(geometry.column_step, geometry.row_step)
        self.image = SliceImage(rgb, labels, geometry, self._values, self._label_map, (width, level), name)
        self.view.qimage = rgb_to_qimage(rgb)
        window = self.window_level if isinstance(self.window_level, str) else f"W {width:.0f} L {level:.0f}"
        if self._plane is not None:
            self.caption.setText(f"{self._plane.title}  {self.index + 1}/{self.slice_count}  ({window})")
        else:
            self.caption.setText(f"{self.axis.capitalize()}  {self.index + 1}/{self.slice_count}  ({window})")
        self.view.update()

    # --- window/level, overlay, preview -----------------------------------------------
    def set_window_level(self, preset: WindowLevel) -> None:
        """A preset name, ``(width, level)`` or ``None`` (automatic); no resampling."""
        if preset is not None:
            resolve_window_level(preset)  # a bad preset fails before anything changes
        self.window_level = preset
        self._compose()

    @property
    def window(self) -> tuple[float, float] | None:
        """The (width, level) in use, in the volume's units (HU for CT)."""
        return self.image.window_level if self.image is not None else None

    def set_overlay_opacity(self, opacity: float) -> None:
        opacity = float(opacity)
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"overlay opacity must be in 0..1, got {opacity!r}")
        self.overlay_opacity = opacity
        self._layers = overlay_layers(self._segmentation, self._label_map, opacity)
        self._compose()

    def set_preview(self, preview: Preview | None) -> None:
        """Colour the preview over the cached slice (no resampling of the volume)."""
        if preview is not None and preview.mask is not None and self._volume is not None:
            if preview.mask.shape != self._volume.voxels.shape:
                raise ValueError(
                    f"a preview mask of shape {preview.mask.shape} is not on the volume's grid "
                    f"{self._volume.voxels.shape}"
                )
        self._preview = preview
        if self.image is not None:
            self._show(*self.image.window_level)

    @property
    def preview(self) -> Preview | None:
        return self._preview

    def preview_pixels(self) -> np.ndarray | None:
        """Which pixels the current preview colours ((rows, columns) bool), or None."""
        preview, values = self._preview, self._values
        if preview is None or values is None:
            return None
        selected = np.isfinite(values)
        if preview.value_range is not None:
            low, high = preview.value_range
            with np.errstate(invalid="ignore"):
                selected &= (values >= low) & (values <= high)
        if preview.mask is not None:
            lookup = self._lookup()
            inside = lookup >= 0
            hit = np.zeros(values.shape, dtype=bool)
            hit[inside] = preview.mask.reshape(-1)[lookup[inside]]
            selected &= hit
        return selected

    def _lookup(self) -> np.ndarray:
        """Nearest volume voxel (flat index, -1 outside) of each pixel; once per plane."""
        if self._voxel_lookup is None:
            assert self._geometry is not None and self._volume is not None
            voxels = self._volume.voxels
            ijk = self._volume.lps_to_index(self._geometry.lps_points().reshape(-1, 3))
            kji = np.rint(ijk[:, ::-1]).astype(np.int64)
            inside = np.all((kji >= 0) & (kji < np.array(voxels.shape)), axis=1)
            flat = np.full(len(kji), -1, dtype=np.int64)
            flat[inside] = np.ravel_multi_index(tuple(kji[inside].T), voxels.shape)
            self._voxel_lookup = flat.reshape(self._geometry.shape)
        return self._voxel_lookup

    def _with_preview(self, rgb: np.ndarray) -> np.ndarray:
        selected = self.preview_pixels()
        if selected is None or not selected.any():
            return rgb
        preview = self._preview
        assert preview is not None
        out = rgb.copy()
        colour = np.asarray(preview.color, dtype=np.float32) * 255.0
        mixed = out[selected].astype(np.float32) * (1.0 - preview.opacity) + colour * preview.opacity
        out[selected] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        return out

    # --- oblique planes ------------------------------------------------------------
    def set_plane(
        self, origin_lps: np.ndarray, column_dir: np.ndarray, row_dir: np.ndarray, title: str
    ) -> None:
        """Show an oblique plane centred on ``origin_lps`` (the wheel moves it along its normal)."""
        if self._volume is None:
            raise ValueError("open an image before showing a plane")
        column, row, normal = plane_axes(column_dir, row_dir)
        origin = np.asarray(origin_lps, dtype=np.float64).reshape(3)
        full = plane_geometry(self._volume, origin, column, row)
        self._plane_half_mm = (full.shape[1] - 1) / 2 * float(np.linalg.norm(full.column_step))
        if self._plane is None:
            self._axis_index = self.index
        self._plane = ViewPlane(origin, column, row, normal, str(title))
        self.reset_view(redraw=False)
        self.refresh()

    def clear_plane(self) -> None:
        """Back to the standard axis view (at the crosshair's slice when there is one)."""
        if self._plane is None:
            return
        self._plane = None
        self.index = self._axis_index
        if self._crosshair is not None and self._volume is not None:
            self.index = slice_index_at(self._volume, self.axis, self._crosshair)
        self.reset_view(redraw=False)
        self.refresh()

    @property
    def plane(self) -> ViewPlane | None:
        return self._plane

    @property
    def normal(self) -> np.ndarray:
        return self._plane.normal.copy() if self._plane is not None else VIEW_AXES[self.axis][2].copy()

    # --- crosshair ------------------------------------------------------------------
    @property
    def crosshair(self) -> np.ndarray | None:
        return None if self._crosshair is None else self._crosshair.copy()

    def set_crosshair(self, lps: np.ndarray | None) -> None:
        """Go to the slice nearest the point and draw the crosshair through it."""
        if lps is None:
            self._crosshair = None
            self.view.update()
            return
        point = np.asarray(lps, dtype=np.float64).reshape(3)
        self._crosshair = point.copy()
        if self._volume is not None and self.image is not None:
            if self._plane is not None:
                offset = float((point - self._plane.origin) @ self._plane.normal)
                self.set_index(self.index + int(np.rint(offset / float(self._volume.spacing.min()))))
            else:
                self.set_index(slice_index_at(self._volume, self.axis, point))
        self.view.update()

    # --- tools and overlays ---------------------------------------------------------
    def set_tool(self, tool: SliceTool | None) -> None:
        if self.tool is not None and self.tool is not tool:
            self.tool.cancel()
        self.tool = tool
        self._drag = None
        self.view.setCursor(tool.cursor if tool is not None else Qt.CursorShape.ArrowCursor)
        self.view.update()

    def add_overlay(self, painter: OverlayPainter) -> None:
        self._overlays.append(painter)
        self.view.update()

    def remove_overlay(self, painter: OverlayPainter) -> None:
        if painter in self._overlays:
            self._overlays.remove(painter)
            self.view.update()

    def frame(self) -> ViewFrame | None:
        """What overlays and tools draw with, for the current plane, zoom and pan."""
        if self._geometry is None:
            return None
        scale = self._placement()[0]
        return ViewFrame(
            axis="reslice" if self._plane is not None else self.axis,
            to_widget=self.to_widget,
            plane_point=self._geometry.origin.copy(),
            normal=self.normal,
            mm_per_pixel=float(np.linalg.norm(self._geometry.column_step)) / scale,
        )

    # --- widget <-> patient mapping (widget = the image widget ``view``) ---------------
    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def pan(self) -> QPointF:
        return QPointF(self._pan)

    def _placement(self) -> tuple[float, float, float]:
        """(widget pixels per image pixel, x and y of the image's top-left corner)."""
        geometry = self._geometry
        if geometry is None:
            return 1.0, 0.0, 0.0
        rows, cols = geometry.shape
        width, height = max(self.view.width(), 1), max(self.view.height(), 1)
        scale = max(min(width / cols, height / rows) * self._zoom, 1e-6)
        return (
            scale,
            (width - cols * scale) / 2 + self._pan.x(),
            (height - rows * scale) / 2 + self._pan.y(),
        )

    def to_widget(self, lps: np.ndarray) -> QPointF:
        """Where an LPS point (projected on the plane) is drawn in the image widget."""
        geometry = self._geometry
        if geometry is None:
            return QPointF()
        offset = np.asarray(lps, dtype=np.float64).reshape(3) - geometry.origin
        col = float(offset @ geometry.column_step / (geometry.column_step @ geometry.column_step))
        row = float(offset @ geometry.row_step / (geometry.row_step @ geometry.row_step))
        scale, x0, y0 = self._placement()
        return QPointF(x0 + (col + 0.5) * scale, y0 + (row + 0.5) * scale)

    def to_lps(self, point: QPointF) -> np.ndarray:
        """The LPS point on the plane under an image-widget position."""
        geometry = self._geometry
        if geometry is None:
            return np.full(3, np.nan)
        scale, x0, y0 = self._placement()
        col = (point.x() - x0) / scale - 0.5
        row = (point.y() - y0) / scale - 0.5
        return geometry.origin + col * geometry.column_step + row * geometry.row_step

    def reset_view(self, redraw: bool = True) -> None:
        self._zoom, self._pan = 1.0, QPointF(0.0, 0.0)
        if redraw:
            self.view.update()

    def zoom_about(self, position: QPointF, factor: float) -> None:
        """Zoom keeping the point under ``position`` where it is."""
        scale, x0, y0 = self._placement()
        u, v = (position.x() - x0) / scale, (position.y() - y0) / scale
        self._zoom = float(np.clip(self._zoom * factor, *ZOOM_RANGE))
        scale, x0, y0 = self._placement()
        self._pan += QPointF(position.x() - (x0 + u * scale), position.y() - (y0 + v * scale))
        self.view.update()

    # --- input ----------------------------------------------------------------------
    def _slice_point(self, position: QPointF, modifiers: Qt.KeyboardModifier) -> SlicePoint:
        return SlicePoint(
            self.to_lps(position), "reslice" if self._plane is not None else self.axis, self.normal, modifiers
        )

    def _mouse_press(self, event: QMouseEvent) -> None:
        if self.image is None:
            return
        position, button = event.position(), event.button()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and shift):
            self._drag = ("pan", position, QPointF(self._pan))
        elif button == Qt.MouseButton.RightButton:
            self._drag = ("window", position, self.image.window_level)
        elif button == Qt.MouseButton.LeftButton and self.tool is not None:
            self._drag = ("tool",)
            self.tool.press(self._slice_point(position, event.modifiers()))
        elif button == Qt.MouseButton.LeftButton:
            self._drag = ("crosshair",)
            self._place_crosshair(position)
        event.accept()

    def _mouse_move(self, event: QMouseEvent) -> None:
        if self.image is None:
            return
        position = event.position()
        drag = self._drag
        if drag is not None and drag[0] == "pan":
            self._pan = drag[2] + (position - drag[1])
            self.view.update()
        elif drag is not None and drag[0] == "window":
            delta = position - drag[1]
            width, level = drag[2]
            sensitivity = max(1.0, width / 256.0)  # units per pixel: finer for narrow windows
            new_width = max(1.0, width + delta.x() * sensitivity)
            new_level = level + delta.y() * sensitivity
            self.window_level = (new_width, new_level)
            self._compose()
            self.window_changed.emit(new_width, new_level)
        elif drag is not None and drag[0] == "crosshair":
            self._place_crosshair(position)
        elif self.tool is not None:
            self.tool.move(self._slice_point(position, event.modifiers()), drag is not None)
        event.accept()

    def _mouse_release(self, event: QMouseEvent) -> None:
        drag, self._drag = self._drag, None
        if drag is not None and drag[0] == "tool" and self.tool is not None and self.image is not None:
            self.tool.release(self._slice_point(event.position(), event.modifiers()))
        event.accept()

    def _place_crosshair(self, position: QPointF) -> None:
        point = self.to_lps(position)
        self.set_crosshair(point)
        self.crosshair_moved.emit(point.copy())

    def _wheel(self, event: QWheelEvent) -> bool:
        steps = int(event.angleDelta().y() / 120)
        if not steps or self.image is None:
            return False
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_about(event.position(), ZOOM_STEP**steps)
        else:
            self.set_index((self.index or 0) + steps)
        event.accept()
        return True

    def _key(self, event: QKeyEvent) -> bool:
        key = event.key()
        if key == Qt.Key.Key_Escape:
            self._drag = None
            if self.tool is not None:
                self.tool.cancel()
            self.view.update()
        elif key == Qt.Key.Key_R:
            self.reset_view()
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_PageUp) and self.image is not None:
            self.set_index(self.index + 1)
        elif key in (Qt.Key.Key_Down, Qt.Key.Key_PageDown) and self.image is not None:
            self.set_index(self.index - 1)
        else:
            return False
        event.accept()
        return True

    # --- painting --------------------------------------------------------------------
    def _paint(self, painter: QPainter) -> None:
        painter.fillRect(self.view.rect(), Qt.GlobalColor.black)
        qimage, geometry = self.view.qimage, self._geometry
        if qimage is None or geometry is None:
            return
        scale, x0, y0 = self._placement()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 4.0)
        rows, cols = geometry.shape
        painter.drawImage(QRectF(x0, y0, cols * scale, rows * scale), qimage)
        self._paint_crosshair(painter)  # crisp one-pixel lines
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        frame = self.frame()
        assert frame is not None
        for overlay in list(self._overlays):
            try:
                overlay(painter, frame)
            except Exception:  # one broken overlay must not blank the view
                logger.exception("a slice overlay failed to draw")
        if self.tool is not None:
            try:
                self.tool.paint(painter, frame)
            except Exception:
                logger.exception("the %s tool failed to draw", self.tool.name)
        self._paint_letters(painter)

    def _paint_crosshair(self, painter: QPainter) -> None:
        if self._crosshair is None:
            return
        at = self.to_widget(self._crosshair)
        painter.setPen(QPen(CROSSHAIR_COLOR, 1.0, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(0, at.y()), QPointF(self.view.width(), at.y()))
        painter.drawLine(QPointF(at.x(), 0), QPointF(at.x(), self.view.height()))

    def _paint_letters(self, painter: QPainter) -> None:
        """Orientation letters at the widget's edges, where they stay when zoomed or panned."""
        if self.image is None:
            return
        painter.setPen(QColor(*LABEL_COLOR))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        box = QRectF(self.view.rect()).adjusted(4, 2, -4, -2)
        flags = {
            "left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            "right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            "top": Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter,
            "bottom": Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter,
        }
        for edge, text in self.image.labels.items():
            painter.drawText(box, flags[edge], text)
