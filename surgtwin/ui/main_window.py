"""The main window: shows one core Scene and changes it only through its History.

It owns no domain state beyond *which* scene it shows (plus view settings such as the
slice index or window preset). Long work runs in :mod:`surgtwin.ui.worker` tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QImage, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QToolBar,
    QWidget,
)

from surgtwin.core.commands import AddMesh, AddVolume, Command, CommandGroup, History
from surgtwin.core.dicom import Inventory
from surgtwin.core.findings import Finding
from surgtwin.core.scene import Scene, SceneEvent
from surgtwin.core.segmentation.commands import AddSegmentation, SetSegmentProperties
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import CT_WINDOW_PRESETS
from surgtwin.ui import jobs
from surgtwin.ui.data_panel import DataPanel
from surgtwin.ui.errors import ErrorReport, describe_error
from surgtwin.ui.segments_panel import SegmentsPanel
from surgtwin.ui.slice_view import SliceView, rgb_to_qimage
from surgtwin.ui.view3d import View3D
from surgtwin.ui.view_tools import Preview
from surgtwin.ui.worker import Task

logger = logging.getLogger(__name__)

AXES = ("axial", "coronal", "sagittal")


class MainWindow(QMainWindow):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("surgtwin")
        self.resize(1280, 860)
        self.scene = Scene("untitled")
        self.history = History(self.scene)
        self.case_path: Path | None = None
        self.inventory: Inventory | None = None
        self.findings: list[Finding] = []
        self.task: Task | None = None
        self.last_error: ErrorReport | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh)

        self.slice_views = {axis: SliceView(axis) for axis in AXES}
        self.view_3d = View3D()
        central = QWidget()
        grid = QGridLayout(central)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setSpacing(2)
        grid.addWidget(self.slice_views["axial"], 0, 0)
        grid.addWidget(self.view_3d, 0, 1)
        grid.addWidget(self.slice_views["coronal"], 1, 0)
        grid.addWidget(self.slice_views["sagittal"], 1, 1)
        for i in (0, 1):
            grid.setColumnStretch(i, 1)
            grid.setRowStretch(i, 1)
        self.setCentralWidget(central)

        self.data_panel = DataPanel()
        self.segments_panel = SegmentsPanel(self.set_segment_visible)
        for title, widget, area in (
            ("Data", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Segments", self.segments_panel, Qt.DockWidgetArea.RightDockWidgetArea),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{title.lower()}")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
            self.addDockWidget(area, dock)
        self._make_actions()
        self.status = QLabel("Open a DICOM folder or a .stwin case (File → Open)")
        self.statusBar().addWidget(self.status, 1)
        self._bind(self.scene, self.history)

    # --- actions ------------------------------------------------------------
    def _action(
        self, text: str, slot: Callable[[], Any], shortcut: QKeySequence | str | None = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _make_actions(self) -> None:
        self.open_folder_action = self._action(
            "Open DICOM &folder…", self.choose_folder, QKeySequence.StandardKey.Open
        )
        self.open_file_action = self._action("Open &case or file…", self.choose_file)
        self.save_action = self._action("&Save", self.save, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save &As…", self.choose_save_path, "Ctrl+Shift+S")
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        self.undo_action = self._action("&Undo", self.undo, "Ctrl+Z")
        self.redo_action = self._action("&Redo", self.redo, "Ctrl+Shift+Z")
        self.twin_action = self._action("&One-click twin", self.one_click_twin, "Ctrl+T")
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        for action in (self.open_folder_action, self.open_file_action, self.save_action, self.save_as_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = menus.addMenu("&Edit")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        menus.addMenu("&Segment").addAction(self.twin_action)
        toolbar = QToolBar("Main")
        toolbar.setObjectName("main_toolbar")
        for action in (
            self.open_folder_action,
            self.twin_action,
            self.save_action,
            self.undo_action,
            self.redo_action,
        ):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Window: "))
        self.window_combo = QComboBox()
        self.window_combo.setObjectName("window_preset")
        self.window_combo.addItems(list(CT_WINDOW_PRESETS))
        self.window_combo.setCurrentText("soft_tissue")
        self.window_combo.currentTextChanged.connect(self.set_window_preset)
        toolbar.addWidget(self.window_combo)
        self.addToolBar(toolbar)

    # --- the scene shown ------------------------------------------------------
    def _bind(self, scene: Scene, history: History) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.scene, self.history = scene, history
        self._unsubscribe = scene.subscribe(self._on_scene_event)
        self.view_3d.set_scene(scene)
        self.refresh()

    def _on_scene_event(self, _event: SceneEvent) -> None:
        self._refresh_timer.start()  # coalesce; never rebuild a list inside its own signal

    @property
    def volume(self) -> tuple[str, Volume] | None:
        return next(iter(self.scene.volumes.items()), None)

    @property
    def segmentation(self) -> Segmentation | None:
        return next(iter(self.scene.segmentations.values()), None)

    def refresh(self) -> None:
        found = self.volume
        for view in self.slice_views.values():
            view.set_data(found[1] if found else None, self.segmentation)
        self.data_panel.show_scene(self.scene, self.inventory, self.findings)
        self.segments_panel.show_scene(self.scene)
        self.undo_action.setEnabled(self.history.can_undo())
        self.redo_action.setEnabled(self.history.can_redo())
        self.twin_action.setEnabled(found is not None)
        where = f" — {self.case_path}" if self.case_path else ""
        self.setWindowTitle(f"surgtwin — {self.scene.title or 'untitled'}{where}")

    # --- what tools may ask (surgtwin.ui.view_tools.ToolContext) ----------------
    def current_volume(self) -> tuple[str, Volume] | None:
        return self.volume

    def current_segmentation(self) -> tuple[str, Segmentation] | None:
        return next(iter(self.scene.segmentations.items()), None)

    def selected_segment(self) -> tuple[str, int] | None:
        return self.segments_panel.selected()

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def tool_changed(self) -> None:
        for view in self.slice_views.values():
            view.update()

    def set_preview(self, preview: Preview | None) -> None:
        for view in self.slice_views.values():
            view.set_preview(preview)

    def run_task(self, title: str, work: Callable[..., Any], done: Callable[[Any], None]) -> bool:
        return self._start(title, work, done)

    def set_window_preset(self, preset: str) -> None:
        for view in self.slice_views.values():
            view.set_window_level(preset)

    # --- commands ------------------------------------------------------------
    def execute(self, command: Command) -> bool:
        try:
            self.history.execute(command)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the scene is unchanged
            self.report_error("Edit", exc)
            return False
        return True

    def set_segment_visible(self, segmentation_id: str, label: int, visible: bool) -> None:
        self.execute(SetSegmentProperties(segmentation_id, label, visible=visible))

    def undo(self) -> None:
        if self.history.can_undo() and not self.busy:
            try:
                command = self.history.undo()
            except Exception as exc:  # noqa: BLE001
                self.report_error("Undo", exc)
                return
            self.status.setText(f"Undone: {command.describe()}")

    def redo(self) -> None:
        if self.history.can_redo() and not self.busy:
            try:
                command = self.history.redo()
            except Exception as exc:  # noqa: BLE001
                self.report_error("Redo", exc)
                return
            self.status.setText(f"Redone: {command.describe()}")

    # --- long work -----------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.running

    @property
    def settled(self) -> bool:
        """No background task and no view update pending (scripts and tests wait for this)."""
        return not self.busy and not self._refresh_timer.isActive()

    def _start(self, title: str, work: Callable[..., Any], done: Callable[[Any], None]) -> bool:
        if self.busy:
            self.status.setText(f"Wait for {self.task.title.lower()} to finish (or cancel it) first")
            return False

        def failed(exc: BaseException) -> None:
            self.status.setText(f"{title} did not complete")
            self.report_error(title, exc)

        self.status.setText(f"{title}…")
        self.task = Task(self, title, work, done, failed)
        return True

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a DICOM folder")
        if path:
            self.open_path(path)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a case or file",
            "",
            "Cases and images (*.stwin *.zip *.dcm *.nii *.nii.gz *.nrrd *.mha);;All files (*)",
        )
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a DICOM folder/zip/file or volume file (a new case) or a .stwin case, in the background."""
        path = Path(path)
        return self._start("Open", lambda progress: jobs.open_path(path, progress), self._opened)

    def _opened(self, data: jobs.OpenedData) -> None:
        if data.scene is not None:
            scene, history = data.scene, History(data.scene)
            self.case_path = data.path
        else:
            assert data.volume is not None
            scene = Scene(title=data.volume.name or data.path.name)
            history = History(scene)
            history.execute(AddVolume(data.volume))
            self.case_path = None
        self.inventory, self.findings = data.inventory, data.findings
        self._bind(scene, history)
        self.status.setText(f"Opened {data.path}")

    def one_click_twin(self) -> None:
        found = self.volume
        if found is None:
            self.report_error("One-click twin", RuntimeError("open an image first"))
            return
        volume_id, volume = found
        scene = self.scene

        def done(twin: jobs.TwinData) -> None:
            if self.scene is not scene:  # another case was opened meanwhile
                return
            seg_id = scene.new_id("segmentation")
            commands: list[Command] = [AddSegmentation(twin.segmentation, seg_id)]
            for mesh in twin.meshes:
                mesh.segmentation_id = seg_id  # colour and visibility follow the segment
                commands.append(AddMesh(mesh))
            if not self.execute(CommandGroup(commands, label="one-click twin")):
                return
            skipped = "; ".join(f"{k}: {v}" for k, v in twin.skipped.items())
            self.status.setText(
                f"Twin: {len(twin.segmentation.segments)} segments, {len(twin.meshes)} meshes"
                + (f" (not made: {skipped})" if skipped else "")
            )

        self._start("One-click twin", lambda progress: jobs.build_twin(volume, volume_id, progress), done)

    def save(self) -> None:
        if self.case_path is None:
            self.choose_save_path()
        else:
            self.save_to(self.case_path)

    def choose_save_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save case", "", "surgtwin case (*.stwin)")
        if path:
            self.save_to(path)

    def save_to(self, path: str | Path) -> bool:
        path = Path(path)
        if not jobs.is_case_file(path):
            path = path.with_name(path.name + jobs.CASE_SUFFIX)
        scene = self.scene

        def done(saved: Path) -> None:
            if self.scene is scene:
                self.case_path = saved
                self.refresh()
            self.status.setText(f"Saved {saved}")

        return self._start("Save", lambda progress: jobs.save(scene, path, progress), done)

    # --- errors and pictures ------------------------------------------------------
    def report_error(self, action: str, exc: BaseException) -> None:
        """Tell the user what happened and what to do (tests replace :meth:`show_error`)."""
        self.last_error = describe_error(action, exc)
        self.show_error(self.last_error)

    def show_error(self, report: ErrorReport) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Warning, report.title, report.text, QMessageBox.StandardButton.Ok, self
        )
        box.setObjectName("error_box")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal but not blocking: the event loop keeps running

    def screenshot(self) -> QImage:
        """The whole window as an image, the 3D view's GL frame painted in its place."""
        image = self.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
        rgb = self.view_3d.image() if self.view_3d.interactive else None
        if rgb is not None:
            top_left = self.view_3d.mapTo(self, self.view_3d.rect().topLeft())
            painter = QPainter(image)
            size = self.view_3d.size()
            frame = rgb_to_qimage(np.asarray(rgb)).scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio)
            painter.drawImage(top_left, frame)
            painter.end()
        return image

    def save_screenshot(self, path: str | Path) -> bool:
        """Save :meth:`screenshot` as a PNG (the format follows the suffix)."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self.screenshot().save(str(path)):
                raise OSError(f"could not write an image to {path}")
        except OSError as exc:
            self.report_error("Screenshot", exc)
            return False
        self.set_status(f"Screenshot saved to {path}")
        return True

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.task is not None and self.task.running:
            self.task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.view_3d.close_view()
        super().closeEvent(event)
