"""The simulation panel: choose a segment, its material and anchors, start a live deformation
preview, use a tool on the tissue in the 3D view (grasp and drag, press with a sphere or an
instrument shaft, retract with a plane, pin points) and read the tool force; export the
deformed surface.

Nothing here edits the case: the preview lives in the 3D view only (see
:mod:`surgtwin.ui.deform_session`) and Reset, a new case or closing the panel put the view back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from surgtwin.core.deform.materials import custom_material, material, material_for_segment, preset_names
from surgtwin.core.deform.setup import segment_names, surface_mesh_id
from surgtwin.ui.deform_session import (
    COLOUR_MODES,
    TOOLS,
    DeformSession,
    SessionConfig,
    SimFrame,
    TissueDragger,
)
from surgtwin.ui.name_checklist import NameChecklist
from surgtwin.ui.spin_boxes import number_box

BUDGETS = (500, 1000, 2000, 5000)
DEFAULT_BUDGET = 1000
AUTO_MATERIAL = "preset for the segment"
CUSTOM_MATERIAL = "custom"
DEFAULT_ANCHOR_WORDS = ("bone",)


class SimulationPanel(QWidget):
    """Dock widget content. ``context``: the window (ToolContext); ``view``: its View3D."""

    def __init__(self, context: Any, view: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("simulation_panel")
        self.context = context
        self.view = view
        self.session = DeformSession(view, context, self)
        self.dragger = TissueDragger(view, self.session, self)
        self.session.started.connect(self._on_started)
        self.session.frame_shown.connect(self._on_frame)
        self.session.ended.connect(self._on_ended)

        self.segment_combo = QComboBox()
        self.segment_combo.currentTextChanged.connect(self._segment_chosen)
        self.material_combo = QComboBox()
        self.material_combo.addItems([AUTO_MATERIAL, *preset_names(), CUSTOM_MATERIAL])
        self.material_combo.currentTextChanged.connect(self._material_chosen)
        self.youngs_kpa = number_box(0.01, 100000.0, 4.1, " kPa", 2)
        self.poisson = number_box(0.0, 0.499, 0.48, "", 3)
        self.density = number_box(1.0, 5000.0, 1060.0, " kg/m³", 0)
        self.anchor_list = NameChecklist(_is_default_anchor)
        self.anchor_list.setMaximumHeight(110)
        self.budget_combo = QComboBox()
        for n in BUDGETS:
            self.budget_combo.addItem(f"{n:,} elements", n)
        self.budget_combo.setCurrentIndex(BUDGETS.index(DEFAULT_BUDGET))
        self.gravity_check = QCheckBox("Gravity (supine, 9.81 m/s² posterior)")
        self.colour_combo = QComboBox()
        self.colour_combo.addItems(list(COLOUR_MODES))
        self.colour_combo.currentTextChanged.connect(self.session.set_colour_by)

        self.tool_combo = QComboBox()
        for key, text in TOOLS.items():
            self.tool_combo.addItem(text, key)
        self.tool_combo.currentIndexChanged.connect(self._tool_chosen)
        self.tool_radius = number_box(1.0, 50.0, self.dragger.tool_radius_mm, " mm", 1)
        self.tool_radius.setToolTip("Radius of the sphere or of the instrument shaft")
        self.press_depth = number_box(0.0, 50.0, self.dragger.press_depth_mm, " mm", 1)
        self.press_depth.setToolTip("How far the instrument is pressed into the surface where you click")
        self.shaft_length = number_box(1.0, 300.0, self.dragger.capsule_length_mm, " mm", 0)
        self.pin_radius = number_box(0.5, 50.0, self.dragger.pin_radius_mm, " mm", 1)
        self.pin_radius.setToolTip("Tissue nodes this close to a clicked point are held")
        self.keep_tool_check = QCheckBox("Leave the instrument in place on release")
        for spin in (self.tool_radius, self.press_depth, self.shaft_length, self.pin_radius):
            spin.valueChanged.connect(self._tool_settings_changed)
        self.keep_tool_check.toggled.connect(self._tool_settings_changed)

        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.drag_button = QPushButton("Use tool")
        self.drag_button.setCheckable(True)
        self.drag_button.setToolTip(
            "Left-press on the segment in the 3D view uses the chosen tool; elsewhere rotates"
        )
        self.drag_button.toggled.connect(self.dragger.set_enabled)
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(self.reset)
        self.clear_pins_button = QPushButton("Clear pins")
        self.clear_pins_button.clicked.connect(self.session.clear_pins)
        self.lift_button = QPushButton("Lift instrument")
        self.lift_button.clicked.connect(self.session.lift_tool)
        self.export_button = QPushButton("Export deformed surface…")
        self.export_button.clicked.connect(lambda: self.export_deformed())

        self.state_label = QLabel("Choose a segment and press Start")
        self.state_label.setWordWrap(True)
        self.force_label = QLabel("Tool force: –")
        self.displacement_label = QLabel("Max displacement: –")
        self.rate_label = QLabel("Solver: –")
        self.pins_label = QLabel("Pins: none")
        self.legend_label = QLabel("")
        self.legend_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Segment", self.segment_combo)
        form.addRow("Material", self.material_combo)
        form.addRow("Young's modulus", self.youngs_kpa)
        form.addRow("Poisson's ratio", self.poisson)
        form.addRow("Density", self.density)
        form.addRow("Anchors", self.anchor_list)
        form.addRow("Mesh", self.budget_combo)
        form.addRow("", self.gravity_check)
        form.addRow("Colour by", self.colour_combo)
        form.addRow("Tool", self.tool_combo)
        form.addRow("Instrument radius", self.tool_radius)
        form.addRow("Press depth", self.press_depth)
        form.addRow("Shaft length", self.shaft_length)
        form.addRow("Pin radius", self.pin_radius)
        form.addRow("", self.keep_tool_check)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.drag_button, self.reset_button):
            buttons.addWidget(button)
        tool_buttons = QHBoxLayout()
        for button in (self.lift_button, self.clear_pins_button):
            tool_buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addLayout(tool_buttons)
        layout.addWidget(self.export_button)
        for label in (
            self.state_label,
            self.force_label,
            self.displacement_label,
            self.rate_label,
            self.pins_label,
            self.legend_label,
        ):
            layout.addWidget(label)
        layout.addStretch(1)
        self._material_chosen(self.material_combo.currentText())
        self._tool_chosen()
        self._update_buttons()
        self.refresh()

    # --- the case -----------------------------------------------------------------------
    def set_scene(self, _scene: Any = None) -> None:
        """Another case is shown: stop any preview and list its segments."""
        self.session.reset("another case was opened")
        self.refresh()

    def refresh(self) -> None:
        """List the case's segments that have a surface mesh (keeping the choices)."""
        scene = self.context.scene
        names = segment_names(scene)
        meshed = [n for n in names if self._has_surface(scene, n)]
        current = self.segment_combo.currentText()
        self.segment_combo.blockSignals(True)
        self.segment_combo.clear()
        self.segment_combo.addItems(meshed)
        if current in meshed:
            self.segment_combo.setCurrentText(current)
        self.segment_combo.blockSignals(False)
        self.anchor_list.fill(names)
        if self.session.mesh_id is not None and self.session.mesh_id not in scene.meshes:
            self.session.reset("the segment's mesh was removed")
        self._update_buttons()

    @staticmethod
    def _has_surface(scene: Any, name: str) -> bool:
        for seg_id, seg in scene.segmentations.items():
            for label, segment in seg.segments.items():
                if segment.name == name and surface_mesh_id(scene, seg_id, label) is not None:
                    return True
        return False

    # --- choices ------------------------------------------------------------------------
    def anchors(self) -> list[str]:
        return self.anchor_list.ticked()

    def set_anchors(self, names: list[str]) -> None:
        self.anchor_list.set_ticked(names)

    def chosen_material(self) -> Any:
        """The Material to use, or None for the segment's preset (may raise SimulationError)."""
        choice = self.material_combo.currentText()
        if choice == AUTO_MATERIAL:
            return None
        if choice == CUSTOM_MATERIAL:
            return custom_material(
                self.youngs_kpa.value() * 1000.0, self.poisson.value(), self.density.value()
            )
        return material(choice)

    def config(self) -> SessionConfig:
        return SessionConfig(
            segment=self.segment_combo.currentText(),
            material=self.chosen_material(),
            anchors=tuple(self.anchors()),
            max_elements=int(self.budget_combo.currentData()),
            gravity=self.gravity_check.isChecked(),
        )

    def _segment_chosen(self, name: str) -> None:
        if self.material_combo.currentText() == AUTO_MATERIAL:
            self._material_chosen(AUTO_MATERIAL)

    def _material_chosen(self, choice: str) -> None:
        custom = choice == CUSTOM_MATERIAL
        for spin in (self.youngs_kpa, self.poisson, self.density):
            spin.setEnabled(custom)
        shown = None
        if choice == AUTO_MATERIAL:
            shown = material_for_segment(self.segment_combo.currentText())
        elif not custom:
            shown = material(choice)
        if shown is not None:  # show the preset's values in the (disabled) custom fields
            self.youngs_kpa.setValue(shown.youngs_pa / 1000.0)
            self.poisson.setValue(shown.poisson)
            self.density.setValue(shown.density_kg_m3)

    def chosen_tool(self) -> str:
        return str(self.tool_combo.currentData())

    def set_tool(self, tool: str) -> None:
        """Choose the mouse tool by key (grasp, sphere, capsule, plane, pin)."""
        index = self.tool_combo.findData(tool)
        if index < 0:
            raise ValueError(f"tool must be one of {', '.join(TOOLS)}, not {tool!r}")
        self.tool_combo.setCurrentIndex(index)

    def _tool_chosen(self, _index: int = 0) -> None:
        tool = self.chosen_tool()
        self.dragger.set_tool(tool)
        rigid = tool in ("sphere", "capsule", "plane")
        self.tool_radius.setEnabled(tool in ("sphere", "capsule"))
        self.press_depth.setEnabled(rigid)
        self.shaft_length.setEnabled(tool == "capsule")
        self.pin_radius.setEnabled(tool == "pin")
        self.keep_tool_check.setEnabled(rigid)
        self._tool_settings_changed()

    def _tool_settings_changed(self, *_: Any) -> None:
        dragger = self.dragger
        dragger.tool_radius_mm = self.tool_radius.value()
        dragger.press_depth_mm = self.press_depth.value()
        dragger.capsule_length_mm = self.shaft_length.value()
        dragger.pin_radius_mm = self.pin_radius.value()
        dragger.keep_tool = self.keep_tool_check.isChecked()

    # --- actions --------------------------------------------------------------------------
    def start(self) -> bool:
        if not self.segment_combo.currentText():
            self.state_label.setText("No segment with a surface mesh: build the twin's meshes first")
            return False
        try:
            config = self.config()
        except Exception as exc:  # noqa: BLE001 - a bad custom value: told, nothing started
            self.context.report_error("Simulation", exc)
            return False
        started = self.session.start(config)
        if started:
            self.state_label.setText(f"Building the simulation of {config.segment}…")
        self._update_buttons()
        return started

    def reset(self) -> None:
        self.session.reset()

    def export_deformed(self, path: str | Path | None = None) -> Path | None:
        """Write the deformed surface shown now (PLY, STL or OBJ by suffix); asks where when
        ``path`` is None. The case is not changed. Returns the file, None if nothing was written."""
        if path is None:
            segment = self.session.config.segment if self.session.config else "segment"
            chosen, _ = QFileDialog.getSaveFileName(
                self,
                "Export the deformed surface",
                f"{segment}_deformed.ply",
                "PLY mesh (*.ply);;STL mesh (*.stl);;Wavefront OBJ (*.obj)",
            )
            if not chosen:
                return None
            path = chosen
        try:
            written = self.session.export_surface(path)
        except Exception as exc:  # noqa: BLE001 - told to the user; nothing written
            self.context.report_error("Export deformed surface", exc)
            return None
        self.context.set_status(f"Deformed surface written to {written}")
        return written

    def close_session(self) -> None:
        """The window closes or the panel goes: put the 3D view back, stop the threads."""
        self.drag_button.setChecked(False)
        self.session.reset("closed")
        self.dragger.detach()

    # --- session feedback -------------------------------------------------------------------
    def _on_started(self) -> None:
        built = self.session.built
        self.state_label.setText(
            f"Running: {built.mesh.element_count:,} elements, {built.mesh.node_count:,} nodes, "
            f"{int(built.fixed.sum())} anchored ({built.cell_mm:.1f} mm cells). "
            "Choose a tool, turn on Use tool and work on the segment in the 3D view."
        )
        self._update_buttons()

    def _on_frame(self, frame: SimFrame) -> None:
        if frame.tool_force_n is None:
            self.force_label.setText("Tool force: – (no tool on the tissue)")
        else:
            f = frame.tool_force_n
            self.force_label.setText(
                f"Tool force ({frame.tool}): {np.linalg.norm(f):.3f} N "
                f"(L {f[0]:+.3f}, P {f[1]:+.3f}, S {f[2]:+.3f})"
            )
        self.displacement_label.setText(f"Max displacement: {frame.max_displacement_mm:.1f} mm")
        self.rate_label.setText(f"Solver: {frame.steps_per_second:.0f} steps/s, {frame.steps} steps")
        pins = len(self.session.pin_points_mm)
        self.pins_label.setText(
            f"Pins: {pins} point{'s' if pins != 1 else ''}, {frame.pinned_nodes} nodes held"
            if pins or frame.pinned_nodes
            else "Pins: none"
        )
        self.legend_label.setText(f"Colour: {self.session.legend()}")

    def _on_ended(self, reason: str) -> None:
        self.state_label.setText(f"Stopped ({reason}); the 3D view shows the case again")
        self.force_label.setText("Tool force: –")
        self.displacement_label.setText("Max displacement: –")
        self.rate_label.setText("Solver: –")
        self.pins_label.setText("Pins: none")
        self.legend_label.setText("")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.start_button.setEnabled(bool(self.segment_combo.currentText()))
        self.reset_button.setEnabled(self.session.running or self.session.building)
        for button in (self.export_button, self.clear_pins_button, self.lift_button):
            button.setEnabled(self.session.running)


def _is_default_anchor(name: str) -> bool:
    return any(word in name.lower() for word in DEFAULT_ANCHOR_WORDS)
