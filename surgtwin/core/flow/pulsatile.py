"""Reduced model over the cardiac cycle: a periodic inflow into the same vessel network, with
three-element Windkessel (RCR) outlets and the blood's inertia.

Each segment adds the inertance of its blood, L = ρ·∫ds/A (plus Young–Tsai's K_u·ρ·L_s/A₀ at a
stenosis, K_u = 1.2), to the steady loss: ΔP = a·Q + b·|Q|·Q + L·dQ/dt. Each outlet is a
proximal resistance R_p into a node of compliance C that drains through a distal resistance
R_d to the venous pressure. Walls are rigid (no compliance along the vessels).

Time stepping is backward Euler. In one step an outlet's capacitor pressure is linear in its
node pressure, and L·dQ/dt is linear in Q, so every step is the steady network solve
(:class:`surgtwin.core.flow.reduced.NetworkSystem`) with shifted coefficients: Newton on the node
pressures, exact on the tree. It starts from the steady solution at the mean inflow (capacitors
charged to it), jumps towards the periodic state every third cycle (Aitken's extrapolation of
the capacitor pressures) and stops when two cycles agree.

Without given Windkessels each outlet's steady resistance R (Murray's law, as the steady model)
is split R_p = 0.1·R, R_d = 0.9·R (the characteristic impedance is some 5–10 % of the total
peripheral resistance), and C = τ/R_d with τ = 1.5 s, within the 1–2 s of the human diastolic
pressure decay. Those are generic values, not the patient's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.reduced import (
    BLOOD_DENSITY_KG_M3,
    BLOOD_VISCOSITY_PA_S,
    FlowNetwork,
    NetworkSystem,
    Segment,
    radius_integral,
    resolved_outlet_resistances,
    segment_loss_coefficients,
    solve_steady,
    young_tsai_coefficients,
)
from surgtwin.core.progress import Progress, ensure_progress

YOUNG_TSAI_KU = 1.2
PROXIMAL_FRACTION = 0.1
DECAY_TIME_S = 1.5
STEPS_PER_CYCLE = 400
MAX_CYCLES = 30
CYCLE_TOLERANCE = 1e-4  # largest change of any node pressure between cycles, relative to the inlet's mean


@dataclass(frozen=True)
class Waveform:
    """Inflow over one cardiac cycle: ``flows_m3_s`` sampled evenly from t = 0 to one period
    (the end point excluded); it repeats, and is read between samples linearly."""

    flows_m3_s: tuple[float, ...]
    period_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.period_s) and 0.2 <= self.period_s <= 3.0):
            raise FlowError(
                f"A cardiac cycle of {self.period_s} s is outside 0.2–3 s (20–300 beats a minute)."
            )
        if len(self.flows_m3_s) < 4 or not all(math.isfinite(q) for q in self.flows_m3_s):
            raise FlowError("An inflow waveform needs at least 4 finite samples over the cycle.")
        if not self.mean_m3_s > 0:
            raise FlowError("The inflow waveform's mean must be positive (flow into the vessel).")

    @property
    def mean_m3_s(self) -> float:
        return float(np.mean(self.flows_m3_s))

    @property
    def heart_rate_bpm(self) -> float:
        return 60.0 / self.period_s

    def at(self, t_s: np.ndarray | float) -> np.ndarray:
        samples = np.asarray(self.flows_m3_s, dtype=float)
        phase = np.mod(np.asarray(t_s, dtype=float), self.period_s) / self.period_s * samples.size
        lower = np.floor(phase).astype(int) % samples.size
        frac = phase - np.floor(phase)
        return samples[lower] * (1.0 - frac) + samples[(lower + 1) % samples.size] * frac

    def scaled_to(self, mean_m3_s: float) -> Waveform:
        """The same shape with another mean flow."""
        factor = mean_m3_s / self.mean_m3_s
        return Waveform(tuple(q * factor for q in self.flows_m3_s), self.period_s)

    @classmethod
    def generic(cls, mean_m3_s: float, heart_rate_bpm: float = 70.0, samples: int = 200) -> Waveform:
        """A generic arterial inflow: a half-sine systole over the first 35 % of the cycle on a
        diastolic flow of 10 % of the mean; peak ≈ 4× mean. A shape for previews, not patient data."""
        if not (math.isfinite(heart_rate_bpm) and heart_rate_bpm > 0):
            raise FlowError("The heart rate must be a positive number of beats a minute.")
        if not mean_m3_s > 0:
            raise FlowError("The mean inflow must be positive.")
        t = np.arange(samples) / samples
        systole = 0.35
        shape = np.where(t < systole, np.sin(np.pi * np.minimum(t / systole, 1.0)), 0.0)
        flows = 0.1 + 0.9 * shape / shape.mean()  # mean exactly 1
        return cls(tuple(float(q) * mean_m3_s for q in flows), 60.0 / heart_rate_bpm)

    @classmethod
    def from_samples(cls, times_s: Sequence[float], flows_m3_s: Sequence[float]) -> Waveform:
        """A measured cycle (e.g. phase-contrast MRI or Doppler): times from the cycle's start,
        strictly increasing; the period is the last time (its flow should equal the first)."""
        times = np.asarray(times_s, dtype=float)
        flows = np.asarray(flows_m3_s, dtype=float)
        if times.ndim != 1 or times.shape != flows.shape or times.size < 4:
            raise FlowError("A waveform needs matching time and flow columns with at least 4 rows.")
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(flows))):
            raise FlowError("The waveform has a missing or non-numeric value.")
        if times[0] != 0 or np.any(np.diff(times) <= 0):
            raise FlowError("Waveform times must start at 0 and increase strictly; the last is the period.")
        period = float(times[-1])
        even = np.arange(200) / 200 * period
        return cls(tuple(float(q) for q in np.interp(even, times, flows)), period)


@dataclass(frozen=True)
class Windkessel:
    """An RCR outlet: proximal resistance, compliance, distal resistance (Pa·s/m³, m³/Pa)."""

    proximal: float
    compliance: float
    distal: float

    def __post_init__(self) -> None:
        values = (self.proximal, self.compliance, self.distal)
        if not all(math.isfinite(v) for v in values) or self.proximal < 0 or self.compliance <= 0:
            raise FlowError("A Windkessel needs R_p ≥ 0, C > 0 and R_d > 0, all finite.")
        if self.distal <= 0:
            raise FlowError("A Windkessel needs R_d > 0, all finite.")

    @property
    def resistance(self) -> float:
        """Its steady resistance, R_p + R_d."""
        return self.proximal + self.distal


def default_windkessels(network: FlowNetwork) -> dict[int, Windkessel]:
    """Each outlet's steady resistance split into an RCR with generic values (module docstring)."""
    out = {}
    for k, r in resolved_outlet_resistances(network).items():
        distal = (1.0 - PROXIMAL_FRACTION) * r
        out[k] = Windkessel(PROXIMAL_FRACTION * r, DECAY_TIME_S / distal, distal)
    return out


@dataclass(frozen=True)
class PulsatileResult:
    """The last (periodic) cycle, sampled at every time step."""

    times_s: np.ndarray  # (n,) from the cycle's start
    inflow_m3_s: np.ndarray  # (n,)
    segment_flows_m3_s: np.ndarray  # (n, segments)
    node_pressures_pa: np.ndarray  # (n, segments + 1); node 0 the inlet, i + 1 segment i's end
    stenosis_drops_pa: dict[int, np.ndarray]  # segment -> Young–Tsai drop (viscous + inertial + unsteady)
    windkessels: Mapping[int, Windkessel]
    cycles: int
    periodic: bool  # two successive cycles agreed within CYCLE_TOLERANCE
    solve_seconds: float

    @property
    def inlet_pressure_pa(self) -> np.ndarray:
        return self.node_pressures_pa[:, 0]


def segment_inertance(segment: Segment, density_kg_m3: float) -> float:
    """ρ·∫ds/A, plus Young–Tsai's unsteady term at a stenosis."""
    return density_kg_m3 * radius_integral(segment, -2.0) / np.pi + stenosis_inertance(segment, density_kg_m3)


def stenosis_inertance(segment: Segment, density_kg_m3: float) -> float:
    """K_u·ρ·L_s/A₀ (0 without a stenosis): Young–Tsai's loss on dQ/dt."""
    if segment.stenosis is None:
        return 0.0
    a0 = np.pi * segment.mean_radius_m**2
    return YOUNG_TSAI_KU * density_kg_m3 * segment.stenosis.lesion_length_m / a0


def solve_pulsatile(
    network: FlowNetwork,
    waveform: Waveform,
    windkessels: Mapping[int, Windkessel] | None = None,
    viscosity_pa_s: float = BLOOD_VISCOSITY_PA_S,
    density_kg_m3: float = BLOOD_DENSITY_KG_M3,
    steps_per_cycle: int = STEPS_PER_CYCLE,
    max_cycles: int = MAX_CYCLES,
    progress: Progress | None = None,
) -> PulsatileResult:
    """Flow and pressure over the cardiac cycle (module docstring). ``network.inflow_m3_s`` is
    ignored: the waveform gives the inflow. Windkessels default to :func:`default_windkessels`
    of the network at the waveform's mean flow (``outlet_resistances`` None: Murray's law at
    that flow; given ones are kept). ``progress`` counts cycles and may cancel between them."""
    started = time.perf_counter()
    progress = ensure_progress(progress)
    if steps_per_cycle < 20 or max_cycles < 1:
        raise FlowError("A pulsatile solve needs at least 20 steps a cycle and one cycle.")
    mean_network = _with_inflow(network, waveform.mean_m3_s)
    if windkessels is None:
        windkessels = default_windkessels(mean_network)
    outlets = list(mean_network.outlets)
    if set(windkessels) != set(outlets):
        raise FlowError("Give a Windkessel for every outlet segment, and only for those.")
    steady = solve_steady(
        _with_inflow(network, waveform.mean_m3_s, {k: windkessels[k].resistance for k in outlets}),
        viscosity_pa_s, density_kg_m3,
    )  # fmt: skip
    coeffs = np.array([segment_loss_coefficients(s, viscosity_pa_s, density_kg_m3) for s in network.segments])
    a, b = coeffs[:, 0], coeffs[:, 1]
    inertance = np.array([segment_inertance(s, density_kg_m3) for s in network.segments])
    rp = np.array([windkessels[k].proximal for k in outlets])
    rd = np.array([windkessels[k].distal for k in outlets])
    c = np.array([windkessels[k].compliance for k in outlets])
    venous = network.distal_pressure_pa
    system = NetworkSystem.of(network, outlets)
    dt = waveform.period_s / steps_per_cycle
    flows = np.array(steady.segment_flows_m3_s)
    pressures = np.array(steady.node_pressures_pa)
    outlet_flows = flows[outlets]
    capacitor = pressures[system.outlet_nodes] - rp * outlet_flows  # charged to the steady state
    a_step = a + inertance / dt
    times = np.arange(steps_per_cycle) * dt
    inflows = waveform.at(times + dt)  # backward Euler: each step solves at its end
    previous_cycle: np.ndarray | None = None
    periodic = False
    cycles = 0
    cycle_flows = np.empty((steps_per_cycle, len(network.segments)))
    cycle_pressures = np.empty((steps_per_cycle, len(network.segments) + 1))
    starts: list[np.ndarray] = []  # capacitor pressures at the start of each cycle
    progress.start("cardiac cycle", max_cycles)
    while cycles < max_cycles and not periodic:
        progress.check()
        cycles += 1
        starts.append(capacitor.copy())
        if len(starts) >= 3 and cycles % 3 == 0:
            capacitor = _extrapolated(starts[-3:])
        for n in range(steps_per_cycle):
            conductance, drain_to, alpha, beta = _outlet_step(rp, c, rd, dt, capacitor, venous)
            flows, pressures, _ = system.solve(
                a_step, b, inertance / dt * flows, conductance, drain_to, float(inflows[n]), pressures
            )
            capacitor = alpha * pressures[system.outlet_nodes] + beta
            cycle_flows[n], cycle_pressures[n] = flows, pressures
        if previous_cycle is not None:
            scale = max(abs(float(np.mean(cycle_pressures[:, 0]))), 1.0)
            periodic = float(np.max(np.abs(cycle_pressures - previous_cycle))) <= CYCLE_TOLERANCE * scale
        previous_cycle = cycle_pressures.copy()
        progress.advance()
    drops = _stenosis_drops(network, cycle_flows, dt, viscosity_pa_s, density_kg_m3)
    return PulsatileResult(
        times + dt, inflows, cycle_flows.copy(), cycle_pressures.copy(), drops, dict(windkessels), cycles,
        periodic, time.perf_counter() - started,
    )  # fmt: skip


def _extrapolated(starts: list[np.ndarray]) -> np.ndarray:
    """Aitken's extrapolation of the capacitor pressures from three successive cycle starts.

    Their distance from the periodic state shrinks by about exp(−T/(R_d·C)) a cycle (1.5 s
    against a 0.86 s cycle), so plain cycling needs ~15 cycles; the jump needs a few.
    """
    first, second = starts[1] - starts[0], starts[2] - starts[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = second / first
    ok = np.isfinite(ratio) & (ratio > 0) & (ratio < 0.95)
    return np.where(ok, starts[2] + second * ratio / (1.0 - np.where(ok, ratio, 0.0)), starts[2])


def _outlet_step(
    rp: np.ndarray, c: np.ndarray, rd: np.ndarray, dt: float, capacitor: np.ndarray, venous: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One backward-Euler step of each RCR outlet, as a drain for the network solve.

    The capacitor obeys C·(P_c − P_c,old)/dt = (P − P_c)/R_p − (P_c − P_v)/R_d, so
    P_c = alpha·P + beta for node pressure P, and the outlet flow (P − P_c)/R_p is
    conductance·(P − drain_to). With R_p = 0 the node is the capacitor (alpha 1, beta 0).
    """
    charge = c / dt * capacitor + venous / rd
    rc = c / dt + 1.0 / rd
    with np.errstate(divide="ignore", invalid="ignore"):
        g_p = np.where(rp > 0, 1.0 / rp, 0.0)
        alpha = np.where(rp > 0, g_p / (rc + g_p), 1.0)
        beta = np.where(rp > 0, charge / (rc + g_p), 0.0)
        conductance = np.where(rp > 0, (1.0 - alpha) * g_p, rc)
        drain_to = np.where(rp > 0, beta / (1.0 - alpha), charge / rc)
    return conductance, drain_to, alpha, beta


def _stenosis_drops(
    network: FlowNetwork,
    flows: np.ndarray,
    dt: float,
    viscosity_pa_s: float,
    density_kg_m3: float,
) -> dict[int, np.ndarray]:
    """Young–Tsai drop of each stenosed segment over the cycle: K_v and K_t terms plus K_u's inertia."""
    drops = {}
    for i, segment in enumerate(network.segments):
        if segment.stenosis is None:
            continue
        kv_term, kt_term = young_tsai_coefficients(segment, viscosity_pa_s, density_kg_m3)
        q = flows[:, i]
        dq_dt = (q - np.roll(q, 1)) / dt  # periodic cycle
        unsteady = stenosis_inertance(segment, density_kg_m3)
        drops[i] = kv_term * q + kt_term * np.abs(q) * q + unsteady * dq_dt
    return drops


def _with_inflow(
    network: FlowNetwork, inflow_m3_s: float, resistances: Mapping[int, float] | None = None
) -> FlowNetwork:
    """The network at another inflow. Unlike :func:`surgtwin.core.flow.reduced.with_inflow`,
    Murray's-law outlets (None) stay unresolved, so they are sized at the new flow."""
    return replace(
        network, inflow_m3_s=inflow_m3_s,
        outlet_resistances=network.outlet_resistances if resistances is None else dict(resistances),
    )  # fmt: skip
