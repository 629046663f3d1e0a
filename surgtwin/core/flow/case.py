"""One reduced-model flow case end to end, shared by the command line and the desktop app:
the vessel mask of one or more segments, its centreline tree and lesions, the network, the
steady solution, the virtual-stent what-if, and the rows and pressure profiles they show.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgtwin.core.flow.centerline import (
    Aneurysm,
    Stenosis,
    VesselTree,
    find_aneurysms,
    find_stenoses,
    vessel_tree,
)
from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.network import NetworkPiece, build_network
from surgtwin.core.flow.reduced import (
    BLOOD_DENSITY_KG_M3,
    BLOOD_VISCOSITY_PA_S,
    PA_PER_MMHG,
    FlowNetwork,
    ReducedResult,
    solve_steady,
    with_stenosis_removed,
)

DEFAULT_INLET_VELOCITY_M_S = 0.2  # mean velocity for the default inflow (large arteries at rest)
VESSEL_WORDS = ("aorta", "iliac", "artery", "vessel")  # segment names offered as vessels by default


def is_vessel_name(name: str) -> bool:
    return any(word in name.lower() for word in VESSEL_WORDS)


def vessel_mask(scene: Any, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The union of the named segments' masks (one grid) and its ijk→LPS affine.

    Raises SurgTwinError for an unknown or empty segment, FlowError for none or different grids.
    """
    from surgtwin.core.deform.setup import find_segment  # the segment lookup the simulators share

    parts = [find_segment(scene, name.strip()) for name in names if name.strip()]
    if not parts:
        raise FlowError("Choose at least one vessel segment.")
    mask = parts[0].mask.copy()
    for part in parts[1:]:
        if part.mask.shape != mask.shape or not np.allclose(part.ijk_to_lps, parts[0].ijk_to_lps):
            raise FlowError(
                f"Segments {parts[0].name!r} and {part.name!r} are on different grids; join segments of "
                "one segmentation."
            )
        mask |= part.mask
    return mask, parts[0].ijk_to_lps


def default_inflow_m3_s(tree: VesselTree) -> float:
    """Inflow at a mean velocity of 0.2 m/s through the inlet's cross-section."""
    inlet_radius_m = float(tree.branches[0].radius_mm[:5].mean()) * 1e-3
    return DEFAULT_INLET_VELOCITY_M_S * np.pi * inlet_radius_m**2


@dataclass
class FlowCase:
    """A traced vessel and its steady reduced-model solution (``stented`` once asked for)."""

    tree: VesselTree
    stenoses: list[Stenosis]
    aneurysms: list[Aneurysm]
    network: FlowNetwork
    pieces: list[NetworkPiece]
    result: ReducedResult
    viscosity_pa_s: float
    density_kg_m3: float
    seconds: float
    stented: ReducedResult | None = field(default=None)

    @property
    def inflow_ml_s(self) -> float:
        return self.network.inflow_m3_s * 1e6


def solve_case(
    mask_kji: np.ndarray,
    ijk_to_lps: np.ndarray,
    *,
    inlet_lps: Sequence[float] | np.ndarray | None = None,
    inflow_ml_s: float | None = None,
    viscosity_pa_s: float = BLOOD_VISCOSITY_PA_S,
    density_kg_m3: float = BLOOD_DENSITY_KG_M3,
) -> FlowCase:
    """Trace the centreline tree, find the lesions and solve steady flow (default inflow:
    :func:`default_inflow_m3_s`)."""
    if not (viscosity_pa_s > 0 and density_kg_m3 > 0):
        raise FlowError("Viscosity and density must be positive (Pa·s, kg/m³).")
    if inflow_ml_s is not None and not inflow_ml_s > 0:
        raise FlowError("The inflow must be positive (mL/s).")
    started = time.perf_counter()
    tree = vessel_tree(mask_kji, ijk_to_lps, inlet_lps)
    stenoses = find_stenoses(tree)
    aneurysms = find_aneurysms(tree)
    inflow = inflow_ml_s * 1e-6 if inflow_ml_s is not None else default_inflow_m3_s(tree)
    network, pieces = build_network(tree, stenoses, inflow)
    result = solve_steady(network, viscosity_pa_s, density_kg_m3)
    return FlowCase(
        tree=tree,
        stenoses=stenoses,
        aneurysms=aneurysms,
        network=network,
        pieces=pieces,
        result=result,
        viscosity_pa_s=viscosity_pa_s,
        density_kg_m3=density_kg_m3,
        seconds=time.perf_counter() - started,
    )


def stented_network(case: FlowCase) -> FlowNetwork:
    """The case's network with every stenosis removed (a virtual stent on each)."""
    stented = case.network
    for index, piece in enumerate(case.pieces):
        if piece.stenosis is not None:
            stented = with_stenosis_removed(stented, index)
    return stented


def solve_stented(case: FlowCase) -> ReducedResult:
    """Steady flow with every stenosis removed (a virtual stent on each); kept on ``case``."""
    case.stented = solve_steady(stented_network(case), case.viscosity_pa_s, case.density_kg_m3)
    return case.stented


# --- rows (JSON-ready) --------------------------------------------------------------------
def outlet_rows(case: FlowCase, result: ReducedResult | None = None) -> list[dict[str, Any]]:
    """Per outlet: its branch, end point, flow and pressure drop from the inlet."""
    rows = []
    for outlet in (result or case.result).outlets:
        piece = case.pieces[outlet.segment_index]
        rows.append(
            {
                "branch": piece.branch,
                "position_lps_mm": case.tree.branches[piece.branch].points_lps[-1].round(2).tolist(),
                "flow_ml_s": outlet.flow_ml_s,
                "pressure_drop_pa": outlet.pressure_drop_pa,
                "pressure_drop_mmhg": outlet.pressure_drop_mmhg,
            }
        )
    return rows


def stenosis_rows(case: FlowCase, result: ReducedResult | None = None) -> list[dict[str, Any]]:
    """Per stenosis found: place, severity and its Young–Tsai drop and pressure ratio."""
    by_segment = {s.segment_index: s for s in (result or case.result).stenoses}
    rows = []
    for index, piece in enumerate(case.pieces):
        if piece.stenosis is None:
            continue
        found, solved = piece.stenosis, by_segment.get(index)
        rows.append(
            {
                "branch": found.branch,
                "position_lps_mm": np.asarray(found.position_lps).round(2).tolist(),
                "area_reduction_percent": round(100.0 * found.area_reduction, 1),
                "min_radius_mm": found.min_radius_mm,
                "reference_radius_mm": found.reference_radius_mm,
                "length_mm": found.length_mm,
                "pressure_drop_pa": solved.pressure_drop_pa if solved else 0.0,
                "pressure_drop_mmhg": solved.pressure_drop_mmhg if solved else 0.0,
                "pressure_ratio": solved.pressure_ratio if solved else 1.0,
            }
        )
    return rows


def aneurysm_rows(case: FlowCase) -> list[dict[str, Any]]:
    return [
        {
            "branch": a.branch,
            "position_lps_mm": np.asarray(a.position_lps).round(2).tolist(),
            "dilation_percent": round(100.0 * a.dilation, 1),
            "max_radius_mm": a.max_radius_mm,
            "reference_radius_mm": a.reference_radius_mm,
        }
        for a in case.aneurysms
    ]


# --- pressure along the centrelines -----------------------------------------------------------
def branch_pressures_pa(case: FlowCase, result: ReducedResult | None = None) -> list[np.ndarray]:
    """Pressure (Pa) at every centreline point, per branch.

    The solution gives pressures at segment ends only; inside a segment the friction drop is
    spread in proportion to ∫ds/r⁴ (as Poiseuille accrues it) and the stenosis drop falls as a
    step at its narrowest point.
    """
    result = result or case.result
    stenosis_drop = {s.segment_index: s.pressure_drop_pa for s in result.stenoses}
    pressures = [np.zeros(len(b.points_lps)) for b in case.tree.branches]
    for index, piece in enumerate(case.pieces):
        segment = case.network.segments[index]
        radii = np.atleast_1d(np.asarray(segment.radius_m, dtype=float))
        count = piece.last - piece.first + 1
        if radii.size != count:
            radii = np.full(count, float(radii.mean()))
        weight = radii**-4.0
        cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (weight[1:] + weight[:-1]))])
        fraction = cumulative / cumulative[-1] if cumulative[-1] > 0 else np.zeros(count)
        proximal, distal = result.proximal_pressure_pa(index), result.distal_pressure_pa(index)
        step = stenosis_drop.get(index, 0.0)
        profile = proximal - (proximal - distal - step) * fraction
        if step and piece.stenosis is not None:
            points = case.tree.branches[piece.branch].points_lps[piece.first : piece.last + 1]
            at = int(np.argmin(np.linalg.norm(points - piece.stenosis.position_lps, axis=1)))
            profile[at:] -= step
        pressures[piece.branch][piece.first : piece.last + 1] = profile
    return pressures


@dataclass(frozen=True)
class PressurePath:
    """Pressure along one inlet→outlet path: distance from the inlet (mm), pressure (mmHg),
    and where its stenoses lie (mm from the inlet)."""

    outlet_branch: int
    distance_mm: np.ndarray
    pressure_mmhg: np.ndarray
    stenoses_mm: tuple[float, ...]


def pressure_paths(case: FlowCase, result: ReducedResult | None = None) -> list[PressurePath]:
    """One pressure profile per outlet, along the branches from the inlet to it."""
    per_branch = branch_pressures_pa(case, result)
    tree = case.tree
    paths = []
    for outlet_branch in tree.outlet_branches:
        distances, values, marks = [], [], []
        offset = 0.0
        for b in tree.path_to(outlet_branch):
            branch = tree.branches[b]
            arclength = branch.arclength_mm()
            distances.append(offset + arclength)
            values.append(per_branch[b] / PA_PER_MMHG)
            for stenosis in case.stenoses:
                if stenosis.branch == b:
                    at = int(np.argmin(np.linalg.norm(branch.points_lps - stenosis.position_lps, axis=1)))
                    marks.append(float(offset + arclength[at]))
            offset += float(arclength[-1])
        paths.append(
            PressurePath(outlet_branch, np.concatenate(distances), np.concatenate(values), tuple(marks))
        )
    return paths
