"""The segments list: one row per segment of the case's segmentations."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segmentation


def _swatch(color: tuple[float, float, float]) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor.fromRgbF(*[min(max(float(c), 0.0), 1.0) for c in color[:3]]))
    return QIcon(pixmap)


class SegmentsPanel(QListWidget):
    """One row per segment: colour swatch, name, visibility checkbox.

    Ticking a box calls ``on_visibility(segmentation_id, label, visible)``; the window turns
    that into a ``SetSegmentProperties`` command, and the list is rebuilt from the scene.
    """

    def __init__(
        self, on_visibility: Callable[[str, int, bool], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("segments_panel")
        self._on_visibility = on_visibility
        self._filling = False
        self.itemChanged.connect(self._item_changed)

    def show_scene(self, scene: Scene) -> None:
        self._filling = True
        try:
            self.clear()
            for seg_id, segmentation in scene.segmentations.items():
                self._add_rows(seg_id, segmentation)
        finally:
            self._filling = False

    def _add_rows(self, seg_id: str, segmentation: Segmentation) -> None:
        for label, segment in segmentation.segments.items():
            item = QListWidgetItem(_swatch(segment.color), segment.name, self)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if segment.visible else Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, (seg_id, int(label)))
            item.setToolTip(f"{segmentation.name}: label {label}")

    def item_named(self, name: str) -> QListWidgetItem | None:
        for i in range(self.count()):
            if self.item(i).text() == name:
                return self.item(i)
        return None

    def selected(self) -> tuple[str, int] | None:
        """(segmentation id, label) of the current row, or None."""
        item = self.currentItem()
        if item is None:
            return None
        seg_id, label = item.data(Qt.ItemDataRole.UserRole)
        return str(seg_id), int(label)

    def names(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())]

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        seg_id, label = item.data(Qt.ItemDataRole.UserRole)
        self._on_visibility(seg_id, label, item.checkState() == Qt.CheckState.Checked)
