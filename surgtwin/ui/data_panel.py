"""The data browser: patient → study → series of the last scan (with previews), the case's objects, findings.

Each series row shows a preview, its modality, image count, dimensions, spacing and its
warnings in words; series that cannot be a volume are greyed with the reason. A double
click on a series, or *Open series*, emits ``series_chosen(uid)``: the window loads it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgtwin.core.dicom import Inventory, Series
from surgtwin.core.findings import Finding
from surgtwin.core.scene import Scene
from surgtwin.ui.slice_view import rgb_to_qimage

SERIES_UID_ROLE = Qt.ItemDataRole.UserRole
LOADABLE_ROLE = Qt.ItemDataRole.UserRole + 1
NAME_ROLE = Qt.ItemDataRole.UserRole + 2
ICON_SIZE = 64  # previews; warning icons stay small (an icon is never scaled above its pixmap)
WARNING_ICON_SIZE = 16
GREY = QColor(128, 128, 128)


def series_details(series: Series) -> str:
    """Modality, image count, rows×columns×slices, pixel spacing, slice step and thickness, in words."""
    text = ", ".join(part for line in _detail_lines(series) for part in line)
    if not series.loadable:
        text += f" — not loadable: {series.not_loadable_reason}"
    return text


def series_label(series: Series) -> str:
    """The series row's own text: its name, then two short lines of details (fits a narrow dock)."""
    lines = [f"Series {series.description or series.uid}"] + [
        " · ".join(line) for line in _detail_lines(series)
    ]
    if not series.loadable:
        lines.append(f"not loadable: {series.not_loadable_reason}")
    return "\n".join(lines)


def _detail_lines(series: Series) -> list[list[str]]:
    first = series.frames[0]
    geometry = series.geometry
    slices = len(geometry.frames) if geometry is not None else len(series.frames)
    what = [
        series.modality or "unknown modality",
        f"{len(series.frames)} images",
        f"{first.rows}×{first.columns}×{slices}",
    ]
    spacing: list[str] = []
    if first.pixel_spacing is not None:
        spacing.append(f"{first.pixel_spacing[0]:.3g}×{first.pixel_spacing[1]:.3g} mm pixels")
    if geometry is not None and slices > 1:
        spacing.append(f"slices every {geometry.step_mm:.3g} mm")
    if first.slice_thickness is not None:
        spacing.append(f"{first.slice_thickness:.3g} mm thick")
    return [what, spacing] if spacing else [what]


def series_warnings(series: Series, findings: list[Finding]) -> list[Finding]:
    """The series' own findings and the import findings about one of its files (each once)."""
    files = set(series.files)
    tied = list(series.findings)
    tied += [f for f in findings if f.path in files and f not in tied]
    return tied


class DataPanel(QWidget):
    """Patient → study → series of the last import, the case's objects, and import findings."""

    series_chosen = Signal(object)  # the series uid (str) the user wants loaded

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("data_panel")
        self.tree = QTreeWidget()
        self.tree.setObjectName("data_tree")
        self.tree.setHeaderLabels(["Data", "Details"])
        self.tree.setColumnWidth(0, 240)
        self.tree.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.tree.setExpandsOnDoubleClick(False)  # a double click opens a series
        self.tree.setWordWrap(True)  # long warnings wrap in a narrow dock
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        self.tree.currentItemChanged.connect(lambda *_: self._update_open_button())
        self.open_button = QPushButton("Open series")
        self.open_button.setObjectName("open_series")
        self.open_button.setToolTip("Load the selected series as the case's image (double click does too)")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self._open_selected)
        self.findings = QListWidget()
        self.findings.setObjectName("findings_list")
        self._icons: dict[str, QIcon] = {}
        self._thumbnail_reasons: dict[str, str] = {}
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree, 3)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("Import warnings"))
        layout.addWidget(self.findings, 1)

    # --- what the window calls -------------------------------------------------
    def show_scene(self, scene: Scene, inventory: Inventory | None, findings: list[Finding]) -> None:
        selected = self.selected_series_uid()
        self.tree.clear()
        if inventory is not None:
            self._add_inventory(inventory, findings, _open_series_uids(scene))
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
        if selected is not None:
            self.select_series(selected)
        self._update_open_button()
        self.findings.clear()
        for finding in findings:
            where = f" ({finding.path})" if finding.path else ""
            QListWidgetItem(f"{finding.severity}: {finding.message}{where}", self.findings)
        if not findings:
            QListWidgetItem("none", self.findings)

    def set_thumbnails(
        self, thumbnails: dict[str, np.ndarray], reasons: dict[str, str] | None = None
    ) -> None:
        """Previews by series uid ((h, w, 3) uint8); ``reasons`` say why some are placeholders."""
        for uid, rgb in thumbnails.items():
            self._icons[uid] = QIcon(QPixmap.fromImage(rgb_to_qimage(np.asarray(rgb))))
        self._thumbnail_reasons.update(reasons or {})
        for uid, item in self._series_items().items():
            self._decorate(item, uid)

    def series_names(self) -> list[str]:
        return [item.data(0, NAME_ROLE) for item in self._series_items().values()]

    def series_item(self, uid: str) -> QTreeWidgetItem | None:
        return self._series_items().get(uid)

    def selected_series_uid(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, SERIES_UID_ROLE) if item is not None else None

    def select_series(self, uid: str) -> bool:
        item = self.series_item(uid)
        if item is not None:
            self.tree.setCurrentItem(item)
        return item is not None

    # --- building the tree -------------------------------------------------------
    def _add_inventory(self, inventory: Inventory, findings: list[Finding], open_uids: set[str]) -> None:
        style = self.style()
        icons = {
            severity: QIcon(style.standardIcon(pixmap).pixmap(WARNING_ICON_SIZE, WARNING_ICON_SIZE))
            for severity, pixmap in (
                ("error", QStyle.StandardPixmap.SP_MessageBoxCritical),
                ("warning", QStyle.StandardPixmap.SP_MessageBoxWarning),
                ("info", QStyle.StandardPixmap.SP_MessageBoxInformation),
            )
        }
        for patient in inventory.patients:
            p_item = QTreeWidgetItem(self.tree, [f"Patient {patient.name or patient.patient_id}", ""])
            for study in patient.studies:
                s_item = QTreeWidgetItem(p_item, [f"Study {study.description or study.uid}", study.date])
                for series in study.series:
                    self._add_series(s_item, series, findings, series.uid in open_uids, icons)
        if inventory.skipped:
            skipped = QTreeWidgetItem(self.tree, ["Files not read", f"{len(inventory.skipped)} files"])
            for entry in inventory.skipped:
                child = QTreeWidgetItem(skipped, [entry.path, entry.reason])
                child.setToolTip(0, f"{entry.path}: {entry.reason}")
                _grey(child)

    def _add_series(
        self,
        parent: QTreeWidgetItem,
        series: Series,
        findings: list[Finding],
        is_open: bool,
        icons: dict[str, QIcon],
    ) -> None:
        details = series_details(series) + (" — open" if is_open else "")
        item = QTreeWidgetItem(parent, [series_label(series), details])
        item.setData(0, NAME_ROLE, series.description or series.uid)
        item.setData(0, SERIES_UID_ROLE, series.uid)
        item.setData(0, LOADABLE_ROLE, series.loadable)
        warnings = series_warnings(series, findings)
        item.setToolTip(0, "\n".join([details] + [f"⚠ {f.message}" for f in warnings]))
        item.setToolTip(1, item.toolTip(0))
        if is_open:
            font = QFont(item.font(0))
            font.setBold(True)
            item.setFont(0, font)
        if not series.loadable:
            _grey(item)
        for finding in warnings:
            where = f" ({finding.path})" if finding.path else ""
            child = QTreeWidgetItem(item, [finding.message + where])
            child.setIcon(0, icons.get(finding.severity, icons["warning"]))
            child.setToolTip(0, f"{finding.severity} [{finding.code}]: {finding.message}{where}")
            child.setFirstColumnSpanned(True)
        self._decorate(item, series.uid)

    def _decorate(self, item: QTreeWidgetItem, uid: str) -> None:
        icon = self._icons.get(uid)
        if icon is not None:
            item.setIcon(0, icon)
        reason = self._thumbnail_reasons.get(uid)
        if reason and "no preview" not in item.toolTip(0):
            item.setToolTip(0, f"{item.toolTip(0)}\nno preview: {reason}")

    def _series_items(self) -> dict[str, QTreeWidgetItem]:
        found: dict[str, QTreeWidgetItem] = {}

        def walk(item: QTreeWidgetItem) -> None:
            uid = item.data(0, SERIES_UID_ROLE)
            if uid is not None:
                found[uid] = item
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return found

    # --- choosing a series ---------------------------------------------------------
    def _loadable_uid(self, item: QTreeWidgetItem | None) -> str | None:
        if item is None or not item.data(0, LOADABLE_ROLE):
            return None
        return item.data(0, SERIES_UID_ROLE)

    def _update_open_button(self) -> None:
        self.open_button.setEnabled(self._loadable_uid(self.tree.currentItem()) is not None)

    def _on_double_click(self, item: QTreeWidgetItem, _column: int) -> None:
        uid = self._loadable_uid(item)
        if uid is not None:
            self.series_chosen.emit(uid)

    def _open_selected(self) -> None:
        uid = self._loadable_uid(self.tree.currentItem())
        if uid is not None:
            self.series_chosen.emit(uid)


def _grey(item: QTreeWidgetItem) -> None:
    for column in range(2):
        item.setForeground(column, QBrush(GREY))


def _open_series_uids(scene: Scene) -> set[str]:
    """The series (parts) the case's volumes were loaded from, to mark them in the tree."""
    return {
        str(volume.provenance.get("series_part"))
        for volume in scene.volumes.values()
        if isinstance(getattr(volume, "provenance", None), dict) and volume.provenance.get("series_part")
    }
