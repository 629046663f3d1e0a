"""The 3D flow preview of a traced vessel (shared by the command line and the desktop app).

The lattice-Boltzmann run takes from the reduced model what a 3D box cannot know by itself:
the resistance of the vascular bed beyond each outlet. The inlet carries the inflow; the
outlets start from the reduced model's split, and the split then follows the 3D flow's own
path resistances (see :class:`OutletCoupling`), so a stenosis that the lattice resolves as
tighter than the centreline read takes less flow. Every outlet but the largest is held at its
share by its velocity; the largest holds the reference pressure (0). The 3D run gives what the
reduced model only estimates: the pressure field (drops across stenoses with their jets and
recovery), velocities, wall shear stress and streamlines.

Lattice units: the time step keeps the fastest expected velocity (twice the mean through the
narrowest cross-section, from the centreline radii) at 0.08 lattice units or below, and the
lattice density change (its compressibility) near 1 %; when that leaves the relaxation time
close to 1/2 (arterial Reynolds numbers), Smagorinsky LES (C = 0.1) with a regularized
collision keeps the jets of a stenosis stable on a coarse lattice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from surgtwin.core.flow import fields, lbm_kernels
from surgtwin.core.flow.case import FlowCase, solve_stented, stented_network
from surgtwin.core.flow.centerline import Stenosis
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.lbm import LbmResult, LbmSetup, LbmSolver, run
from surgtwin.core.flow.lumen import (
    LumenDomain,
    LumenGrid,
    VesselEnd,
    cut_ends,
    extension_tips,
    fluid_volume_mm3,
    resample_lumen,
)
from surgtwin.core.flow.reduced import PA_PER_MMHG
from surgtwin.core.progress import Progress

DEFAULT_MAX_CELLS = 250_000  # fluid cells: about a minute on two cores
DEFAULT_CELLS_ACROSS = 20  # across the inlet's diameter, when the budget allows
MIN_CELLS_TO_RUN = 2.5  # across the narrowest lumen, below which a run is refused
MIN_CELLS_ACROSS = 6  # across the narrowest lumen (a stenosis's throat), when the budget allows
MAX_LATTICE_VELOCITY = 0.08
MIN_LATTICE_VELOCITY = 0.005
MAX_DENSITY_CHANGE = 0.01  # 1 %: the pressure drop's compressibility error stays about that
SMAGORINSKY = 0.1
# Below this relaxation time plain TRT turns unstable in jets; above it TRT is more accurate (its
# walls sit exactly halfway) and faster, so LES (regularized collision) is used only below.
LES_BELOW_TAU = 0.55
RAMP_STEPS = 2_000
GAIN_LIMITS = (0.5, 2.0)  # the controller's range on a velocity end's prescribed profile
CHECK_EVERY = 200
AVERAGE_LAST = 0.25  # an unsteady run (a jet) is read as the mean of its last quarter
# A stenosis's 3D drop is read only with this many cells across its throat: the stenosis table
# (docs/flow.md) settles to ~12 % at 7.6-10 cells, and a 4-cell throat read a wrong loss.
RESOLVED_THROAT_CELLS = 8.0
# ... and only at throat Reynolds numbers (mean throat velocity x throat diameter / nu) the
# table covers (26-52 on the normal lumen: up to ~120 in the throat). Above, the jet breaks
# down: the sample's 81 % iliac stenosis (throat Re ~1,400) read 78 mmHg at 3.3 cells and
# 30 mmHg at 8.3 cells against 3.9 mmHg reduced: no convergence in sight on this CPU.
RESOLVED_MAX_THROAT_REYNOLDS = 120.0


@dataclass
class Flow3D:
    """A finished 3D run on a case's vessel."""

    domain: LumenDomain
    lbm: LbmResult
    seconds: float  # the whole run, lattice building included
    cycle: Any = None  # a run over the cardiac cycle: its CycleRecord (surgtwin.core.flow.case3d_cycle)

    @property
    def grid(self) -> LumenGrid:
        return self.domain.grid

    def end_flow_m3_s(self, end: VesselEnd) -> float:
        """Mass flow (as m³/s of blood) into the vessel at the inlet, out at an outlet (see
        :func:`flux_plane`)."""
        cells, axis, sign = flux_plane(self.grid, end)
        at = tuple(cells.T)
        # mass, not volume: the lattice is slightly compressible (density = 1 + 3 p in lattice units)
        density = 1.0 + 3.0 * self.lbm.pressure_pa[at] / self.lbm.setup.pressure_scale
        outward = float((density * self.lbm.velocity_m_s[at][:, axis]).sum()) * sign
        outward *= (self.grid.cell_mm * 1e-3) ** 2
        return -outward if end.name == "inlet" else outward

    def end_pressure_pa(self, end: VesselEnd) -> float:
        """Mean pressure at the end's cut, on the vessel (not at the extension's far end)."""
        return float(self.pressure_at(end.centre_lps[None], np.array([end.radius_mm]))[0])

    def mass_imbalance(self) -> float:
        """|inflow - total outflow| / inflow, measured on the lattice."""
        inflow = self.end_flow_m3_s(self.domain.ends[0])
        outflow = sum(self.end_flow_m3_s(e) for e in self.domain.ends[1:])
        return abs(inflow - outflow) / abs(inflow) if inflow else float("inf")

    def pressure_at(self, points_lps: np.ndarray, radius_mm: np.ndarray) -> np.ndarray:
        """Mean pressure (Pa) over the fluid cells within half a radius of each point (NaN where none)."""
        pressure = self.lbm.pressure_pa
        index = self.grid.index(points_lps)
        out = np.full(len(index), np.nan)
        for n, (c, r) in enumerate(zip(index, np.broadcast_to(radius_mm, len(index)), strict=True)):
            reach = max(int(np.ceil(0.5 * r / self.grid.cell_mm)), 1)
            lo = np.maximum(np.round(c).astype(int) - reach, 0)
            hi = np.minimum(np.round(c).astype(int) + reach + 1, pressure.shape)
            if np.any(hi <= lo):
                continue
            block = pressure[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
            if np.isfinite(block).any():
                out[n] = float(np.nanmean(block))
        return out


def flux_plane(grid: LumenGrid, end: VesselEnd) -> tuple[np.ndarray, int, int]:
    """The fluid cells (n, 3) of the full lattice plane one layer inside the end's boundary layer,
    near the end, with the plane's axis and the outward sign along it. A flat surface that
    crosses the whole lumen: nothing slips past through the sides of the boundary's staircase."""
    axis = int(np.flatnonzero(end.step)[0])
    sign = int(np.sum(end.step))
    plane = int((np.min(end.cells[:, axis] * sign) - 1) * sign)  # past the deepest boundary cell
    cells = np.argwhere(np.take(grid.fluid, plane, axis=axis))
    cells = np.insert(cells, axis, plane, axis=1)
    reach = 2.5 * end.radius_mm + 3.0 * grid.cell_mm
    near = grid.lps(end.cells).mean(axis=0)  # the boundary layer's middle
    return cells[np.linalg.norm(grid.lps(cells) - near, axis=1) < reach], axis, sign


class OutletCoupling:
    """Holds the inlet at its inflow and lets the outlets share it as the tissue downstream would.

    Each outlet has the reduced model's resistance R (Pa·s/m³, standing for the vascular bed
    downstream). After the start-up ramp, every chunk measures each outlet's flow Q and the
    3D drop from the inlet to it (the path's resistance r = drop / Q, stenoses included) and
    moves the split towards Q ∝ 1 / (R + r) (relaxed by RELAX), so a stenosis the 3D flow
    finds tighter than the centreline suggested takes less flow. Velocity ends are then held
    at their share by scaling their velocities with the damped ratio of target to measured
    mass flow (the velocity boundary alone delivers a few per cent less on a staircased cut);
    the pressure outlet takes the rest.
    """

    RELAX = 0.3

    def __init__(
        self, domain: LumenDomain, setup: LbmSetup, ramp_chunks: int, resistances: dict[str, float]
    ) -> None:
        self._ramp_chunks, self._calls = ramp_chunks, 0
        self.probe = EndProbe(domain)
        flux_scale = setup.velocity_scale * setup.dx_m**2  # m³/s per lattice flux unit
        self.ends: list[_ControlledEnd] = []
        for end, span in zip(domain.ends, self.probe.spans, strict=True):
            target = None if end.flow_m3_s is None else end.flow_m3_s / flux_scale
            resistance = resistances.get(end.name, 0.0) * flux_scale / setup.pressure_scale
            self.ends.append(_ControlledEnd(span, target, resistance))

    def __call__(self, solver: LbmSolver) -> None:
        self._calls += 1
        if self._calls <= self._ramp_chunks:
            return
        flows, pressures = self.probe.read(solver)
        self._share_outflow(flows, pressures)
        for end, measured in zip(self.ends, flows, strict=True):
            if end.target is not None and measured > 0:
                gain = solver.velocity_gain[end.span] * np.clip(end.target / measured, 0.9, 1.1) ** 0.5
                solver.velocity_gain[end.span] = np.clip(gain, *GAIN_LIMITS)  # never runs away

    def _share_outflow(self, flows: list[float], pressures: list[float]) -> None:
        inlet, outlets = self.ends[0], self.ends[1:]
        if inlet.target is None or not all(e.resistance > 0 for e in outlets) or min(flows[1:]) <= 0:
            return
        path = [max(pressures[0] - p, 0.0) / q for p, q in zip(pressures[1:], flows[1:], strict=True)]
        conductance = np.array([1.0 / (e.resistance + r) for e, r in zip(outlets, path, strict=True)])
        share = inlet.target * conductance / conductance.sum()
        for end, wanted in zip(outlets, share, strict=True):
            if end.target is not None:
                end.target = (1.0 - self.RELAX) * end.target + self.RELAX * float(wanted)


@dataclass
class _ControlledEnd:
    span: slice  # its cells in the solver's boundary arrays
    target: float | None  # lattice flux to hold (None: the pressure outlet)
    resistance: float  # downstream resistance, lattice units (0 at the inlet)


class EndProbe:
    """Reads, while a run goes on, each vessel end's mass flux (lattice units, + along the
    flow: into the vessel at the inlet, out at the outlets) and mean pressure ((ρ − 1)/3) on
    its flux plane (:func:`flux_plane`); ``spans`` are the ends' cells in the solver's
    boundary arrays (the order of ``domain.boundaries()``)."""

    def __init__(self, domain: LumenDomain) -> None:
        self.spans: list[slice] = []
        self._planes: list[tuple[np.ndarray, int, int]] = []  # cells (n, 3), axis, sign along the flow
        start = 0
        for end in domain.ends:
            self.spans.append(slice(start, start + len(end.cells)))
            start += len(end.cells)
            cells, axis, sign = flux_plane(domain.grid, end)
            inward = -1 if end.name == "inlet" else 1  # + along the flow (into the vessel at the inlet)
            self._planes.append((cells, axis, sign * inward))
        self._stored: list[np.ndarray] | None = None  # storage indices, from the first solver seen

    def read(self, solver: LbmSolver) -> tuple[list[float], list[float]]:
        if self._stored is None:
            self._stored = [solver.storage_index(cells) for cells, _, _ in self._planes]
        flows, pressures = [], []
        for stored, (_, axis, sign) in zip(self._stored, self._planes, strict=True):
            rho, u = lbm_kernels.macroscopic(solver.f, stored, solver.cx, solver.cy, solver.cz)
            flows.append(float(np.sum(rho * u[:, axis])) * sign)
            pressures.append(float(np.mean(rho) - 1.0) / 3.0)
        return flows, pressures


def narrowest_radius_mm(case: FlowCase) -> float:
    """The smallest lumen radius on the centrelines (a stenosis's throat, or the thinnest
    branch), from the cross-section areas: the throat the lattice will see."""
    return float(min(np.min(b.lumen_radius_mm()) for b in case.tree.branches))


def choose_cell_mm(case: FlowCase, mask_kji: np.ndarray, ijk_to_lps: np.ndarray, max_cells: int) -> float:
    """Cells that put DEFAULT_CELLS_ACROSS across the inlet and MIN_CELLS_ACROSS across the
    narrowest lumen, unless that exceeds the fluid-cell budget (the budget wins)."""
    inlet_diameter = 2.0 * float(np.median(case.tree.branches[0].radius_mm[:5]))
    wanted = min(inlet_diameter / DEFAULT_CELLS_ACROSS, 2.0 * narrowest_radius_mm(case) / MIN_CELLS_ACROSS)
    budget = (fluid_volume_mm3(mask_kji, ijk_to_lps) / max_cells) ** (1.0 / 3.0)
    return float(max(wanted, budget))


def outlet_segments(case: FlowCase) -> dict[str, int]:
    """Outlet end name ("outlet 1", ... in the tree's outlet-branch order) -> the reduced
    network's segment index of that outlet."""
    by_branch = {case.pieces[o.segment_index].branch: o.segment_index for o in case.result.outlets}
    names = {b: f"outlet {n}" for n, b in enumerate(case.tree.outlet_branches, start=1)}
    return {name: by_branch[b] for b, name in names.items() if b in by_branch}


def end_flows(case: FlowCase) -> dict[str, float | None]:
    """The inflow at the inlet and each outlet's reduced-model flow; the largest outlet: None
    (it holds the reference pressure)."""
    flows: dict[str, float | None] = {"inlet": case.network.inflow_m3_s}
    outlet_flows = {o.segment_index: o.flow_m3_s for o in case.result.outlets}
    names = [f"outlet {n}" for n in range(1, len(case.tree.outlet_branches) + 1)]
    segments = outlet_segments(case)
    for name in names:
        flows[name] = outlet_flows[segments[name]] if name in segments else None
    largest = max(names, key=lambda name: flows[name] or 0.0)
    flows[largest] = None
    return flows


def outlet_resistances(case: FlowCase) -> dict[str, float]:
    """The reduced model's outlet resistance (Pa·s/m³) per outlet end name."""
    return {name: float(case.result.outlet_resistances[k]) for name, k in outlet_segments(case).items()}


def peak_velocity_m_s(case: FlowCase) -> float:
    """Twice the mean velocity through the narrowest cross-section any flow passes (from the
    reduced model's segment flows and the lumen's cross-section areas)."""
    fastest = 0.0
    for index, piece in enumerate(case.pieces):
        radii = case.tree.branches[piece.branch].lumen_radius_mm()[piece.first : piece.last + 1]
        r_min = float(np.min(radii)) * 1e-3
        flow = abs(case.result.segment_flows_m3_s[index])
        fastest = max(fastest, flow / (np.pi * r_min**2))
    return 2.0 * fastest


def lattice_setup(
    case: FlowCase, cell_mm: float, peak_factor: float = 1.0, largest_drop_pa: float | None = None
) -> LbmSetup:
    """Lattice units for the case: the time step keeps the fastest flow (see
    :func:`peak_velocity_m_s`) at MAX_LATTICE_VELOCITY or below (Mach number) and the
    reduced model's largest pressure drop at MAX_DENSITY_CHANGE of the lattice density or
    below (the lattice is slightly compressible: slow viscous flows need smaller steps).
    Over a cardiac cycle, ``peak_factor`` (the largest peak over steady flow of any segment)
    scales the fastest flow and ``largest_drop_pa`` replaces the steady drop."""
    peak = peak_velocity_m_s(case) * peak_factor
    largest_drop = (
        max((o.pressure_drop_pa for o in case.result.outlets), default=0.0)
        if largest_drop_pa is None
        else largest_drop_pa
    )
    # density change = 3 dp / (rho (dx/dt)^2) <= MAX_DENSITY_CHANGE  =>  dx/dt >= sqrt(3 dp / (rho max))
    min_lattice_speed = np.sqrt(3.0 * max(largest_drop, 0.0) / (case.density_kg_m3 * MAX_DENSITY_CHANGE))
    lattice_velocity = MAX_LATTICE_VELOCITY
    if min_lattice_speed > 0:
        lattice_velocity = float(
            np.clip(peak / min_lattice_speed, MIN_LATTICE_VELOCITY, MAX_LATTICE_VELOCITY)
        )
    setup = LbmSetup(
        dx_m=cell_mm * 1e-3,
        inlet_velocity_m_s=peak / 2.0,  # LbmSetup scales time so 2 x this is the lattice maximum
        viscosity_pa_s=case.viscosity_pa_s,
        density_kg_m3=case.density_kg_m3,
        max_lattice_velocity=lattice_velocity,
    )
    if setup.tau < LES_BELOW_TAU:  # a high Reynolds number for this lattice: turbulence model on
        setup = replace(setup, smagorinsky=SMAGORINSKY)
    return setup


def run_case_3d(
    case: FlowCase,
    mask_kji: np.ndarray,
    ijk_to_lps: np.ndarray,
    *,
    cell_mm: float | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
    max_steps: int = 40_000,
    tolerance: float = 1e-4,
    progress: Progress | None = None,
) -> Flow3D:
    """Run the 3D preview on the vessel traced in ``case`` (the same mask and affine)."""
    started = time.perf_counter()
    domain = lattice_domain(case, mask_kji, ijk_to_lps, cell_mm, max_cells)
    setup = lattice_setup(case, domain.grid.cell_mm)
    ramp = min(RAMP_STEPS, max_steps // 4 // CHECK_EVERY * CHECK_EVERY)  # short runs: a short ramp
    result = run(
        domain.grid.fluid,
        setup,
        boundaries=domain.boundaries(),
        tolerance=tolerance,
        check_every=CHECK_EVERY,
        max_steps=max_steps,
        ramp_steps=ramp,
        control=OutletCoupling(domain, setup, ramp // CHECK_EVERY, outlet_resistances(case)),
        average_last=AVERAGE_LAST,
        progress=progress,
    )
    return Flow3D(domain, result, time.perf_counter() - started)


def lattice_domain(
    case: FlowCase, mask_kji: np.ndarray, ijk_to_lps: np.ndarray, cell_mm: float | None, max_cells: int
) -> LumenDomain:
    """The case's vessel on a lattice of ``cell_mm`` (None: :func:`choose_cell_mm`), its ends cut
    flat; FlowError when the narrowest lumen is too few cells across or the lattice too large."""
    chosen = cell_mm is None
    if cell_mm is None:
        cell_mm = choose_cell_mm(case, mask_kji, ijk_to_lps, max_cells)
    across = 2.0 * narrowest_radius_mm(case) / cell_mm
    if across < MIN_CELLS_TO_RUN:
        largest = 2.0 * narrowest_radius_mm(case) / MIN_CELLS_TO_RUN
        remedy = (
            f"allow more cells (the budget of {max_cells:,} gave these) or give a cell size of at most "
            f"{largest:.2f} mm"
            if chosen
            else f"choose cells of at most {largest:.2f} mm"
        )
        raise FlowError(
            f"With {cell_mm:.2f} mm cells the vessel's narrowest lumen spans {across:.1f} cells (at least "
            f"{MIN_CELLS_TO_RUN:.1f} needed): {remedy}."
        )
    grid = resample_lumen(mask_kji, ijk_to_lps, cell_mm, *extension_tips(case.tree))
    domain = cut_ends(grid, case.tree, end_flows(case))
    fluid_cells = int(domain.grid.fluid.sum())
    if fluid_cells > 4 * max_cells:
        raise FlowError(
            f"{cell_mm:.2f} mm cells give {fluid_cells:,} fluid cells (budget {max_cells:,}): "
            "choose larger cells."
        )
    return domain


# --- what-if: a virtual stent ------------------------------------------------------------------
def stented_mask(case: FlowCase, mask_kji: np.ndarray, ijk_to_lps: np.ndarray) -> np.ndarray:
    """The vessel mask with every stenosis found opened to its reference radius: balls of that
    radius along the centreline over the lesion and one reference radius either side."""
    opened = np.asarray(mask_kji, dtype=bool).copy()
    kji_to_lps = np.asarray(ijk_to_lps, dtype=np.float64)[:, [2, 1, 0, 3]]
    to_index = np.linalg.inv(kji_to_lps)
    spacing = np.linalg.norm(kji_to_lps[:3, :3], axis=0)
    for stenosis in case.stenoses:
        branch = case.tree.branches[stenosis.branch]
        s = branch.arclength_mm()
        at = s[int(np.argmin(np.linalg.norm(branch.points_lps - stenosis.position_lps, axis=1)))]
        half = stenosis.length_mm / 2 + stenosis.reference_radius_mm
        radius = stenosis.reference_radius_mm
        for point in branch.points_lps[(s >= at - half) & (s <= at + half)]:
            centre = to_index[:3, :3] @ point + to_index[:3, 3]
            reach = np.ceil(radius / spacing).astype(int) + 1
            lo = np.maximum(np.round(centre).astype(int) - reach, 0)
            hi = np.minimum(np.round(centre).astype(int) + reach + 1, opened.shape)
            if np.any(hi <= lo):
                continue
            idx = np.stack(
                np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij"), -1
            )
            lps = idx @ kji_to_lps[:3, :3].T + kji_to_lps[:3, 3]
            ball = np.linalg.norm(lps - point, axis=-1) <= radius
            opened[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= ball
    return opened


def stented_case(case: FlowCase) -> FlowCase:
    """The case with the stented network and its reduced flow split (the traced tree and lesions
    kept, so the 3D drops are read at the same places)."""
    return replace(case, network=stented_network(case), result=case.stented or solve_stented(case))


# --- rows (JSON-ready) --------------------------------------------------------------------------
def summary(flow: Flow3D) -> dict[str, Any]:
    lbm = flow.lbm
    speed = np.linalg.norm(lbm.velocity_m_s, axis=-1)
    return {
        "cell_size_mm": round(flow.grid.cell_mm, 4),
        "cells": int(lbm.fluid_cells),
        "lattice_shape": list(flow.grid.fluid.shape),
        "steps": int(lbm.steps),
        "converged": bool(lbm.converged) if flow.cycle is None else None,  # a cycle run: fixed length
        "averaged_over_steps": int(lbm.averaged_steps),
        "mlups": round(float(lbm.mlups), 2),
        "solver_memory_mb": round(lbm.solver_bytes / 2**20, 1),
        "whole_box_memory_mb": round(lbm.box_bytes / 2**20, 1),
        "simulated_time_s": float(lbm.steps * lbm.setup.dt_s),
        "max_velocity_m_s": float(speed.max()),
        "mass_imbalance_percent": round(100.0 * flow.mass_imbalance(), 3),
        "smagorinsky": lbm.setup.smagorinsky,
        "tau": round(lbm.setup.tau, 5),
        "seconds": round(flow.seconds, 3),
    }


def end_rows(flow: Flow3D) -> list[dict[str, Any]]:
    """Per vessel end: measured flow, prescribed flow (None for the pressure outlet), mean pressure,
    and for outlets the pressure drop from the inlet."""
    inlet_pressure = flow.end_pressure_pa(flow.domain.ends[0])
    rows = []
    for end in flow.domain.ends:
        pressure = flow.end_pressure_pa(end)
        row: dict[str, Any] = {
            "end": end.name,
            "branch": end.branch,
            "position_lps_mm": np.round(end.centre_lps, 2).tolist(),
            "flow_ml_s": flow.end_flow_m3_s(end) * 1e6,
            "prescribed_flow_ml_s": None if end.flow_m3_s is None else end.flow_m3_s * 1e6,
            "pressure_pa": pressure,
        }
        if end.name != "inlet":
            drop = inlet_pressure - pressure
            row["pressure_drop_pa"] = drop
            row["pressure_drop_mmhg"] = drop / PA_PER_MMHG
        rows.append(row)
    return rows


def stenosis_rows_3d(flow: Flow3D, case: FlowCase) -> list[dict[str, Any]]:
    """Per stenosis, in the order of :func:`surgtwin.core.flow.case.stenosis_rows`: place, 3D
    drop, and whether the lattice resolves its throat (else the drop is no reading)."""
    drops = {id(s): d for s, d in zip(case.stenoses, stenosis_drops_pa(flow, case), strict=True)}
    rows = []
    for piece in case.pieces:
        stenosis = piece.stenosis
        if stenosis is None or id(stenosis) not in drops:
            continue
        across = round(throat_cells_across(stenosis, flow.grid.cell_mm), 1)  # as shown, as judged
        # over a cardiac cycle the systolic peak decides (the cycle record's peak factor)
        factor = 1.0 if flow.cycle is None else flow.cycle.peak_factor
        reynolds = round(throat_reynolds(case, stenosis, factor), 1)
        rows.append(
            {
                "position_lps_mm": np.asarray(stenosis.position_lps).round(2).tolist(),
                "pressure_drop_pa": drops[id(stenosis)],
                "pressure_drop_mmhg": drops[id(stenosis)] / PA_PER_MMHG,
                "throat_cells_across": across,
                "throat_reynolds": reynolds,
                "resolved": across >= RESOLVED_THROAT_CELLS and reynolds <= RESOLVED_MAX_THROAT_REYNOLDS,
            }
        )
    return rows


def throat_cells_across(stenosis: Stenosis, cell_mm: float) -> float:
    """Cells across the stenosis's throat (its diameter by cross-section area)."""
    return 2.0 * stenosis.min_radius_mm / cell_mm


def throat_reynolds(case: FlowCase, stenosis: Stenosis, flow_factor: float = 1.0) -> float:
    """ρ U d / μ in the throat: the reduced model's (steady) flow through the stenosed segment,
    times ``flow_factor`` (a cycle's systolic peak over the mean), over the throat's area, d its
    diameter by area."""
    flow = next(
        abs(case.result.segment_flows_m3_s[i]) for i, p in enumerate(case.pieces) if p.stenosis is stenosis
    )
    radius_m = stenosis.min_radius_mm * 1e-3
    velocity = flow * flow_factor / (np.pi * radius_m**2)
    return float(case.density_kg_m3 * velocity * 2.0 * radius_m / case.viscosity_pa_s)


def unresolved_note(
    case: FlowCase, stenosis: Stenosis, cell_mm: float, flow_factor: float = 1.0
) -> str | None:
    """Why a stenosis's 3D drop is no reading on this lattice, or None when it is one."""
    reasons = []
    across = throat_cells_across(stenosis, cell_mm)
    if across < RESOLVED_THROAT_CELLS:
        finest = 2.0 * stenosis.min_radius_mm / RESOLVED_THROAT_CELLS
        reasons.append(
            f"its throat spans {across:.1f} cells (at least {RESOLVED_THROAT_CELLS:.0f} needed; cells of at "
            f"most {finest:.2f} mm)"
        )
    reynolds = throat_reynolds(case, stenosis, flow_factor)
    if reynolds > RESOLVED_MAX_THROAT_REYNOLDS:
        reasons.append(
            f"its throat Reynolds number is {reynolds:.0f}, beyond the "
            f"{RESOLVED_MAX_THROAT_REYNOLDS:.0f} the 3D stenosis loss was validated to"
        )
    if not reasons:
        return None
    return "the stenosis's 3D drop is not a reading: " + "; ".join(reasons)


def stenosis_drops_pa(flow: Flow3D, case: FlowCase) -> list[float]:
    """3D pressure drop across each stenosis found: centreline pressure two reference radii
    before the lesion minus six after it (where most of the jet's pressure has recovered),
    clipped to the branch."""
    drops = []
    for stenosis in case.stenoses:
        branch = case.tree.branches[stenosis.branch]
        s = branch.arclength_mm()
        at = s[int(np.argmin(np.linalg.norm(branch.points_lps - stenosis.position_lps, axis=1)))]
        before = at - stenosis.length_mm / 2 - 2.0 * stenosis.reference_radius_mm
        after = at + stenosis.length_mm / 2 + 6.0 * stenosis.reference_radius_mm
        taps = np.clip([before, after], s[0], s[-1])
        points = np.stack([np.interp(taps, s, branch.points_lps[:, i]) for i in range(3)], axis=1)
        p = flow.pressure_at(points, np.full(2, stenosis.reference_radius_mm))
        drops.append(float(p[0] - p[1]))
    return drops


def branch_pressures_3d_pa(flow: Flow3D, case: FlowCase) -> list[np.ndarray]:
    """3D pressure (Pa, gauge) at every centreline point, per branch (NaN off the lattice)."""
    return [flow.pressure_at(b.points_lps, b.radius_mm) for b in case.tree.branches]


# --- derived fields ------------------------------------------------------------------------------
def wall_shear_pa(
    flow: Flow3D, vertices_lps: np.ndarray, normals_lps: np.ndarray | None = None
) -> np.ndarray:
    """Wall shear stress magnitude (Pa) at each vertex of a vessel surface (outward normals)."""
    lbm = flow.lbm
    return fields.wall_shear_stress(
        lbm.velocity_m_s,
        flow.grid.fluid,
        flow.grid.grid_to_lps,
        lbm.setup.viscosity_pa_s,
        vertices_lps,
        normals_lps,
    )


def wall_points(flow: Flow3D) -> tuple[np.ndarray, np.ndarray]:
    """Points on the lattice's own wall (halfway between each fluid cell and a solid face
    neighbour, LPS mm) and their outward normals: where to read wall shear stress without a mesh."""
    fluid = flow.grid.fluid
    points, normals = [], []
    directions = flow.grid.grid_to_lps[:3, :3] / flow.grid.cell_mm
    for axis in range(3):
        for sign in (1, -1):
            beyond = np.roll(fluid, -sign, axis=axis)  # is c + step fluid?
            cells = np.argwhere(fluid & ~beyond)
            if not len(cells):
                continue
            step = np.zeros(3)
            step[axis] = 0.5 * sign
            points.append(flow.grid.lps(cells + step))
            normals.append(np.tile(directions[:, axis] * sign, (len(cells), 1)))
    return np.concatenate(points), np.concatenate(normals)


def wall_shear_summary(flow: Flow3D) -> dict[str, float]:
    """Wall shear stress over the lattice's wall: mean, 95th percentile and maximum (Pa)."""
    points, _ = wall_points(flow)
    tau = wall_shear_pa(flow, points)  # normals from the smoothed mask: the faces' own are axis-aligned
    return {
        "mean_pa": float(np.nanmean(tau)),
        "p95_pa": float(np.nanpercentile(tau, 95)),
        "max_pa": float(np.nanmax(tau)),
    }


def inlet_streamlines(flow: Flow3D, count: int = 200) -> list[fields.Streamline]:
    """Streamlines from seeds spread over the inlet's cut (one lattice layer inside it)."""
    inlet = flow.domain.ends[0]
    centre = inlet.centre_lps - inlet.outward * 2.0 * flow.grid.cell_mm
    seeds = fields.inlet_seeds(
        flow.grid.fluid,
        flow.grid.grid_to_lps,
        centre,
        inlet.outward,
        0.9 * np.sqrt(inlet.area_mm2 / np.pi),
        count,
    )
    return fields.streamlines(flow.lbm.velocity_m_s, flow.grid.fluid, flow.grid.grid_to_lps, seeds)
