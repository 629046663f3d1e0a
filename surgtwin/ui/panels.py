"""Side panels: the data browser (series, objects, findings) and the segments list."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgtwin.core.dicom import Inventory
from surgtwin.core.findings import Finding
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segmentation


class DataPanel(QWidget):
    """Patient → study → series of the last import, the case's objects, and import findings."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("data_panel")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Data", "Details"])
        self.tree.setColumnWidth(0, 220)
        self.findings = QListWidget()
        self.findings.setObjectName("findings_list")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree, 3)
        layout.addWidget(QLabel("Import warnings"))
        layout.addWidget(self.findings, 1)

    def show_scene(self, scene: Scene, inventory: Inventory | None, findings: list[Finding]) -> None:
        self.tree.clear()
        if inventory is not None:
            for patient in inventory.patients:
                p_item = QTreeWidgetItem(self.tree, [f"Patient {patient.name or patient.patient_id}", ""])
                for study in patient.studies:
                    s_item = QTreeWidgetItem(p_item, [f"Study {study.description or study.uid}", study.date])
                    for series in study.series:
                        detail = f"{series.modality}, {len(series.frames)} images"
                        if not series.loadable:
                            detail += f" — not loadable: {series.not_loadable_reason}"
                        QTreeWidgetItem(s_item, [f"Series {series.description or series.uid}", detail])
        objects = QTreeWidgetItem(self.tree, [f"Case: {scene.title or 'untitled'}", f"{len(scene)} objects"])
        for object_id in scene.ids():
            obj = scene.get(object_id)
            kind = scene.kind_of(object_id)
            detail = kind
            shape = getattr(obj, "shape_ijk", None)
            if shape is not None:
                detail = f"{kind} {'x'.join(str(n) for n in shape)}"
            QTreeWidgetItem(objects, [getattr(obj, "name", object_id) or object_id, detail])
        self.tree.expandAll()
        self.findings.clear()
        for finding in findings:
            where = f" ({finding.path})" if finding.path else ""
            QListWidgetItem(f"{finding.severity}: {finding.message}{where}", self.findings)
        if not findings:
            QListWidgetItem("none", self.findings)

    def series_names(self) -> list[str]:
        names: list[str] = []

        def walk(item: QTreeWidgetItem) -> None:
            if item.text(0).startswith("Series "):
                names.append(item.text(0)[len("Series ") :])
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return names


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

    def names(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())]

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        seg_id, label = item.data(Qt.ItemDataRole.UserRole)
        self._on_visibility(seg_id, label, item.checkState() == Qt.CheckState.Checked)
