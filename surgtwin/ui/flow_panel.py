"""The flow panel: choose the vessel segments, the inlet and the inflow, compute the reduced
(0D) model of steady blood flow, read the outlets, stenoses and aneurysms, see pressure along
the centrelines (a plot, and the centreline tree coloured by pressure in the 3D view), and try
a virtual stent on every stenosis.

Nothing here edits the case: the centreline tree is an overlay actor of the 3D view, removed on
Clear, on a new case and when the panel closes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkLookupTable, vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkPolyLine
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

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
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.reduced import BLOOD_DENSITY_KG_M3, BLOOD_VISCOSITY_PA_S, PA_PER_MMHG
from surgtwin.ui.pressure_plot import PlotCurve, PressurePlot

TITLE = "Blood flow"
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
        self._actor_renderer: Any = None  # the vtkRenderer the actor was added to
        self._listed: set[str] = set()  # names already offered (defaults apply to new ones only)
        self._generation = 0  # bumped by a new case or Clear: a late result of the old one is dropped

        self.segment_list = QListWidget()
        self.segment_list.setMaximumHeight(110)
        self.inlet_edit = QLineEdit()
        self.inlet_edit.setPlaceholderText("X, Y, Z (LPS mm); empty: the widest end")
        self.inflow = _spin(0.0, 5000.0, 0.0, " mL/s", 1)
        self.inflow.setSpecialValueText("default (0.2 m/s mean)")  # 0 = the default rule
        self.viscosity_mpa_s = _spin(0.1, 100.0, BLOOD_VISCOSITY_PA_S * 1000.0, " mPa·s", 2)
        self.density = _spin(100.0, 5000.0, BLOOD_DENSITY_KG_M3, " kg/m³", 0)

        self.compute_button = QPushButton("Compute")
        self.compute_button.clicked.connect(self.compute)
        self.stent_button = QPushButton("Stent all")
        self.stent_button.setToolTip("Solve again with a virtual stent on every stenosis")
        self.stent_button.clicked.connect(self.stent_all)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)

        self.state_label = QLabel("Choose the vessel segments and press Compute")
        self.state_label.setWordWrap(True)
        self.legend_label = QLabel("")
        self.legend_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.plot = PressurePlot()

        form = QFormLayout()
        form.addRow("Vessel segments", self.segment_list)
        form.addRow("Inlet", self.inlet_edit)
        form.addRow("Inflow", self.inflow)
        form.addRow("Viscosity", self.viscosity_mpa_s)
        form.addRow("Density", self.density)
        buttons = QHBoxLayout()
        for button in (self.compute_button, self.stent_button, self.clear_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.state_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend_label)
        self.refresh()

    # --- the case -----------------------------------------------------------------------
    def set_scene(self, _scene: Any = None) -> None:
        """Another case is shown: its results and overlay go, its segments are listed."""
        self.clear()
        self._listed = set()
        self.refresh()

    def refresh(self) -> None:
        """List the case's segments (keeping the choices; new vessel-like names checked)."""
        names = segment_names(self.context.scene)
        checked = set(self.chosen_segments())
        self.segment_list.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = name in checked or (name not in self._listed and is_vessel_name(name))
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.segment_list.addItem(item)
        self._listed = set(names)
        self._update_buttons()

    def close_session(self) -> None:
        """The window closes or the panel goes: take the overlay out of the 3D view."""
        self.clear()

    # --- choices --------------------------------------------------------------------------
    def chosen_segments(self) -> list[str]:
        items = (self.segment_list.item(i) for i in range(self.segment_list.count()))
        return [it.text() for it in items if it.checkState() == Qt.CheckState.Checked]

    def set_segments(self, names: list[str]) -> None:
        for i in range(self.segment_list.count()):
            item = self.segment_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

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

    def clear(self) -> None:
        """Forget the result: table, plot and the 3D overlay."""
        self._generation += 1
        self.case = None
        self.table.setRowCount(0)
        self.plot.clear()
        self.legend_label.setText("")
        self._remove_actor()
        self.state_label.setText("Choose the vessel segments and press Compute")
        self._update_buttons()

    # --- results ----------------------------------------------------------------------------
    def _show(self, case: FlowCase) -> None:
        self.case = case
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
        actor = _centreline_actor([b.points_lps for b in case.tree.branches], pressures_mmhg)
        scene_renderer.renderer.AddActor(actor)
        self.centreline_actor, self._actor_renderer = actor, scene_renderer.renderer
        low = min(float(p.min()) for p in pressures_mmhg)
        high = max(float(p.max()) for p in pressures_mmhg)
        self.legend_label.setText(f"3D centrelines by pressure: blue {low:.2f} → red {high:.2f} mmHg")
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

    def _update_buttons(self) -> None:
        self.compute_button.setEnabled(self.segment_list.count() > 0)
        self.stent_button.setEnabled(self.case is not None and bool(self.case.stenoses))
        self.clear_button.setEnabled(self.case is not None)


def _centreline_actor(branches: list[np.ndarray], pressures_mmhg: list[np.ndarray]) -> vtkActor:
    """One polyline per branch, its points coloured by pressure (blue low, red high)."""
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.concatenate(branches).astype(np.float64), deep=True))
    lines = vtkCellArray()
    start = 0
    for branch in branches:
        line = vtkPolyLine()
        ids = line.GetPointIds()
        ids.SetNumberOfIds(len(branch))
        for n in range(len(branch)):
            ids.SetId(n, start + n)
        lines.InsertNextCell(line)
        start += len(branch)
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetLines(lines)
    values = np.concatenate(pressures_mmhg)
    scalars = numpy_to_vtk(values.astype(np.float64), deep=True)
    scalars.SetName("pressure_mmhg")
    poly.GetPointData().SetScalars(scalars)
    lut = vtkLookupTable()
    lut.SetHueRange(0.667, 0.0)
    lut.Build()
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(poly)
    mapper.SetLookupTable(lut)
    mapper.SetScalarRange(float(values.min()), max(float(values.max()), float(values.min()) + 1e-6))
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.SetPickable(False)  # an overlay: picks go to the case's meshes
    prop = actor.GetProperty()
    prop.SetLineWidth(CENTRELINE_WIDTH_PX)
    prop.SetRenderLinesAsTubes(True)
    return actor


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _lps(position: list[float]) -> str:
    return "({:.1f}, {:.1f}, {:.1f}) mm".format(*position)


def _cell(text: str) -> QTableWidgetItem:
    return QTableWidgetItem(text)


def _spin(low: float, high: float, value: float, suffix: str, decimals: int) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin
