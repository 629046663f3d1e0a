"""*File → Export…*: the core's ``export()`` behind a dialog (format, segments, output folder).

The dialog only gathers choices; the writing is the same call ``surgtwin export`` makes
(``surgtwin.core.export.export`` on the parts ``surgtwin.cli.twin`` picks from a case), run
off the GUI thread through the window's ``run_task``. The core fixes the frame and units of
every format (LPS millimetres; glTF its own metres, +Y up), so there are no unit options:
the dialog states the frame of the chosen format instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from surgtwin.cli.twin import _case_parts as case_parts  # the CLI's choice of segmentation/volume/meshes
from surgtwin.core.export import FORMATS, LABEL_FORMATS, export
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.progress import Progress
from surgtwin.core.scene import Scene
from surgtwin.ui.errors import describe_error

RunTask = Callable[[str, Callable[[Progress], Any], Callable[[Any], None]], bool]

# What each core format writes (docs/exports.md), shown in the format box.
FORMAT_TITLES = {
    "stl": "STL — one file per segment (3D printing, CAD)",
    "obj": "OBJ + MTL — one file, colours (Blender, MeshLab)",
    "ply": "PLY — one file per segment, vertex colours",
    "glb": "glTF binary (GLB) — one file, colours (VR, web viewers)",
    "3mf": "3MF — one file, colours, millimetres (colour printing)",
    "seg": "DICOM SEG — label map for PACS and DICOM viewers",
    "nifti": "NIfTI label map + names (labels.nii.gz, labels.json)",
}
FRAME_NOTES = {
    "glb": "Coordinates: glTF metres, +Y towards the head, +Z anterior (the glTF convention); "
    "the transform back to patient LPS mm is stored in the file.",
    "seg": "On the grid of the DICOM series the volume came from (needs a volume imported from DICOM).",
    "nifti": "On the volume's voxel grid; 0 = background.",
}
MESH_FRAME_NOTE = "Coordinates: patient LPS millimetres (the DICOM frame), as stated in the files."


@dataclass
class ExportOutcome:
    files: list[Path] = field(default_factory=list)
    error: BaseException | None = None


class ExportDialog(QDialog):
    """Choose format, segments and output folder; *Export* writes them in the background."""

    exported = Signal(list)  # the files written (list[Path])

    def __init__(
        self,
        scene: Scene,
        parent: QWidget | None = None,
        *,
        run_task: RunTask,
        report_error: Callable[[str, BaseException], None] | None = None,
        output_dir: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("export_dialog")
        self.setWindowTitle("Export segments")
        self.scene = scene
        self._run_task = run_task
        self._report_error = report_error
        self._unchecked: set[str] = set()  # segments the user unticked (kept across format changes)
        self.last_outcome: ExportOutcome | None = None

        self.format_combo = QComboBox()
        self.format_combo.setObjectName("export_format")
        for fmt in FORMATS:
            self.format_combo.addItem(FORMAT_TITLES.get(fmt, fmt), fmt)
        self.segmentation_combo = QComboBox()
        self.segmentation_combo.setObjectName("export_segmentation")
        for seg_id, segmentation in scene.segmentations.items():
            self.segmentation_combo.addItem(segmentation.name or seg_id, seg_id)
        self.segment_list = QListWidget()
        self.segment_list.setObjectName("export_segments")
        self.output_edit = QLineEdit(str(output_dir) if output_dir is not None else "")
        self.output_edit.setObjectName("export_output")
        self.output_edit.setPlaceholderText("a folder (created if missing)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.choose_output_dir)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.result_label = QLabel()
        self.result_label.setObjectName("export_result")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        output_row = QHBoxLayout()
        output_row.addWidget(self.output_edit, 1)
        output_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format:", self.format_combo)
        if self.segmentation_combo.count() > 1:
            form.addRow("Segmentation:", self.segmentation_combo)
        form.addRow("Segments:", self.segment_list)
        form.addRow("Output folder:", output_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.ApplyRole)
        self.export_button.setObjectName("export_button")
        self.export_button.clicked.connect(self.start_export)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.result_label)
        layout.addWidget(buttons)

        self.format_combo.currentIndexChanged.connect(self._refresh_segments)
        self.segmentation_combo.currentIndexChanged.connect(self._refresh_segments)
        self.segment_list.itemChanged.connect(self._on_item_changed)
        self.output_edit.textChanged.connect(self._update_button)
        self._refresh_segments()

    # --- choices ----------------------------------------------------------------------
    def selected_format(self) -> str:
        return str(self.format_combo.currentData())

    def set_format(self, fmt: str) -> None:
        index = self.format_combo.findData(fmt)
        if index < 0:
            raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.format_combo.setCurrentIndex(index)

    def selected_segments(self) -> list[str]:
        items = (self.segment_list.item(row) for row in range(self.segment_list.count()))
        return [
            item.text()
            for item in items
            if item.flags() & Qt.ItemFlag.ItemIsEnabled and item.checkState() == Qt.CheckState.Checked
        ]

    def set_segment_checked(self, name: str, checked: bool) -> None:
        for item in self.segment_list.findItems(name, Qt.MatchFlag.MatchExactly):
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def output_dir(self) -> Path | None:
        text = self.output_edit.text().strip()
        return Path(text).expanduser() if text else None

    def set_output_dir(self, folder: str | Path) -> None:
        self.output_edit.setText(str(folder))

    def choose_output_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", self.output_edit.text())
        if folder:
            self.set_output_dir(folder)

    def _parts(self) -> tuple[Any, ...] | None:
        seg_id = self.segmentation_combo.currentData()
        if seg_id is None:
            return None
        return case_parts(self.scene, str(seg_id))

    def _meshes_by_name(self, meshes: list[SurfaceMesh]) -> set[str]:
        return {mesh.name for mesh in meshes if mesh.triangle_count > 0}

    def _refresh_segments(self) -> None:
        fmt = self.selected_format()
        self.note.setText(FRAME_NOTES.get(fmt, MESH_FRAME_NOTE))
        self.segment_list.blockSignals(True)
        self.segment_list.clear()
        parts = self._parts()
        if parts is not None:
            _, segmentation, _, meshes = parts
            with_mesh = self._meshes_by_name(meshes)
            for label in sorted(segmentation.segments):
                name = segmentation.segments[label].name
                item = QListWidgetItem(name)
                usable = fmt in LABEL_FORMATS or name in with_mesh
                flags = Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable
                item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled if usable else flags)
                checked = usable and name not in self._unchecked
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                if not usable:
                    item.setToolTip("no surface mesh yet: build the meshes first (one-click twin)")
                self.segment_list.addItem(item)
        self.segment_list.blockSignals(False)
        if parts is None:
            self.result_label.setText("Nothing to export: this case has no segmentation yet.")
        self._update_button()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if item.checkState() == Qt.CheckState.Checked:
            self._unchecked.discard(item.text())
        else:
            self._unchecked.add(item.text())
        self._update_button()

    def _update_button(self) -> None:
        self.export_button.setEnabled(bool(self.selected_segments()) and self.output_dir() is not None)

    # --- the export -------------------------------------------------------------------
    def start_export(self) -> bool:
        """Run the export in the background; False when it could not start (then nothing ran)."""
        parts, out, segments = self._parts(), self.output_dir(), self.selected_segments()
        if parts is None or out is None or not segments:
            return False
        fmt = self.selected_format()
        _, segmentation, volume, meshes = parts

        def work(_progress: Progress) -> ExportOutcome:
            try:
                return ExportOutcome(files=export(fmt, out, segmentation, meshes, volume, segments))
            except Exception as exc:  # noqa: BLE001 - shown in the dialog and reported below
                return ExportOutcome(error=exc)

        started = self._run_task(f"Export {fmt.upper()}", work, self._finished)
        if started:
            self.export_button.setEnabled(False)
            self.result_label.setText(f"Exporting {len(segments)} segment(s) as {fmt.upper()}…")
        return started

    def _finished(self, outcome: ExportOutcome) -> None:
        self.last_outcome = outcome
        self._update_button()
        if outcome.error is not None:
            report = describe_error("Export", outcome.error)
            self.result_label.setText(f"Export did not complete: {report.what}")
            if self._report_error is not None:
                self._report_error("Export", outcome.error)
            return
        names = "\n".join(str(path) for path in outcome.files)
        self.result_label.setText(f"Wrote {len(outcome.files)} file(s):\n{names}")
        self.exported.emit(list(outcome.files))
