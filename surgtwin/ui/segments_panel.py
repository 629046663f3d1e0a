"""The segments panel: one row per segment (visibility, name, colour), opacity, add and delete.

Every change is a core command run through ``context.execute`` (one gesture = one undo
step); the rows are rebuilt from the scene by :meth:`SegmentsPanel.show_scene`, which the
window calls after each scene change, and the selected segment stays selected across it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgtwin.core.commands import Command, CommandGroup
from surgtwin.core.errors import CommandError, SegmentationError
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.colors import default_color
from surgtwin.core.segmentation.commands import (
    AddSegment,
    AddSegmentation,
    RemoveSegment,
    SetSegmentProperties,
)
from surgtwin.core.segmentation.model import Segment, Segmentation, unique_name
from surgtwin.ui.view_tools import ToolContext

Key = tuple[str, int]  # (segmentation id, label)

NAME_COLUMN, COLOR_COLUMN = 0, 1


def _qcolor(color: tuple[float, float, float]) -> QColor:
    return QColor.fromRgbF(*[min(max(float(c), 0.0), 1.0) for c in color[:3]])


def _swatch(color: tuple[float, float, float]) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(_qcolor(color))
    return QIcon(pixmap)


class _OpacityDrag:
    """A slider drag in progress: the opacity to restore before recording the one command."""

    def __init__(self, scene: Scene, key: Key, original: float) -> None:
        self.scene, self.key, self.original = scene, key, original


class SegmentsPanel(QWidget):
    """Rows of [visibility checkbox + editable name | colour swatch]; below them the
    selected segment's opacity slider and the Add / Delete buttons.

    Opacity while dragging: each slider step applies a ``SetSegmentProperties`` to the
    scene *without* recording it (a preview, so slices and 3D follow live); on release
    the original opacity is put back the same way and one recorded command sets the
    final value, so one drag is one undo step that restores the opacity before the drag.
    """

    selection_changed = Signal(object)  # (segmentation id, label) or None

    def __init__(self, context: ToolContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("segments_panel")
        self.context = context
        self._scene: Scene | None = None
        self._filling = False
        self._pending: Key | None = None  # select this row once it appears (after Add)
        self._in_item_change = False
        self._emitted: Key | None = None
        self._drag: _OpacityDrag | None = None
        self.color_dialog: QColorDialog | None = None

        self.table = QTableWidget(0, 2)
        self.table.setObjectName("segments_table")
        self.table.setHorizontalHeaderLabels(["Segment", "Colour"])
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(NAME_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COLOR_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._selection_moved)
        self.table.cellClicked.connect(self._cell_clicked)

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setObjectName("segment_opacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setPageStep(10)
        self.opacity_label = QLabel("–")
        self.opacity_label.setMinimumWidth(40)
        self.opacity_slider.sliderPressed.connect(self._drag_started)
        self.opacity_slider.valueChanged.connect(self._opacity_moved)
        self.opacity_slider.sliderReleased.connect(self._drag_finished)

        self.add_button = QPushButton("Add")
        self.add_button.setObjectName("add_segment")
        self.add_button.setToolTip("Add an empty segment (a new segmentation if the case has none)")
        self.add_button.clicked.connect(self.add_segment)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setObjectName("delete_segment")
        self.delete_button.clicked.connect(self.delete_selected)

        opacity_row = QHBoxLayout()
        opacity_row.addWidget(QLabel("Opacity"))
        opacity_row.addWidget(self.opacity_slider, 1)
        opacity_row.addWidget(self.opacity_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table, 1)
        layout.addLayout(opacity_row)
        layout.addLayout(buttons)
        self._update_controls()

    # --- showing the scene ------------------------------------------------------------
    def show_scene(self, scene: Scene) -> None:
        """Rebuild the rows from ``scene``; the selected segment stays selected."""
        if self._in_item_change:  # never delete the item whose signal is running
            QTimer.singleShot(0, lambda: self.show_scene(scene))
            return
        same_scene = scene is self._scene
        keep = self._pending or (self.selected() if same_scene else None)
        row_before = self.table.currentRow()
        self._scene = scene
        self._filling = True
        try:
            self.table.setRowCount(0)
            for seg_id, segmentation in scene.segmentations.items():
                self._add_rows(seg_id, segmentation)
            row = self._row_of(keep) if keep is not None else None
            if row is not None:
                self._pending = None
            elif keep is not None and self._pending is None and self.table.rowCount():
                row = min(max(row_before, 0), self.table.rowCount() - 1)  # it was deleted: the next
            if row is not None:
                self.table.setCurrentCell(row, NAME_COLUMN)
        finally:
            self._filling = False
        self._update_controls()
        self._emit_selection()

    def _add_rows(self, seg_id: str, segmentation: Segmentation) -> None:
        for label, segment in segmentation.segments.items():
            row = self.table.rowCount()
            self.table.insertRow(row)
            name = QTableWidgetItem(segment.name)
            name.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsEditable
                | Qt.ItemFlag.ItemIsUserCheckable
            )
            name.setCheckState(Qt.CheckState.Checked if segment.visible else Qt.CheckState.Unchecked)
            name.setData(Qt.ItemDataRole.UserRole, (seg_id, int(label)))
            name.setToolTip(f"{segmentation.name}: label {label} — tick to show, double-click to rename")
            swatch = QTableWidgetItem(_swatch(segment.color), "")
            swatch.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            swatch.setToolTip("Click to change the colour")
            self.table.setItem(row, NAME_COLUMN, name)
            self.table.setItem(row, COLOR_COLUMN, swatch)

    def _row_of(self, key: Key) -> int | None:
        for row in range(self.table.rowCount()):
            if self._key_of(row) == key:
                return row
        return None

    def _key_of(self, row: int) -> Key | None:
        item = self.table.item(row, NAME_COLUMN)
        if item is None:
            return None
        seg_id, label = item.data(Qt.ItemDataRole.UserRole)
        return str(seg_id), int(label)

    def _segment(self, key: Key | None) -> Segment | None:
        if key is None or self._scene is None:
            return None
        segmentation = self._scene.segmentations.get(key[0])
        return None if segmentation is None else segmentation.segments.get(key[1])

    # --- what the window and tests use --------------------------------------------------
    def count(self) -> int:
        return self.table.rowCount()

    def item_named(self, name: str) -> QTableWidgetItem | None:
        """The row's name item (its check state is the segment's visibility)."""
        for row in range(self.table.rowCount()):
            item = self.table.item(row, NAME_COLUMN)
            if item is not None and item.text() == name:
                return item
        return None

    def names(self) -> list[str]:
        return [self.table.item(row, NAME_COLUMN).text() for row in range(self.table.rowCount())]

    def selected(self) -> Key | None:
        """(segmentation id, label) of the current row, or None."""
        row = self.table.currentRow()
        return None if row < 0 else self._key_of(row)

    def select(self, key: Key) -> bool:
        """Make ``key``'s row the current one; False if it has no row."""
        row = self._row_of(key)
        if row is None:
            return False
        self.table.setCurrentCell(row, NAME_COLUMN)
        return True

    # --- selection ----------------------------------------------------------------
    def _selection_moved(self) -> None:
        if self._filling:
            return
        self._update_controls()
        self._emit_selection()

    def _emit_selection(self) -> None:
        key = self.selected()
        if key != self._emitted:
            self._emitted = key
            self.selection_changed.emit(key)

    def _update_controls(self) -> None:
        segment = self._segment(self.selected())
        why = "" if segment is not None else "Select a segment first"
        self.delete_button.setEnabled(segment is not None)
        self.delete_button.setToolTip(why or "Delete the selected segment and its voxels (undo restores)")
        self.opacity_slider.setEnabled(segment is not None)
        self.opacity_slider.setToolTip(why or "Opacity of the selected segment (slices and 3D)")
        if segment is not None and not self.opacity_slider.isSliderDown():
            self._filling = True
            try:
                self.opacity_slider.setValue(round(segment.opacity * 100))
            finally:
                self._filling = False
        self.opacity_label.setText(f"{self.opacity_slider.value()} %" if segment is not None else "–")

    # --- visibility and rename ------------------------------------------------------------
    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != NAME_COLUMN:
            return
        self._in_item_change = True
        try:
            self._apply_item(item)
        finally:
            self._in_item_change = False

    def _apply_item(self, item: QTableWidgetItem) -> None:
        key = self._key_of(item.row())
        segment = self._segment(key)
        if key is None or segment is None:
            return
        visible = item.checkState() == Qt.CheckState.Checked
        if visible != segment.visible:
            self.context.execute(SetSegmentProperties(key[0], key[1], visible=visible))
        name = item.text().strip()
        if name != segment.name:
            self.rename(key, name)
            if segment.name != name:  # refused: the row shows the name the case still has
                self._set_text(item, segment.name)

    def _set_text(self, item: QTableWidgetItem, text: str) -> None:
        self._filling = True
        try:
            item.setText(text)
        finally:
            self._filling = False

    def rename(self, key: Key, name: str) -> bool:
        try:
            command = SetSegmentProperties(key[0], key[1], name=name)
        except (CommandError, SegmentationError) as exc:
            self.context.report_error("Rename segment", exc)
            return False
        return self.context.execute(command)

    # --- colour ------------------------------------------------------------------
    def _cell_clicked(self, row: int, column: int) -> None:
        if column == COLOR_COLUMN:
            key = self._key_of(row)
            if key is not None:
                self.choose_color(key)

    def choose_color(self, key: Key) -> None:
        """Open a (non-blocking) colour dialog; choosing a colour runs one command."""
        segment = self._segment(key)
        if segment is None:
            return
        if self.color_dialog is not None:
            self.color_dialog.close()
        dialog = QColorDialog(_qcolor(segment.color), self)
        dialog.setObjectName("segment_color_dialog")
        dialog.setWindowTitle(f"Colour of {segment.name}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.colorSelected.connect(lambda color: self.set_color(key, color))
        dialog.destroyed.connect(lambda _obj=None: self._dialog_gone(dialog))
        self.color_dialog = dialog
        dialog.open()

    def _dialog_gone(self, dialog: QColorDialog) -> None:
        if self.color_dialog is dialog:
            self.color_dialog = None

    def set_color(self, key: Key, color: QColor) -> bool:
        segment = self._segment(key)
        if segment is None or not color.isValid():
            return False
        rgb = (color.redF(), color.greenF(), color.blueF())
        if _qcolor(segment.color) == color:
            return False
        return self.context.execute(SetSegmentProperties(key[0], key[1], color=rgb))

    # --- opacity ------------------------------------------------------------------
    def _drag_started(self) -> None:
        key = self.selected()
        segment = self._segment(key)
        if key is not None and segment is not None and self._scene is not None:
            self._drag = _OpacityDrag(self._scene, key, segment.opacity)

    def _opacity_moved(self, value: int) -> None:
        if self._filling:
            return
        self.opacity_label.setText(f"{value} %")
        key = self.selected()
        segment = self._segment(key)
        if key is None or segment is None:
            return
        opacity = value / 100.0
        if self._drag is not None and self.opacity_slider.isSliderDown():
            self._preview_opacity(self._drag, opacity)
        elif self._drag is None and abs(segment.opacity - opacity) > 1e-9:
            self.context.execute(SetSegmentProperties(key[0], key[1], opacity=opacity))  # keys, clicks

    def _preview_opacity(self, drag: _OpacityDrag, opacity: float) -> None:
        try:  # not recorded: replaced by one recorded command on release
            SetSegmentProperties(drag.key[0], drag.key[1], opacity=opacity).apply(drag.scene)
        except CommandError:
            self._drag = None  # the segment went away meanwhile

    def _drag_finished(self) -> None:
        drag, self._drag = self._drag, None
        if drag is None:
            return
        final = self.opacity_slider.value() / 100.0
        try:
            SetSegmentProperties(drag.key[0], drag.key[1], opacity=drag.original).apply(drag.scene)
        except CommandError:
            return
        if drag.scene is self.context.scene and abs(final - drag.original) > 1e-9:
            self.context.execute(SetSegmentProperties(drag.key[0], drag.key[1], opacity=final))

    # --- add and delete ------------------------------------------------------------
    def add_segment(self) -> bool:
        """Add an empty segment (first a segmentation on the volume's grid if there is none):
        one undo step either way. The new segment becomes the selected one."""
        scene = self.context.scene
        found = self.context.current_segmentation()
        if found is None:
            volume = self.context.current_volume()
            if volume is None:
                self.context.report_error(
                    "Add segment", SegmentationError("open an image first: segments are drawn on its grid")
                )
                return False
            volume_id, image = volume
            segmentation = Segmentation.empty_like(image, reference_volume_id=volume_id)
            seg_id = scene.new_id("segmentation")
            name = unique_name("Segment_1", [])
            add = AddSegment(segmentation, name, default_color(name))
            command: Command = CommandGroup(
                [AddSegmentation(segmentation, seg_id), add], label=f"add segment {name!r}"
            )
        else:
            seg_id, segmentation = found
            taken = [s.name for s in segmentation.segments.values()]
            name = unique_name(f"Segment_{len(taken) + 1}", taken)
            add = AddSegment(seg_id, name, default_color(name))
            command = add
        if not self.context.execute(command):
            return False
        assert add.label is not None
        key = (seg_id, int(add.label))
        if not self.select(key):
            self._pending = key  # its row appears at the next show_scene
        return True

    def delete_selected(self) -> bool:
        key = self.selected()
        if key is None or self._segment(key) is None:
            return False
        return self.context.execute(RemoveSegment(key[0], key[1]))
