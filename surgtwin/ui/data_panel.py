"""The data browser: patient → study → series of the last import, the case's objects, findings."""

from __future__ import annotations

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
