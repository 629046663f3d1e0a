"""The flow panel's *cardiac cycle* tab: the computed case's reduced model over one heartbeat
(generic inflow waveform at the chosen heart rate, RCR Windkessel outlets;
:mod:`surgtwin.core.flow.pulsatile`), solved on a worker. It shows the inlet's systolic,
diastolic and mean pressure, each stenosis' mean and peak drop, and a plot of pressure over the
cycle at the inlet and at every outlet."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from surgtwin.core.flow.case import FlowCase
from surgtwin.core.flow.case_pulsatile import pulsatile_summary, solve_case_pulsatile
from surgtwin.core.flow.pulsatile import PulsatileResult, Waveform
from surgtwin.core.flow.reduced import PA_PER_MMHG
from surgtwin.ui.pressure_plot import PlotCurve, PressurePlot
from surgtwin.ui.spin_boxes import number_box

TITLE = "Cardiac cycle"
IDLE_TEXT = "Compute the flow first; then solve it over a heartbeat"


class CardiacCycleBox(QWidget):
    """``context``: the window (ToolContext) whose ``run_task`` runs the solve."""

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cardiac_cycle_box")
        self.context = context
        self.case: FlowCase | None = None
        self.summary: dict[str, Any] | None = None  # the last cycle solved (pulsatile_summary)
        self._generation = 0  # a new case or Clear: a late result of the old one is dropped
        self.heart_rate = number_box(20.0, 300.0, 70.0, " beats/min", 0)
        self.solve_button = QPushButton("Solve cycle")
        self.solve_button.setToolTip(
            "The reduced model over one heartbeat: a generic inflow waveform with the computed mean "
            "flow, Windkessel (RCR) outlets"
        )
        self.solve_button.clicked.connect(self.solve)
        self.readings = QLabel(IDLE_TEXT)
        self.readings.setWordWrap(True)
        self.plot = PressurePlot(x_label="time in the cycle (ms)", empty_text="No cycle solved")
        row = QHBoxLayout()
        row.addWidget(QLabel("Heart rate"))
        row.addWidget(self.heart_rate)
        row.addWidget(self.solve_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.readings)
        layout.addWidget(self.plot, 1)
        self.set_case(None)

    def set_case(self, case: FlowCase | None) -> None:
        """The flow panel computed ``case`` (None: cleared); any cycle shown belonged to the old one."""
        self._generation += 1
        self.case, self.summary = case, None
        self.readings.setText(IDLE_TEXT if case is None else "Press Solve cycle")
        self.plot.clear()
        self.solve_button.setEnabled(case is not None)

    def solve(self) -> bool:
        if self.case is None:
            return False
        case, rate, generation = self.case, self.heart_rate.value(), self._generation

        def work(progress: Any) -> tuple[PulsatileResult, dict[str, Any]] | BaseException:
            try:
                waveform = Waveform.generic(case.network.inflow_m3_s, heart_rate_bpm=rate)
                result = solve_case_pulsatile(case, waveform, progress)  # cancellable between cycles
                return result, pulsatile_summary(case, result, waveform)
            except Exception as exc:  # noqa: BLE001 - FlowError, cancelled, ...: done() tells it
                return exc

        def done(outcome: tuple[PulsatileResult, dict[str, Any]] | BaseException) -> None:
            if generation != self._generation:
                return  # a new case or Clear meanwhile: the result is stale
            if isinstance(outcome, BaseException):
                self.readings.setText("Press Solve cycle")
                self.context.report_error(TITLE, outcome)
                return
            self._show(*outcome)

        if not self.context.run_task(TITLE, work, done):
            self.readings.setText("Busy with another task; try again when it has finished")
            return False
        self.readings.setText("Solving over the cardiac cycle…")
        return True

    def _show(self, result: PulsatileResult, summary: dict[str, Any]) -> None:
        self.summary = summary
        inlet = summary["inlet_pressure_mmhg"]
        lines = [
            f"Inlet {inlet['systolic']:.0f}/{inlet['diastolic']:.0f} mmHg (mean {inlet['mean']:.0f}) at "
            f"{summary['heart_rate_bpm']:.0f} beats/min; inflow peak {summary['inflow_ml_s']['max']:.1f} mL/s"
            + ("" if summary["periodic"] else f" (NOT periodic after {summary['cycles']} cycles)")
        ]
        for row in summary["stenoses"]:
            drop = row["pressure_drop_mmhg"]
            lines.append(
                f"Stenosis on branch {row['branch']}: drop {drop['mean']:.1f} mmHg on average, "
                f"{drop['peak']:.1f} at peak"
            )
        self.readings.setText("\n".join(lines))
        milliseconds = result.times_s * 1000.0
        curves = [PlotCurve("inlet", milliseconds, result.inlet_pressure_pa / PA_PER_MMHG)]
        for n, outlet in enumerate(summary["outlets"]):
            segment = list(result.windkessels)[n]
            pressure = result.node_pressures_pa[:, segment + 1] / PA_PER_MMHG
            curves.append(PlotCurve(f"outlet {n + 1} (branch {outlet['branch']})", milliseconds, pressure))
        self.plot.set_curves(curves)
