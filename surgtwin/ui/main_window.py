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
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from surgtwin.core.commands import AddMesh, Command, CommandGroup, History
from surgtwin.core.dicom import Inventory
from surgtwin.core.findings import Finding
from surgtwin.core.mesh.decimate import use_helper_process
from surgtwin.core.scene import Scene, SceneEvent
from surgtwin.core.segmentation.commands import AddSegmentation
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import CT_WINDOW_PRESETS
from surgtwin.ui import jobs
from surgtwin.ui.case_actions import CaseActions
from surgtwin.ui.data_panel import DataPanel
from surgtwin.ui.drop import enable_drop
from surgtwin.ui.errors import ErrorReport, describe_error
from surgtwin.ui.flow_panel import FlowPanel
from surgtwin.ui.menus import build_menus, tool_label
from surgtwin.ui.mesh_updater import MeshUpdater
from surgtwin.ui.plan_overlay import PlanOverlay
from surgtwin.ui.plan_panel import PlanPanel
from surgtwin.ui.segment_editor import SegmentEditor
from surgtwin.ui.segments_panel import SegmentsPanel
from surgtwin.ui.simulation_panel import SimulationPanel
from surgtwin.ui.slice_view import SliceView, rgb_to_qimage
from surgtwin.ui.unsaved import ChangeTracker
from surgtwin.ui.view3d import View3D
from surgtwin.ui.view3d_controls import View3DControls
from surgtwin.ui.view_grid import ViewGrid
from surgtwin.ui.view_tools import Preview, SliceTool
from surgtwin.ui.worker import Task

logger = logging.getLogger(__name__)

AXES = ("axial", "coronal", "sagittal")


class MainWindow(CaseActions, QMainWindow):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        use_helper_process(True)  # mesh decimation holds the GIL: keep it off this process
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
        self.view_3d.set_context(self)
        self.view_3d.picked.connect(self._show_pick)
        self.view_grid = ViewGrid(self.slice_views, self.view_3d)
        self.setCentralWidget(self.view_grid)

        self.data_panel = DataPanel()
        self.scan: jobs.ScanData | None = None
        self.data_panel.series_chosen.connect(self.open_series)
        self._drop_filter = enable_drop(self, self.open_dropped)
        self.segments_panel = SegmentsPanel(self)
        self.segment_editor = SegmentEditor(self)  # after the panel: it asks for the selection
        self.segments_panel.selection_changed.connect(lambda _key: self.segment_editor.refresh())
        self.plan_panel = PlanPanel(self)
        self.plan_panel.tool_requested.connect(self.set_tool)
        self.plan_panel.reslice_requested.connect(self.show_planes)
        self.plan_panel.reslice_cleared.connect(self.clear_planes)
        self.tool: SliceTool | None = None
        self.view3d_controls = View3DControls(self.view_3d)
        self.simulation_panel = SimulationPanel(self, self.view_3d)
        self.flow_panel = FlowPanel(self, self.view_3d)
        for view in self.slice_views.values():
            view.add_overlay(PlanOverlay(lambda: self.scene))
            view.window_changed.connect(self._link_window)
            for target in self.slice_views.values():  # one crosshair for the three views
                view.crosshair_moved.connect(target.set_crosshair)
        self.docks: dict[str, QDockWidget] = {}
        for title, widget, area in (
            ("Data", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Plan", self.plan_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Segments", self.segments_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Segment editor", self.segment_editor, Qt.DockWidgetArea.RightDockWidgetArea),
            ("3D", self.view3d_controls, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Simulation", self.simulation_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Flow", self.flow_panel, Qt.DockWidgetArea.RightDockWidgetArea),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{title.lower()}")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
            self.addDockWidget(area, dock)
            self.docks[title] = dock
        # The tool docks share one place as tabs, so each has room on a laptop screen.
        for title in ("3D", "Simulation", "Flow"):
            self.tabifyDockWidget(self.docks["Segment editor"], self.docks[title])
        self.docks["Segment editor"].raise_()
        self._init_case()
        build_menus(self)
        self.status = QLabel("Open a DICOM folder or a .stwin case (File → Open)")
        self.statusBar().addWidget(self.status, 1)
        self.mesh_updater = MeshUpdater(self, is_busy=lambda: self.busy, parent=self)
        self.mesh_status = QLabel("")
        self.mesh_status.setObjectName("mesh_status")
        self.statusBar().addPermanentWidget(self.mesh_status)
        self.mesh_updater.status_changed.connect(self.mesh_status.setText)
        self._bind(self.scene, self.history)
        self._restore_settings()

    # --- the scene shown ------------------------------------------------------
    def _bind(self, scene: Scene, history: History, *, saved: bool = True) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.tool is not None:
            self.tool.cancel()  # a half-placed point belongs to the previous case
        self.scene, self.history = scene, history
        self.tracker = ChangeTracker(history, saved=saved)
        self.mesh_updater.set_scene(scene)
        self.autosaver.discard()
        self._unsubscribe = scene.subscribe(self._on_scene_event)
        self.view_3d.set_scene(scene)
        self.simulation_panel.set_scene(scene)  # a live preview belongs to the previous case
        self.flow_panel.set_scene(scene)
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
        self.segment_editor.refresh()
        self.plan_panel.refresh()
        self.simulation_panel.refresh()
        self.flow_panel.refresh()
        self.undo_action.setEnabled(self.history.can_undo())
        self.redo_action.setEnabled(self.history.can_redo())
        self.twin_action.setEnabled(found is not None)
        where = f" — {self.case_path}" if self.case_path else ""
        self.setWindowTitle(f"surgtwin — {self.scene.title or 'untitled'}[*]{where}")
        self.setWindowModified(self.tracker.dirty)
        self.export_action.setEnabled(bool(self.scene.segmentations))

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

    # --- tools and planes ---------------------------------------------------------
    def set_tool(self, tool: SliceTool | None) -> None:
        """Give the slice views' left mouse button to ``tool`` (None: navigate / crosshair)."""
        if self.tool is not None and self.tool is not tool:
            self.tool.cancel()
        self.tool = tool
        for view in self.slice_views.values():
            view.set_tool(tool)
        self.tool_actions[tool_label(tool)].setChecked(True)  # the plan panel also hands out tools
        self.set_status(f"Tool: {tool.name}" if tool is not None else "Navigate: click to move the crosshair")

    def _show_pick(self, picked: dict) -> None:
        x, y, z = picked["lps"]
        what = picked["segment"] or picked["mesh_id"]
        self.set_status(f"{what} at x {x:.1f}, y {y:.1f}, z {z:.1f} mm (patient LPS)")
        self.picked = picked

    def show_planes(self, planes: list) -> None:
        """Reslice the three slice views on oblique planes ``(origin, column, row, title)``."""
        for view, plane in zip(self.slice_views.values(), planes, strict=False):
            view.set_plane(*plane)

    def clear_planes(self) -> None:
        for view in self.slice_views.values():
            view.clear_plane()

    def set_window_preset(self, preset: str) -> None:
        for view in self.slice_views.values():
            view.set_window_level(preset)
        self.settings.window_preset = preset

    def _link_window(self, width: float, level: float) -> None:
        """A window/level dragged in one view applies to all three."""
        for view in self.slice_views.values():
            if view.window != (width, level):
                view.set_window_level((width, level))

    def set_overlay_opacity(self, opacity: float) -> None:
        for view in self.slice_views.values():
            view.set_overlay_opacity(opacity)
        self.settings.overlay_opacity = opacity

    def set_brush_radius(self, radius_mm: float) -> None:
        if self.tool is not None and hasattr(self.tool, "radius_mm"):
            self.tool.radius_mm = float(radius_mm)

    def set_layout(self, name: str) -> None:
        self.view_grid.set_layout(name)
        self.layout_actions[name].setChecked(True)
        self.settings.layout_name = name

    def _restore_settings(self) -> None:
        self.settings.restore_window(self)
        layout = self.settings.layout_name
        self.set_layout(layout if layout in self.layout_actions else "4-up")
        if self.settings.window_preset in CT_WINDOW_PRESETS:
            self.window_combo.setCurrentText(self.settings.window_preset)
        self.overlay_slider.setValue(round(self.settings.overlay_opacity * 100))

    # --- commands ------------------------------------------------------------
    def execute(self, command: Command) -> bool:
        try:
            self.history.execute(command)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the scene is unchanged
            self.report_error("Edit", exc)
            return False
        return True

    def undo(self) -> None:
        if self.busy:
            self.set_status(f"Wait for {self.task.title.lower()} to finish (or cancel it), then undo")
            return
        if self.history.can_undo():
            try:
                command = self.history.undo()
            except Exception as exc:  # noqa: BLE001
                self.report_error("Undo", exc)
                return
            self.status.setText(f"Undone: {command.describe()}")

    def redo(self) -> None:
        if self.busy:
            self.set_status(f"Wait for {self.task.title.lower()} to finish (or cancel it), then redo")
            return
        if self.history.can_redo():
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
        return not self.busy and not self._refresh_timer.isActive() and not self.mesh_updater.pending

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
        rgb = self.view_3d.image() if self.view_3d.interactive and self.view_3d.isVisible() else None
        if rgb is not None:
            top_left = self.view_3d.mapTo(self, self.view_3d.rect().topLeft())
            painter = QPainter(image)
            size = self.view_3d.size()
            frame = rgb_to_qimage(np.asarray(rgb)).scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio)
            painter.drawImage(top_left, frame)
            painter.end()
        return image

    def view_image(self, name: str) -> QImage:
        """One view as shown (slice views with their overlays; "3d" the GL frame)."""
        if name == "3d":
            rgb = self.view_3d.image()
            if rgb is None:
                raise OSError("the 3D view has nothing to show yet")
            return rgb_to_qimage(np.asarray(rgb))
        return self.slice_views[name].grab().toImage()

    def choose_screenshot_path(self, view: str | None) -> None:
        name = f"surgtwin-{view or 'window'}.png"
        start = str((self.settings.last_open_directory or Path()) / name)
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", start, "PNG image (*.png)")
        if path:
            self.save_screenshot(path, view)

    def save_screenshot(self, path: str | Path, view: str | None = None) -> bool:
        """Save the window (or one view: "axial", "coronal", "sagittal", "3d") as an image."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            image = self.screenshot() if view is None else self.view_image(view)
            if not image.save(str(path)):
                raise OSError(f"could not write an image to {path}")
        except OSError as exc:
            self.report_error("Screenshot", exc)
            return False
        self.set_status(f"Screenshot saved to {path}")
        return True

    def _shutdown(self) -> None:
        """Let go of the scene and the GL view (the mixin's closeEvent calls this last)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.mesh_updater.close()
        self.simulation_panel.close_session()
        self.flow_panel.close_session()
        self.view_3d.close_view()
