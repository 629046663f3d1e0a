"""A 2D slice view: ``render_slice`` images shown as a pixmap; the wheel changes the slice."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap, QWheelEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import SliceImage, render_slice


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A deep copy of an (h, w, 3) uint8 array as a QImage."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class _ImageLabel(QLabel):
    """Scales its pixmap to fit, keeping the aspect ratio (pixels are square mm)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setStyleSheet("background: black;")

    def set_source(self, pixmap: QPixmap | None) -> None:
        self._source = pixmap
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._source is None:
            self.clear()
            return
        self.setPixmap(
            self._source.scaled(
                self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )


class SliceView(QWidget):
    """One of axial/coronal/sagittal; shows what the window gives it, owns only view settings."""

    slice_changed = Signal(str, int)

    def __init__(self, axis: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = axis
        self.setObjectName(f"slice_view_{axis}")
        self.index: int | None = None
        self.window_level: str = "soft_tissue"
        self.image: SliceImage | None = None
        self._volume: Volume | None = None
        self._segmentation: Segmentation | None = None
        self.caption = QLabel(axis.capitalize())
        self.caption.setStyleSheet("color: #ddd; background: #222; padding: 2px;")
        self.view = _ImageLabel(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)

    def set_data(self, volume: Volume | None, segmentation: Segmentation | None) -> None:
        if volume is not self._volume:
            self.index = None  # a new volume starts in its middle
        self._volume, self._segmentation = volume, segmentation
        self.refresh()

    def set_window_level(self, preset: str) -> None:
        self.window_level = preset
        self.refresh()

    @property
    def slice_count(self) -> int:
        return self.image.geometry.slice_count if self.image is not None else 0

    def set_index(self, index: int) -> None:
        if self.image is None:
            return
        index = max(0, min(int(index), self.slice_count - 1))
        if index != self.index:
            self.index = index
            self.refresh()
            self.slice_changed.emit(self.axis, index)

    def refresh(self) -> None:
        if self._volume is None:
            self.image = None
            self.view.set_source(None)
            self.caption.setText(f"{self.axis.capitalize()} (no image)")
            return
        self.image = render_slice(
            self._volume, self._segmentation, self.axis, self.index, window_level=self.window_level
        )
        self.index = self.image.geometry.index
        self.view.set_source(QPixmap.fromImage(rgb_to_qimage(self.image.rgb)))
        self.caption.setText(
            f"{self.axis.capitalize()}  {self.index + 1}/{self.slice_count}  ({self.window_level})"
        )

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() // 120
        if steps and self.image is not None:
            self.set_index((self.index or 0) + steps)
            event.accept()
        else:
            super().wheelEvent(event)
