"""The 3D preview over the cardiac cycle: the lattice's inflow follows a waveform, and every
outlet but the largest follows the pulsatile reduced model's flow through it
(:mod:`surgtwin.core.flow.pulsatile`, RCR outlets); the largest holds the reference pressure.

The time step is sized on the waveform's peak. The run lasts whole cycles (the first washes out
the start from rest); every chunk of steps records each end's flow and pressure, and the last
cycle is returned as time series (:class:`CycleRecord`) with the fields averaged over it
(the cycle-mean flow, not the flow at the mean inflow: the losses grow faster than the flow).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from surgtwin.core.flow.case import FlowCase
from surgtwin.core.flow.case3d import (
    DEFAULT_MAX_CELLS,
    EndProbe,
    Flow3D,
    lattice_domain,
    lattice_setup,
    outlet_segments,
)
from surgtwin.core.flow.case_pulsatile import solve_case_pulsatile, spread
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.lbm import LbmSetup, LbmSolver, run
from surgtwin.core.flow.lumen import LumenDomain
from surgtwin.core.flow.pulsatile import PulsatileResult, Waveform
from surgtwin.core.flow.reduced import PA_PER_MMHG
from surgtwin.core.progress import Progress

CHUNKS_PER_CYCLE = 200  # the waveform is applied, and the ends read, once per chunk of steps
MAX_CHUNK_STEPS = 100
DEFAULT_CYCLES = 2


@dataclass(frozen=True)
class CycleRecord:
    """The last cycle of a pulsatile 3D run, one sample per chunk of steps."""

    times_s: np.ndarray  # (n,) from the start of the last cycle
    end_names: tuple[str, ...]
    flows_m3_s: np.ndarray  # (n, ends): into the vessel at the inlet, out of it at the outlets
    pressures_pa: np.ndarray  # (n, ends): mean on each end's flux plane, gauge (reference outlet 0)
    cycles: int
    steps_per_cycle: int
    period_s: float
    peak_factor: float  # the largest systolic peak over steady flow of any segment (sizes the step)
    corrections: dict[str, float]  # per velocity end: the scale its boundary needed to deliver its flow


class CycleDriver:
    """The run's control, called after each chunk of steps: records the ends, then sets the
    next chunk's inflow from the waveform and each flow-holding outlet's flow from the reduced
    model's pulsatile solution (as gains on the steady flows the boundaries were built with).
    A velocity boundary on a staircased cut delivers a few per cent more or less than it is
    given, so after every cycle each such end's gains are scaled by its wanted over measured
    mean flow, as the steady run's controller does continuously. The first chunk runs at the
    mean flow; the first cycle, discarded, washes that out and calibrates."""

    def __init__(
        self, domain: LumenDomain, setup: LbmSetup, case: FlowCase, reduced: PulsatileResult, chunk: int
    ) -> None:
        self.setup, self.chunk = setup, chunk
        self.probe = EndProbe(domain)
        self._flux_scale = setup.velocity_scale * setup.dx_m**2  # m³/s per lattice flux unit
        outlet_segment = outlet_segments(case)
        period = reduced.times_s[-1]
        self._profiles: list[tuple[slice, np.ndarray, np.ndarray]] = []  # span, times, gain
        self._ends: list[tuple[int, float]] = []  # per profile: its end's index, its steady flow
        for n, (end, span) in enumerate(zip(domain.ends, self.probe.spans, strict=True)):
            if end.flow_m3_s is None:
                continue  # the pressure outlet takes what is left
            if end.name == "inlet":
                flows = reduced.inflow_m3_s
            else:
                flows = reduced.segment_flows_m3_s[:, outlet_segment[end.name]]
            # periodic: the reduced model's samples end at one period; prepend t = 0
            times = np.concatenate([[0.0], reduced.times_s])
            gains = np.concatenate([[flows[-1]], flows]) / end.flow_m3_s
            self._profiles.append((span, times, gains))
            self._ends.append((n, end.flow_m3_s))
        self.correction = np.ones(len(self._profiles))
        self._wanted = np.zeros(len(self._profiles))  # this cycle's sums, m³/s
        self._measured = np.zeros(len(self._profiles))
        self._applied = np.ones(len(self._profiles))  # the running chunk's gains (first: steady flows)
        self.period = float(period)
        self.chunks = 0
        self.samples: list[tuple[float, list[float], list[float]]] = []

    def gain_at(self, profile: tuple[slice, np.ndarray, np.ndarray], t_s: float) -> float:
        _, times, gains = profile
        return float(np.interp(t_s % self.period, times, gains))

    def __call__(self, solver: LbmSolver) -> None:
        self.chunks += 1
        t = self.chunks * self.chunk * self.setup.dt_s
        flows, pressures = self.probe.read(solver)
        self.samples.append((t, flows, pressures))
        for k, (n, steady) in enumerate(self._ends):
            self._wanted[k] += self._applied[k] * steady
            self._measured[k] += flows[n] * self._flux_scale
        if int(t / self.period) > int((t - self.chunk * self.setup.dt_s) / self.period):  # a cycle ended
            ok = (self._wanted > 0) & (self._measured > 0)
            ratio = np.divide(self._wanted, self._measured, out=np.ones_like(self._wanted), where=ok)
            self.correction = np.clip(self.correction * ratio, 0.8, 1.25)
            self._wanted[:], self._measured[:] = 0.0, 0.0
        middle = t + 0.5 * self.chunk * self.setup.dt_s  # of the next chunk
        for k, profile in enumerate(self._profiles):
            self._applied[k] = self.gain_at(profile, middle)
            solver.velocity_gain[profile[0]] = self._applied[k] * self.correction[k]

    def record(
        self, names: tuple[str, ...], cycles: int, steps_per_cycle: int, peak_factor: float
    ) -> CycleRecord:
        """The last cycle on the lattice (its last steps_per_cycle steps, the fields' averaging
        window; a whole number of chunks, so up to one chunk longer than the period)."""
        last = self.samples[-(steps_per_cycle // self.chunk) :]
        start = last[0][0] - self.chunk * self.setup.dt_s
        times = np.array([s[0] for s in last]) - start
        flows = np.array([s[1] for s in last]) * self._flux_scale
        pressures = np.array([s[2] for s in last]) * self.setup.pressure_scale
        corrections = {names[n]: float(c) for (n, _), c in zip(self._ends, self.correction, strict=True)}
        return CycleRecord(
            times, names, flows, pressures, cycles, steps_per_cycle, self.period, peak_factor, corrections
        )


def run_case_3d_cycle(
    case: FlowCase,
    mask_kji: np.ndarray,
    ijk_to_lps: np.ndarray,
    waveform: Waveform,
    *,
    cycles: int = DEFAULT_CYCLES,
    cell_mm: float | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
    max_steps: int = 400_000,
    progress: Progress | None = None,
) -> Flow3D:
    """The 3D preview of ``case`` over ``cycles`` heartbeats of ``waveform`` (whose mean must be
    the case's inflow); the fields are the mean over the last cycle, ``Flow3D.cycle`` its ends'
    time series."""
    started = time.perf_counter()
    if cycles < 2:
        raise FlowError(
            "A 3D run over the cardiac cycle needs at least 2 cycles (the first starts from rest)."
        )
    if not math.isclose(waveform.mean_m3_s, case.network.inflow_m3_s, rel_tol=1e-6):
        raise FlowError("The waveform's mean flow must be the case's inflow (solve the case at that flow).")
    domain = lattice_domain(case, mask_kji, ijk_to_lps, cell_mm, max_cells)
    reduced = solve_case_pulsatile(case, waveform)
    peak_factor, largest_drop = _cycle_extremes(case, reduced)
    setup = lattice_setup(case, domain.grid.cell_mm, peak_factor, largest_drop)
    cycle_steps = waveform.period_s / setup.dt_s
    chunk = int(np.clip(cycle_steps // CHUNKS_PER_CYCLE, 1, MAX_CHUNK_STEPS))
    steps_per_cycle = math.ceil(cycle_steps / chunk) * chunk
    total = cycles * steps_per_cycle
    if total > max_steps:
        raise FlowError(
            f"{cycles} cardiac cycles need {total:,} steps with {domain.grid.cell_mm:.2f} mm cells "
            f"(more than the {max_steps:,} allowed): allow more steps, fewer cycles or larger cells."
        )
    driver = CycleDriver(domain, setup, case, reduced, chunk)
    result = run(
        domain.grid.fluid,
        setup,
        steps=total,
        boundaries=domain.boundaries(),
        check_every=chunk,
        control=driver,
        average_last=1.0 / cycles,
        progress=progress,
    )
    record = driver.record(tuple(end.name for end in domain.ends), cycles, steps_per_cycle, peak_factor)
    return Flow3D(domain, result, time.perf_counter() - started, record)


def cycle_rows(flow: Flow3D) -> dict[str, Any]:
    """The last cycle's readings per end (flow; for outlets the pressure drop from the inlet),
    and a time series for plotting."""
    record: CycleRecord = flow.cycle
    ends = []
    for n, name in enumerate(record.end_names):
        row: dict[str, Any] = {"end": name, "flow_ml_s": spread(record.flows_m3_s[:, n] * 1e6)}
        if n > 0:
            drop = (record.pressures_pa[:, 0] - record.pressures_pa[:, n]) / PA_PER_MMHG
            row["pressure_drop_mmhg"] = spread(drop)
        ends.append(row)
    return {
        "cycles": record.cycles,
        "steps_per_cycle": record.steps_per_cycle,
        "period_s": record.period_s,
        "peak_factor": round(record.peak_factor, 3),
        "calibration": {name: round(c, 4) for name, c in record.corrections.items()},
        "ends": ends,
        "samples": {
            "time_s": record.times_s.round(5).tolist(),
            "inflow_ml_s": (record.flows_m3_s[:, 0] * 1e6).round(4).tolist(),
            "inlet_pressure_mmhg": (record.pressures_pa[:, 0] / PA_PER_MMHG).round(3).tolist(),
        },
    }


def _cycle_extremes(case: FlowCase, reduced: PulsatileResult) -> tuple[float, float]:
    """The largest systolic peak over steady flow of any segment (≥ 1), and the largest pressure
    drop from the inlet to an outlet over the cycle (Pa): what the time step must allow."""
    steady = np.abs(np.asarray(case.result.segment_flows_m3_s))
    peaks = np.abs(reduced.segment_flows_m3_s).max(axis=0)
    flowing = steady > 0
    factor = float(np.max(peaks[flowing] / steady[flowing], initial=1.0))
    outlet_nodes = [k + 1 for k in reduced.windkessels]
    drops = reduced.node_pressures_pa[:, [0]] - reduced.node_pressures_pa[:, outlet_nodes]
    return max(factor, 1.0), float(max(drops.max(), 0.0))
