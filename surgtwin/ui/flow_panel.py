"""The flow panel: choose the vessel segments, the inlet and the inflow, compute the reduced
(0D) model of steady blood flow, read the outlets, stenoses and aneurysms, see pressure along
the centrelines (a plot, and the centreline tree coloured by pressure in the 3D view), and try
a virtual stent on every stenosis. Then *Run 3D*: the lattice-Boltzmann preview of the same
vessel in the background (progress, cancel); its numbers join the table, its pressure along the
centreline joins the plot (dashed), and the 3D view colours the vessel surfaces by wall shear
stress, pressure or speed and draws streamlines (:mod:`surgtwin.ui.flow3d_overlay`). The plot's
second tab solves the computed case over a heartbeat (:mod:`surgtwin.ui.cycle_box`).

Nothing here edits the case: the centreline tree, the streamlines and the coloured surfaces are
view overlays, removed on Clear, on a new case and when the panel closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from vtkmodules.vtkRenderingCore import vtkActor

from surgtwin.core.deform.setup import segment_names
from surgtwin.core.flow.case import (
    FlowCase,
    aneurysm_rows,
    branch_pressures_pa,
    is_vessel_name,
    outlet_rows,
    pressure_paths,
    solve_case,
    solve_stented,
    stenosis_rows,
    vessel_mask,
)
from surgtwin.core.flow.case3d import DEFAULT_MAX_CELLS, unresolved_note
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.reduced import BLOOD_DENSITY_KG_M3, BLOOD_VISCOSITY_PA_S, PA_PER_MMHG
from surgtwin.ui.cycle_box import CardiacCycleBox
from surgtwin.ui.flow3d_overlay import (
    MODE_LABELS,
    Flow3DOverlay,
    Flow3DResult,
    polyline_actor,
    rainbow,
    run_3d,
    sample_surface,
    snapshot_surfaces,
    vessel_mesh_ids,
)
from surgtwin.ui.name_checklist import NameChecklist
from surgtwin.ui.pressure_plot import PlotCurve, PressurePlot
from surgtwin.ui.spin_boxes import count_box, number_box

TITLE = "Blood flow"
TITLE_3D = "3D blood flow"
DEFAULT_MAX_STEPS = 40_000
COLUMNS = ("Item", "Branch", "Flow (mL/s)", "Stented (mL/s)", "Drop (mmHg)", "Details")
FLOW_COLUMN, STENTED_COLUMN, DROP_COLUMN = 2, 3, 4
CENTRELINE_WIDTH_PX = 4.0


class FlowPanel(QWidget):
    """Dock widget content. ``context``: the window (ToolContext); ``view``: its View3D."""

    def __init__(self, context: Any, view: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("flow_panel")
        self.context = context
        self.view = view
        self.case: FlowCase | None = None
        self.centreline_actor: vtkActor | None = None
        self._centreline_legend = ""
        self._actor_renderer: Any = None  # the vtkRenderer the actor was added to
        self._generation = 0  # bumped by a new case or Clear: a late result of the old one is dropped
        # the vessel the reduced case was traced on: (mask, ijk_to_lps, segment names); the 3D run uses it
        self._vessel: tuple[np.ndarray, np.ndarray, list[str]] | None = None
        self.flow3d: Flow3DResult | None = None
        self.running_3d = False
        self._cancel_run: Callable[[], None] | None = None  # stops the 3D run under way
        self.overlay = Flow3DOverlay(view)

        self.segment_list = NameChecklist(is_vessel_name)
        self.segment_list.setMaximumHeight(110)
        self.inlet_edit = QLineEdit()
        self.inlet_edit.setPlaceholderText("X, Y, Z (LPS mm); empty: the widest end")
        self.inflow = number_box(0.0, 5000.0, 0.0, " mL/s", 1)
        self.inflow.setSpecialValueText("default (0.2 m/s mean)")  # 0 = the default rule
        self.viscosity_mpa_s = number_box(0.1, 100.0, BLOOD_VISCOSITY_PA_S * 1000.0, " mPa·s", 2)
        self.density = number_box(100.0, 5000.0, BLOOD_DENSITY_KG_M3, " kg/m³", 0)

        self.compute_button = QPushButton("Compute")
        self.compute_button.clicked.connect(self.compute)
        self.stent_button = QPushButton("Stent all")
        self.stent_button.setToolTip("Solve again with a virtual stent on every stenosis")
        self.stent_button.clicked.connect(self.stent_all)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)

        self.cell_mm = number_box(0.0, 10.0, 0.0, " mm", 2)
        self.cell_mm.setSingleStep(0.1)
        self.cell_mm.setSpecialValueText("auto")  # 0 = the core's choice within the cell budget
        self.max_cells = count_box(1_000, 50_000_000, DEFAULT_MAX_CELLS, 10_000)
        self.max_steps = count_box(100, 10_000_000, DEFAULT_MAX_STEPS, 1_000)
        self.run3d_button = QPushButton("Run 3D")
        self.run3d_button.setToolTip(
            "Lattice-Boltzmann flow in the vessel, in the background (seconds to minutes)"
        )
        self.run3d_button.clicked.connect(self.run_3d)
        self.colour_by = QComboBox()
        for mode, label in MODE_LABELS.items():
            self.colour_by.addItem(label, mode)
        self.colour_by.currentIndexChanged.connect(
            lambda _index: self.set_colour_by(self.colour_by.currentData())
        )
        self.streamlines_box = QCheckBox("Streamlines")
        self.streamlines_box.toggled.connect(self.set_streamlines)

        self.state_label = QLabel("Choose the vessel segments and press Compute")
        self.state_label.setWordWrap(True)
        self.legend_label = QLabel("")
        self.legend_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.plot = PressurePlot()
        self.cycle_box = CardiacCycleBox(context)
        self.plot_tabs = QTabWidget()
        self.plot_tabs.addTab(self.plot, "Along the centreline")
        self.plot_tabs.addTab(self.cycle_box, "Cardiac cycle")

        form = QFormLayout()
        form.addRow("Vessel segments", self.segment_list)
        form.addRow("Inlet", self.inlet_edit)
        form.addRow("Inflow", self.inflow)
        form.addRow("Viscosity", self.viscosity_mpa_s)
        form.addRow("Density", self.density)
        buttons = QHBoxLayout()
        for button in (self.compute_button, self.stent_button, self.clear_button):
            buttons.addWidget(button)
        box_3d = QGroupBox("3D preview (lattice Boltzmann)")
        grid_3d = QGridLayout(box_3d)  # two rows: the dock is short and the table needs the room
        for column, (label, widget) in enumerate(
            (("Cell", self.cell_mm), ("Max cells", self.max_cells), ("Max steps", self.max_steps))
        ):
            grid_3d.addWidget(QLabel(label), 0, 2 * column)
            grid_3d.addWidget(widget, 0, 2 * column + 1)
        grid_3d.addWidget(self.run3d_button, 1, 0, 1, 2)
        grid_3d.addWidget(QLabel("Colour by"), 1, 2)
        grid_3d.addWidget(self.colour_by, 1, 3)
        grid_3d.addWidget(self.streamlines_box, 1, 4, 1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(box_3d)
        layout.addWidget(self.state_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.plot_tabs, 1)
        layout.addWidget(self.legend_label)
        self.refresh()

    # --- the case -----------------------------------------------------------------------
    def set_scene(self, _scene: Any = None) -> None:
        """Another case is shown: its results and overlay go, its segments are listed."""
        self.clear()
        self.segment_list.forget()
        self.refresh()

    def refresh(self) -> None:
        """List the case's segments (keeping the choices; new vessel-like names checked)."""
        self.segment_list.fill(segment_names(self.context.scene))
        self._update_buttons()

    def close_session(self) -> None:
        """The window closes or the panel goes: take the overlay out of the 3D view."""
        self.clear()

    # --- choices --------------------------------------------------------------------------
    def chosen_segments(self) -> list[str]:
        return self.segment_list.ticked()

    def set_segments(self, names: list[str]) -> None:
        self.segment_list.set_ticked(names)

    def inlet_lps(self) -> np.ndarray | None:
        """The typed inlet point, None when empty; FlowError when it is not three numbers."""
        text = self.inlet_edit.text().strip()
        if not text:
            return None
        try:
            values = [float(v) for v in text.replace(";", ",").split(",")]
        except ValueError:
            values = []
        if len(values) != 3 or not np.all(np.isfinite(values)):
            raise FlowError(f"The inlet {text!r} is not a point: type X, Y, Z in LPS millimetres.")
        return np.array(values)

    def inflow_ml_s(self) -> float | None:
        return self.inflow.value() if self.inflow.value() > 0 else None

    # --- actions --------------------------------------------------------------------------
    def compute(self) -> bool:
        """Trace and solve on a worker (the mask is gathered here, on the GUI thread)."""
        try:
            inlet = self.inlet_lps()
            mask, ijk_to_lps = vessel_mask(self.context.scene, self.chosen_segments())
        except Exception as exc:  # noqa: BLE001 - a bad choice: told, nothing started
            self.context.report_error(TITLE, exc)
            return False
        inflow, viscosity = self.inflow_ml_s(), self.viscosity_mpa_s.value() / 1000.0
        density, generation = self.density.value(), self._generation

        names = self.chosen_segments()

        def work(_progress: Any) -> FlowCase:
            return solve_case(
                mask,
                ijk_to_lps,
                inlet_lps=inlet,
                inflow_ml_s=inflow,
                viscosity_pa_s=viscosity,
                density_kg_m3=density,
            )

        def done(case: FlowCase) -> None:
            if generation == self._generation:
                self._vessel = (mask, ijk_to_lps, names)
                self._show(case)

        if not self.context.run_task(TITLE, work, done):
            self.state_label.setText("Busy with another task; try again when it has finished")
            return False
        self.state_label.setText("Tracing the centrelines and solving…")
        return True

    def stent_all(self) -> bool:
        """Solve again with every stenosis stented (sub-millisecond: done here)."""
        if self.case is None or not self.case.stenoses:
            return False
        try:
            stented = solve_stented(self.case)
        except Exception as exc:  # noqa: BLE001 - shown as a dialog; the first result stays
            self.context.report_error(TITLE, exc)
            return False
        for row, outlet in enumerate(outlet_rows(self.case, stented)):
            self.table.setItem(row, STENTED_COLUMN, _cell(f"{outlet['flow_ml_s']:.2f}"))
        self.state_label.setText(
            self._summary() + f"; stented: inlet pressure {stented.inlet_pressure_pa / PA_PER_MMHG:.2f} mmHg"
        )
        self._update_buttons()
        return True

    # --- the 3D preview ---------------------------------------------------------------------
    def run_3d(self) -> bool:
        """Run the lattice-Boltzmann preview of the computed case on a worker (progress, cancel)."""
        if self.case is None or self._vessel is None or self.running_3d:
            return False
        case, (mask, ijk_to_lps, names) = self.case, self._vessel
        try:
            surfaces = snapshot_surfaces(self.context.scene, vessel_mesh_ids(self.context.scene, names))
        except Exception as exc:  # noqa: BLE001 - a mesh that cannot be read: told, nothing started
            self.context.report_error(TITLE_3D, exc)
            return False
        options = {
            "cell_mm": self.cell_mm.value() or None,
            "max_cells": self.max_cells.value(),
            "max_steps": self.max_steps.value(),
        }
        generation = self._generation
        stop, started = threading.Event(), list[Any]()

        def cancel() -> None:  # from Clear, a new case or closing: the run's own Cancel is its dialog
            stop.set()
            for progress in started:
                progress.cancel()

        def work(progress: Any) -> Flow3DResult | BaseException:
            started.append(progress)
            if stop.is_set():
                progress.cancel()
            try:
                return run_3d(case, mask, ijk_to_lps, surfaces, progress, **options)
            except Exception as exc:  # noqa: BLE001 - FlowError, cancelled, ...: done() reports it
                return exc

        def done(result: Flow3DResult | BaseException) -> None:
            if generation != self._generation:
                return  # cleared, recomputed or another case meanwhile: the result is stale
            self.running_3d, self._cancel_run = False, None
            if isinstance(result, BaseException):
                self.state_label.setText(self._summary() + "; the 3D run did not complete")
                self._update_buttons()
                self.context.report_error(TITLE_3D, result)
                return
            self._show_3d(result)

        if not self.context.run_task(TITLE_3D, work, done):
            self.state_label.setText("Busy with another task; try again when it has finished")
            return False
        self.running_3d, self._cancel_run = True, cancel
        self.state_label.setText("Running the 3D flow…")
        self._update_buttons()
        return True

    def set_colour_by(self, mode: str) -> None:
        """Colour the vessel surfaces by "wss", "pressure" or "speed" of the 3D result ("none": off)."""
        index = self.colour_by.findData(mode)
        if index < 0:
            raise ValueError(f"colour by one of {', '.join(MODE_LABELS)}, not {mode!r}")
        if self.colour_by.currentIndex() != index:
            self.colour_by.setCurrentIndex(index)  # comes back here through the signal
            return
        if self.flow3d is None or mode == "none":
            self.overlay.clear_surfaces()
        else:
            values: dict[str, np.ndarray] | None
            try:
                values = self._surface_values(mode)
            except Exception as exc:  # noqa: BLE001 - a mesh the fields cannot be read on: told
                self.overlay.clear_surfaces()
                self.context.report_error(TITLE_3D, exc)
                values = None
            if values is not None and not self.overlay.colour_surfaces(mode, values):
                self.context.set_status(
                    "No surface mesh of the vessel segments is shown in the 3D view: build their meshes first"
                )
        self._update_legend()

    def set_streamlines(self, on: bool) -> None:
        if self.streamlines_box.isChecked() != on:
            self.streamlines_box.setChecked(on)  # comes back here through the signal
            return
        if on and self.flow3d is not None:
            self.overlay.show_streamlines(self.flow3d.streamlines)
        else:
            self.overlay.clear_streamlines()
        self._update_legend()

    def _surface_values(self, mode: str) -> dict[str, np.ndarray]:
        """Per vessel mesh, the values to colour it by: those computed with the run, or (for a mesh
        rebuilt since) sampled now from the kept fields."""
        assert self.flow3d is not None and self._vessel is not None
        scene = self.context.scene
        values = {}
        for shot in snapshot_surfaces(scene, vessel_mesh_ids(scene, self._vessel[2])):
            sample = self.flow3d.surfaces.get(shot.mesh_id)
            if sample is None or sample.vertex_count != len(shot.vertices_lps):
                sample = sample_surface(self.flow3d.flow, shot.vertices_lps, shot.normals_lps)
                self.flow3d.surfaces[shot.mesh_id] = sample
            values[shot.mesh_id] = sample.values(mode)
        return values

    def _show_3d(self, result: Flow3DResult) -> None:
        self.flow3d = result
        self._fill_3d_rows(result)
        self._plot_3d(result)
        info = result.summary
        self.state_label.setText(
            self._summary()
            + f"; 3D: {info['cells']:,} cells, {info['steps']:,} steps"
            + ("" if info["converged"] else f" (not converged: {_averaged(info)})")
            + f" ({info['seconds']:.1f} s)"
            + "".join(f"; {note}" for note in result.notes)
        )
        if self.colour_by.currentData() != "none":
            self.set_colour_by(self.colour_by.currentData())
        if self.streamlines_box.isChecked():
            self.set_streamlines(True)
        self._update_buttons()

    def _fill_3d_rows(self, result: Flow3DResult) -> None:
        case = self.case
        assert case is not None
        info = result.summary
        rows: list[tuple[str, ...]] = [
            (
                "3D run",
                "",
                "",
                "",
                "",
                f"{info['cells']:,} cells of {info['cell_size_mm']:.2f} mm, {info['steps']:,} steps, "
                f"{info['mlups']:.2f} MLUPS, "
                + ("converged" if info["converged"] else f"not converged: {_averaged(info)}"),
            ),
            (
                "3D velocity",
                "",
                "",
                "",
                "",
                f"max {info['max_velocity_m_s']:.3f} m/s, "
                f"mass imbalance {info['mass_imbalance_percent']:.2f} %",
            ),
        ]
        for row in result.ends:
            prescribed = row["prescribed_flow_ml_s"]
            how = "pressure outlet (0 Pa)" if prescribed is None else f"prescribed {prescribed:.2f} mL/s"
            drop = row.get("pressure_drop_mmhg")
            rows.append(
                (
                    f"3D {row['end']}",
                    str(row["branch"]),
                    f"{row['flow_ml_s']:.2f}",
                    "",
                    "" if drop is None else f"{drop:.2f}",
                    f"{how}, mean pressure {row['pressure_pa'] / PA_PER_MMHG:.2f} mmHg",
                )
            )
        reduced = _young_tsai_drops_pa(case)
        cell_mm = result.flow.grid.cell_mm
        for stenosis, drop_pa, young_tsai_pa in zip(
            case.stenoses, result.stenosis_drops_pa, reduced, strict=True
        ):
            rows.append(
                (
                    "3D stenosis",
                    str(stenosis.branch),
                    "",
                    "",
                    f"{drop_pa / PA_PER_MMHG:.2f}",
                    f"3D {drop_pa / PA_PER_MMHG:.2f} mmHg against Young–Tsai "
                    f"{young_tsai_pa / PA_PER_MMHG:.2f} mmHg "
                    f"({100.0 * stenosis.area_reduction:.0f} % area)"
                    + (f"; {note}" if (note := unresolved_note(case, stenosis, cell_mm)) else ""),
                )
            )
        self._remove_3d_rows()
        first = self.table.rowCount()
        self.table.setRowCount(first + len(rows))
        for r, values in enumerate(rows, start=first):
            for c, value in enumerate(values):
                self.table.setItem(r, c, _cell(value))
        self.table.resizeColumnsToContents()

    def _remove_3d_rows(self) -> None:
        for r in reversed(range(self.table.rowCount())):
            item = self.table.item(r, 0)
            if item is not None and item.text().startswith("3D "):
                self.table.removeRow(r)

    def _plot_3d(self, result: Flow3DResult) -> None:
        """The 3D pressure along each inlet→outlet path, dashed in its reduced curve's colour."""
        case = self.case
        assert case is not None
        curves = []
        for n, path in enumerate(pressure_paths(case)):
            branches = case.tree.path_to(path.outlet_branch)
            pressure = np.concatenate([result.branch_pressures_pa[b] for b in branches]) / PA_PER_MMHG
            keep = np.isfinite(pressure)  # points off the lattice (beyond the cut ends) have none
            curves.append(
                PlotCurve(
                    f"outlet {n + 1} (3D)",
                    path.distance_mm[keep],
                    pressure[keep],
                    dashed=True,
                    colour_index=n,
                )
            )
        self.plot.remove_dashed()
        self.plot.add_curves(curves)

    def _clear_3d(self) -> None:
        self.flow3d = None
        if self._cancel_run is not None:  # its late answer (cancelled) is dropped: a newer generation
            self._cancel_run()
        self.running_3d, self._cancel_run = False, None
        self.overlay.clear()
        self._remove_3d_rows()
        self.plot.remove_dashed()
        for widget in (self.colour_by, self.streamlines_box):
            widget.blockSignals(True)
        self.colour_by.setCurrentIndex(0)
        self.streamlines_box.setChecked(False)
        for widget in (self.colour_by, self.streamlines_box):
            widget.blockSignals(False)
        self._update_legend()

    def clear(self) -> None:
        """Forget the result: table, plot and the 3D overlays."""
        self._generation += 1
        self.case = self._vessel = None
        self.table.setRowCount(0)
        self.plot.clear()
        self.cycle_box.set_case(None)
        self.legend_label.setText("")
        self._remove_actor()
        self._clear_3d()
        self.state_label.setText("Choose the vessel segments and press Compute")
        self._update_buttons()

    # --- results ----------------------------------------------------------------------------
    def _show(self, case: FlowCase) -> None:
        self._clear_3d()  # a 3D result belongs to the case it was run on
        self.case = case
        self.cycle_box.set_case(case)
        self._fill_table(case)
        self.plot.set_curves(
            [
                PlotCurve(f"outlet {n + 1}", p.distance_mm, p.pressure_mmhg, p.stenoses_mm)
                for n, p in enumerate(pressure_paths(case))
            ]
        )
        self._show_centrelines(case)
        self.state_label.setText(self._summary())
        self._update_buttons()

    def _summary(self) -> str:
        case = self.case
        assert case is not None
        text = (
            f"{len(case.tree.branches)} branches, inflow {case.inflow_ml_s:.1f} mL/s, inlet pressure "
            f"{case.result.inlet_pressure_pa / PA_PER_MMHG:.2f} mmHg, "
            f"{_count(len(case.stenoses), 'stenosis', 'stenoses')}, "
            f"{_count(len(case.aneurysms), 'aneurysm', 'aneurysms')} ({case.seconds:.2f} s)"
        )
        return "; ".join([text, *case.tree.notes])

    def _fill_table(self, case: FlowCase) -> None:
        rows: list[tuple[str, ...]] = []
        for n, row in enumerate(outlet_rows(case)):
            rows.append(
                (
                    f"Outlet {n + 1}",
                    str(row["branch"]),
                    f"{row['flow_ml_s']:.2f}",
                    "",
                    f"{row['pressure_drop_mmhg']:.2f}",
                    "end at " + _lps(row["position_lps_mm"]),
                )
            )
        for row in stenosis_rows(case):
            rows.append(
                (
                    "Stenosis",
                    str(row["branch"]),
                    "",
                    "",
                    f"{row['pressure_drop_mmhg']:.2f}",
                    f"{row['area_reduction_percent']:.0f} % area, "
                    f"pressure ratio {row['pressure_ratio']:.3f}, at {_lps(row['position_lps_mm'])}",
                )
            )
        for row in aneurysm_rows(case):
            rows.append(
                (
                    "Aneurysm",
                    str(row["branch"]),
                    "",
                    "",
                    "",
                    f"dilation {row['dilation_percent']:.0f} % (r {row['max_radius_mm']:.1f} mm against "
                    f"{row['reference_radius_mm']:.1f}), at {_lps(row['position_lps_mm'])}",
                )
            )
        self.table.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                self.table.setItem(r, c, _cell(value))
        self.table.resizeColumnsToContents()

    # --- the 3D overlay ---------------------------------------------------------------------
    def _show_centrelines(self, case: FlowCase) -> None:
        self._remove_actor()
        scene_renderer = getattr(self.view, "scene_renderer", None)
        if scene_renderer is None:
            return
        pressures_mmhg = [p / PA_PER_MMHG for p in branch_pressures_pa(case)]
        low = min(float(p.min()) for p in pressures_mmhg)
        high = max(float(p.max()) for p in pressures_mmhg)
        actor = polyline_actor(
            [b.points_lps for b in case.tree.branches],
            np.concatenate(pressures_mmhg),
            rainbow(),
            (low, max(high, low + 1e-6)),
            CENTRELINE_WIDTH_PX,
        )
        scene_renderer.renderer.AddActor(actor)
        self.centreline_actor, self._actor_renderer = actor, scene_renderer.renderer
        self._centreline_legend = f"3D centrelines by pressure: blue {low:.2f} → red {high:.2f} mmHg"
        self._update_legend()
        self._redraw()

    def _remove_actor(self) -> None:
        if self.centreline_actor is not None and self._actor_renderer is not None:
            self._actor_renderer.RemoveActor(self.centreline_actor)
            self._redraw()
        self.centreline_actor = self._actor_renderer = None

    def _redraw(self) -> None:
        interactor = getattr(self.view, "interactor", None)
        if interactor is not None and self.view.isVisible():
            interactor.render()

    def _update_legend(self) -> None:
        centreline = self._centreline_legend if self.centreline_actor is not None else ""
        self.legend_label.setText("\n".join(t for t in (centreline, self.overlay.legend()) if t))

    def _update_buttons(self) -> None:
        self.compute_button.setEnabled(self.segment_list.count() > 0)
        self.stent_button.setEnabled(self.case is not None and bool(self.case.stenoses))
        self.clear_button.setEnabled(self.case is not None)
        self.run3d_button.setEnabled(
            self.case is not None and self._vessel is not None and not self.running_3d
        )
        self.colour_by.setEnabled(self.flow3d is not None)
        self.streamlines_box.setEnabled(self.flow3d is not None)


def _young_tsai_drops_pa(case: FlowCase) -> list[float]:
    """The reduced model's (Young–Tsai) drop across each of ``case.stenoses``, in that order."""
    by_segment = {s.segment_index: s.pressure_drop_pa for s in case.result.stenoses}
    drops = []
    for stenosis in case.stenoses:
        index = next((i for i, piece in enumerate(case.pieces) if piece.stenosis is stenosis), None)
        drops.append(by_segment.get(index, float("nan")) if index is not None else float("nan"))
    return drops


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _lps(position: list[float]) -> str:
    return "({:.1f}, {:.1f}, {:.1f}) mm".format(*position)


def _averaged(info: dict) -> str:
    steps = info.get("averaged_over_steps", 0)
    return f"readings are the mean of the last {steps:,} steps" if steps else "readings of the last step"


def _cell(text: str) -> QTableWidgetItem:
    return QTableWidgetItem(text)
