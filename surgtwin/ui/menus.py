"""The window's menus and toolbars: every action a person can take, with its shortcut.

Built once by :func:`build_menus`; the actions live on the window (``window.save_action`` ...)
so tests and scripts can trigger them like a click.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QSlider, QToolBar

from surgtwin.render import CT_WINDOW_PRESETS
from surgtwin.ui.plan_tools import AngleTool, CutPlaneTool, RulerTool, TrajectoryTool
from surgtwin.ui.segment_brush import BrushTool, SeedTool
from surgtwin.ui.settings import populate_recent_menu
from surgtwin.ui.view_grid import LAYOUT_TITLES, LAYOUTS

if TYPE_CHECKING:
    from surgtwin.ui.main_window import MainWindow
    from surgtwin.ui.view_tools import SliceTool

# Slice-view tools: label, shortcut, how to make one for the window.
TOOLS: tuple[tuple[str, str, Callable[[MainWindow], SliceTool | None]], ...] = (
    ("Navigate", "N", lambda w: None),
    ("Paint", "B", lambda w: BrushTool(w, radius_mm=w.brush_radius.value())),
    ("Erase", "E", lambda w: BrushTool(w, radius_mm=w.brush_radius.value(), erase=True)),
    ("Grow from seed", "G", lambda w: SeedTool(w)),
    ("Ruler", "M", RulerTool),
    ("Angle", "A", AngleTool),
    ("Trajectory", "J", TrajectoryTool),
    ("Cut plane", "K", CutPlaneTool),
)


def tool_label(tool: SliceTool | None) -> str:
    """The Tools-menu entry that stands for ``tool``."""
    if tool is None:
        return "Navigate"
    if isinstance(tool, BrushTool):
        return "Erase" if tool.erase else "Paint"
    labels = {SeedTool: "Grow from seed", RulerTool: "Ruler", AngleTool: "Angle"}
    labels.update({TrajectoryTool: "Trajectory", CutPlaneTool: "Cut plane"})
    return labels.get(type(tool), "Navigate")


def _action(window: MainWindow, text: str, slot: Callable[[], Any], shortcut: Any = None) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)
    return action


def build_menus(w: MainWindow) -> None:
    w.open_folder_action = _action(w, "Open DICOM &folder…", w.choose_folder, QKeySequence.StandardKey.Open)
    w.open_file_action = _action(w, "Open &case or file…", w.choose_file, "Ctrl+Shift+O")
    w.save_action = _action(w, "&Save", w.save, QKeySequence.StandardKey.Save)
    w.save_as_action = _action(w, "Save &As…", w.choose_save_path, "Ctrl+Shift+S")
    w.export_action = _action(w, "&Export meshes / segmentation…", w.open_export_dialog, "Ctrl+E")
    w.quit_action = _action(w, "&Quit", w.close, "Ctrl+Q")
    w.undo_action = _action(w, "&Undo", w.undo, "Ctrl+Z")
    w.redo_action = _action(w, "&Redo", w.redo, "Ctrl+Shift+Z")
    w.twin_action = _action(w, "&One-click twin", w.one_click_twin, "Ctrl+T")

    menus = w.menuBar()
    file_menu = menus.addMenu("&File")
    file_menu.addActions([w.open_folder_action, w.open_file_action])
    w.recent_menu = file_menu.addMenu("Open &Recent")
    w.recent_menu.aboutToShow.connect(lambda: populate_recent_menu(w.recent_menu, w.settings, w.open_path))
    file_menu.addActions([w.save_action, w.save_as_action, w.export_action])
    file_menu.addSeparator()
    file_menu.addAction(w.quit_action)
    edit_menu = menus.addMenu("&Edit")
    edit_menu.addActions([w.undo_action, w.redo_action])
    menus.addMenu("&Segment").addAction(w.twin_action)

    view_menu = menus.addMenu("&View")
    layout_menu = view_menu.addMenu("&Layout")
    group = QActionGroup(w)
    w.layout_actions = {}
    for n, name in enumerate(LAYOUTS):
        action = _action(w, LAYOUT_TITLES[name], lambda name=name: w.set_layout(name), f"Ctrl+{n + 1}")
        action.setCheckable(True)
        group.addAction(action)
        layout_menu.addAction(action)
        w.layout_actions[name] = action
    shots = view_menu.addMenu("Save &screenshot")
    shots.addAction(_action(w, "Whole window…", lambda: w.choose_screenshot_path(None), "Ctrl+P"))
    for name in (*w.slice_views, "3d"):
        title = f"{name.capitalize()} view…"
        shots.addAction(_action(w, title, lambda name=name: w.choose_screenshot_path(name)))

    tools_menu = menus.addMenu("&Tools")
    tool_group = QActionGroup(w)
    w.tool_actions = {}
    for label, key, make in TOOLS:
        action = _action(w, label, lambda make=make: w.set_tool(make(w)), key)
        action.setCheckable(True)
        tool_group.addAction(action)
        tools_menu.addAction(action)
        w.tool_actions[label] = action
    w.tool_actions["Navigate"].setChecked(True)

    main = QToolBar("Main")
    main.setObjectName("main_toolbar")
    main.addActions([w.open_folder_action, w.twin_action, w.save_action, w.undo_action, w.redo_action])
    main.addSeparator()
    main.addWidget(QLabel(" Window: "))
    w.window_combo = QComboBox()
    w.window_combo.setObjectName("window_preset")
    w.window_combo.addItems(list(CT_WINDOW_PRESETS))
    w.window_combo.setCurrentText("soft_tissue")
    w.window_combo.currentTextChanged.connect(w.set_window_preset)
    main.addWidget(w.window_combo)
    main.addWidget(QLabel(" Overlay: "))
    w.overlay_slider = QSlider(Qt.Orientation.Horizontal)
    w.overlay_slider.setObjectName("overlay_opacity")
    w.overlay_slider.setRange(0, 100)
    w.overlay_slider.setValue(40)
    w.overlay_slider.setMaximumWidth(100)
    w.overlay_slider.valueChanged.connect(lambda v: w.set_overlay_opacity(v / 100))
    main.addWidget(w.overlay_slider)
    w.addToolBar(main)

    tools = QToolBar("Tools")
    tools.setObjectName("tools_toolbar")
    tools.addActions(list(w.tool_actions.values()))
    tools.addWidget(QLabel(" Brush mm: "))
    w.brush_radius = QDoubleSpinBox()
    w.brush_radius.setObjectName("brush_radius")
    w.brush_radius.setRange(0.5, 50.0)
    w.brush_radius.setValue(5.0)
    w.brush_radius.valueChanged.connect(w.set_brush_radius)
    tools.addWidget(w.brush_radius)
    w.addToolBar(tools)
