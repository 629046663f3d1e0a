"""A traced case over the cardiac cycle: the pulsatile reduced model on the case's network, and
its readings as JSON-ready rows (shared by the command line and the app)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from surgtwin.core.flow.case import FlowCase
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.pulsatile import PulsatileResult, Waveform, solve_pulsatile
from surgtwin.core.flow.reduced import PA_PER_MMHG
from surgtwin.core.progress import Progress

PLOT_SAMPLES = 100  # points of the time series in the JSON


def solve_case_pulsatile(
    case: FlowCase, waveform: Waveform, progress: Progress | None = None
) -> PulsatileResult:
    """The case's vessels under ``waveform``, with generic RCR outlets built from the steady
    model's outlet resistances at the waveform's mean flow."""
    return solve_pulsatile(
        case.network, waveform, None, case.viscosity_pa_s, case.density_kg_m3, progress=progress
    )


def read_waveform_csv(path: Path) -> Waveform:
    """A cycle from a text file of two columns, time (s) and flow (mL/s), comma or space
    separated; a header line and lines starting with # are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError(f"Cannot read the waveform {path}: {exc}") from exc
    times: list[float] = []
    flows: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").replace(";", " ").split()
        expected = f"{path}, line {number}: expected two numbers, time (s) and flow (mL/s)"
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not times:  # a header
                continue
            raise FlowError(expected) from None
        if len(values) != 2:
            raise FlowError(expected)
        times.append(values[0])
        flows.append(values[1] * 1e-6)
    return Waveform.from_samples(times, flows)


def pulsatile_summary(case: FlowCase, result: PulsatileResult, waveform: Waveform) -> dict[str, Any]:
    """Cycle readings: pressures as systolic/diastolic/mean, flows as mean/max/min, each
    stenosis' mean and peak drop, the Windkessels used, and a time series for plotting."""
    inlet = result.inlet_pressure_pa / PA_PER_MMHG
    every = max(1, len(result.times_s) // PLOT_SAMPLES)
    outlets = []
    for k, windkessel in result.windkessels.items():
        piece = case.pieces[k]
        outlets.append(
            {
                "branch": piece.branch,
                "position_lps_mm": case.tree.branches[piece.branch].points_lps[-1].round(2).tolist(),
                "flow_ml_s": spread(result.segment_flows_m3_s[:, k] * 1e6),
                "pressure_mmhg": _pressures(result.node_pressures_pa[:, k + 1] / PA_PER_MMHG),
                "windkessel": {
                    "proximal_pa_s_m3": windkessel.proximal,
                    "compliance_m3_pa": windkessel.compliance,
                    "distal_pa_s_m3": windkessel.distal,
                },
            }
        )
    stenoses = []
    for k, drop in result.stenosis_drops_pa.items():
        found = case.pieces[k].stenosis
        if found is None:
            continue
        proximal = result.node_pressures_pa[:, case.result.proximal_nodes[k]]
        distal = result.node_pressures_pa[:, k + 1]
        stenoses.append(
            {
                "branch": found.branch,
                "position_lps_mm": np.asarray(found.position_lps).round(2).tolist(),
                "pressure_drop_mmhg": {
                    "mean": float(drop.mean() / PA_PER_MMHG),
                    "peak": float(drop.max() / PA_PER_MMHG),
                },
                "pressure_ratio_mean": float(distal.mean() / proximal.mean()),
            }
        )
    return {
        "heart_rate_bpm": round(waveform.heart_rate_bpm, 2),
        "period_s": waveform.period_s,
        "cycles": result.cycles,
        "periodic": result.periodic,
        "solve_seconds": result.solve_seconds,
        "inflow_ml_s": spread(result.inflow_m3_s * 1e6),
        "inlet_pressure_mmhg": _pressures(inlet),
        "outlets": outlets,
        "stenoses": stenoses,
        "samples": {
            "time_s": result.times_s[::every].round(5).tolist(),
            "inflow_ml_s": (result.inflow_m3_s[::every] * 1e6).round(4).tolist(),
            "inlet_pressure_mmhg": inlet[::every].round(3).tolist(),
        },
    }


def spread(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "max": float(values.max()), "min": float(values.min())}


def _pressures(mmhg: np.ndarray) -> dict[str, float]:
    return {"systolic": float(mmhg.max()), "diastolic": float(mmhg.min()), "mean": float(mmhg.mean())}
