"""Reduced (0D) steady blood-flow model on a tree of vessel segments.

Each segment loses pressure by Poiseuille friction, plus the Young–Tsai term where it carries a
stenosis (Young & Tsai 1973, J Biomech 6:395; the form used by SimVascular's 1D solver):

    ΔP = a·Q + b·|Q|·Q,   a = 8μ/π ∫ds/r⁴ + K_v·μ/(D₀·A₀),   b = K_t·ρ/(2A₀²)·(A₀/A_s − 1)²

with K_v = 32·(L_a/D₀)·(A₀/A_s)², L_a = 0.83·L_s + 1.64·D_s and K_t = 1.52.

The steady network is solved here rather than with svZeroDSolver (``svzerod``): that solver only
steps in time (a steady solve is a two-point transient), hands results back as a pandas table
(importing pandas costs ≈ 0.22 s on the first solve, over the 0.1 s budget) and its tolerance
in mixed SI units leaves Hagen–Poiseuille off by 4e-7 to 2e-3 relative. The steady problem is
small: Newton on node pressures, whose Jacobian is a grounded tree Laplacian (symmetric,
positive definite, solved leaves-first in O(n)), converges in a few steps to rounding error.

Outlets end in a resistance to the distal (venous) pressure. Without given resistances,
Murray's law sets them: outlet k should carry Q_in·r_k³/Σr³ at the mean arterial pressure, so
R_k = (P_mean − P_distal)/(Q_in·r_k³/Σr³), with r_k the outlet segment's distal radius.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from surgtwin.core.flow.errors import FlowError

PA_PER_MMHG = 133.322387415
MEAN_ARTERIAL_PRESSURE_PA = 93.0 * PA_PER_MMHG
BLOOD_VISCOSITY_PA_S = 3.5e-3
BLOOD_DENSITY_KG_M3 = 1060.0
YOUNG_TSAI_KT = 1.52

_MAX_NEWTON_STEPS = 60


@dataclass(frozen=True)
class Stenosis:
    """A narrowing inside a segment: fractional area reduction (0–1) over a lesion length."""

    area_reduction: float
    lesion_length_m: float


@dataclass(frozen=True)
class Segment:
    """One unbranched piece of vessel.

    ``radius_m`` is the mean radius, or a radius profile sampled evenly from the segment's start
    to its end (at least two values). With a stenosis the radius describes the healthy lumen
    around it (D₀ is taken from the mean radius); the Young–Tsai term models the narrowing, so
    a profile must not also contain it. ``parent`` is the index of the upstream segment, None
    for the root (the inlet).
    """

    length_m: float
    radius_m: float | tuple[float, ...]
    parent: int | None = None
    stenosis: Stenosis | None = None
    name: str = ""

    @property
    def mean_radius_m(self) -> float:
        if isinstance(self.radius_m, tuple):
            return float(np.mean(self.radius_m))
        return float(self.radius_m)

    @property
    def distal_radius_m(self) -> float:
        if isinstance(self.radius_m, tuple):
            return float(self.radius_m[-1])
        return float(self.radius_m)


@dataclass(frozen=True)
class FlowNetwork:
    """A tree of segments with a flow inlet at the root and resistance outlets at the leaves.

    ``outlet_resistances`` maps outlet segment index → Pa·s/m³; None uses Murray's law (module
    docstring). Pressures are gauge pressures in Pa.
    """

    segments: tuple[Segment, ...]
    inflow_m3_s: float
    outlet_resistances: Mapping[int, float] | None = None
    distal_pressure_pa: float = 0.0
    mean_pressure_pa: float = MEAN_ARTERIAL_PRESSURE_PA

    def children(self, index: int) -> list[int]:
        return [i for i, s in enumerate(self.segments) if s.parent == index]

    @property
    def root(self) -> int:
        roots = [i for i, s in enumerate(self.segments) if s.parent is None]
        if len(roots) != 1:
            raise FlowError(f"The vessel tree needs exactly one inlet segment; it has {len(roots)}.")
        return roots[0]

    @property
    def outlets(self) -> list[int]:
        has_child = {s.parent for s in self.segments}
        return [i for i in range(len(self.segments)) if i not in has_child]

    def path_to(self, index: int) -> list[int]:
        """Segment indices from the inlet down to ``index``."""
        path = [index]
        while (parent := self.segments[path[-1]].parent) is not None:
            path.append(parent)
        return path[::-1]


@dataclass(frozen=True)
class StenosisResult:
    segment_index: int
    area_reduction: float
    pressure_drop_pa: float  # the Young–Tsai term alone
    proximal_pressure_pa: float  # at the segment's start
    distal_pressure_pa: float  # at the segment's end
    pressure_ratio: float  # distal / proximal, an FFR-like number

    @property
    def pressure_drop_mmhg(self) -> float:
        return self.pressure_drop_pa / PA_PER_MMHG


@dataclass(frozen=True)
class OutletResult:
    segment_index: int
    flow_m3_s: float
    pressure_pa: float
    path: tuple[int, ...]  # segment indices from the inlet to this outlet
    pressure_drop_pa: float  # inlet pressure − outlet pressure along the path

    @property
    def flow_ml_s(self) -> float:
        return self.flow_m3_s * 1e6

    @property
    def pressure_drop_mmhg(self) -> float:
        return self.pressure_drop_pa / PA_PER_MMHG


@dataclass(frozen=True)
class ReducedResult:
    """Steady solution. Node 0 is the inlet; node i + 1 is the distal end of segment i."""

    segment_flows_m3_s: tuple[float, ...]
    node_pressures_pa: tuple[float, ...]
    outlets: tuple[OutletResult, ...]
    stenoses: tuple[StenosisResult, ...]
    outlet_resistances: Mapping[int, float]
    newton_steps: int
    solve_seconds: float
    proximal_nodes: tuple[int, ...] = field(repr=False)

    @property
    def inlet_pressure_pa(self) -> float:
        return self.node_pressures_pa[0]

    def proximal_pressure_pa(self, segment_index: int) -> float:
        return self.node_pressures_pa[self.proximal_nodes[segment_index]]

    def distal_pressure_pa(self, segment_index: int) -> float:
        return self.node_pressures_pa[segment_index + 1]


def murray_outlet_resistances(network: FlowNetwork) -> dict[int, float]:
    """Outlet resistances that divide the inflow as r³ at the network's mean pressure."""
    if network.inflow_m3_s <= 0:
        raise FlowError("Murray's-law outlets need a positive inflow; give outlet resistances instead.")
    driving = network.mean_pressure_pa - network.distal_pressure_pa
    if driving <= 0:
        raise FlowError("The mean pressure must lie above the distal pressure.")
    outlets = network.outlets
    cubes = {k: network.segments[k].distal_radius_m ** 3 for k in outlets}
    total = sum(cubes.values())
    return {k: driving / (network.inflow_m3_s * cubes[k] / total) for k in outlets}


def resolved_outlet_resistances(network: FlowNetwork) -> dict[int, float]:
    if network.outlet_resistances is None:
        return murray_outlet_resistances(network)
    resistances = {int(k): float(v) for k, v in network.outlet_resistances.items()}
    if set(resistances) != set(network.outlets):
        raise FlowError("Give a resistance for every outlet segment, and only for those.")
    if any(not (r > 0 and math.isfinite(r)) for r in resistances.values()):
        raise FlowError("Outlet resistances must be positive and finite.")
    return resistances


def with_stenosis_removed(network: FlowNetwork, segment_index: int) -> FlowNetwork:
    """The network after a stent: the segment keeps its healthy radius, loses its stenosis."""
    _check_index(network, segment_index)
    segments = list(network.segments)
    segments[segment_index] = replace(segments[segment_index], stenosis=None)
    # Murray's outlets depend on radii and inflow only, so they stay the same; freeze them anyway.
    return replace(network, segments=tuple(segments), outlet_resistances=resolved_outlet_resistances(network))


def with_inflow(network: FlowNetwork, inflow_m3_s: float) -> FlowNetwork:
    """The same vessels and outlet resistances (frozen at the old inflow) under a new inflow."""
    return replace(network, inflow_m3_s=inflow_m3_s, outlet_resistances=resolved_outlet_resistances(network))


def segment_loss_coefficients(
    segment: Segment, viscosity_pa_s: float, density_kg_m3: float
) -> tuple[float, float]:
    """(a, b) of ΔP = a·Q + b·|Q|·Q for one segment (module docstring)."""
    kv_term, kt_term = young_tsai_coefficients(segment, viscosity_pa_s, density_kg_m3)
    return poiseuille_resistance(segment, viscosity_pa_s) + kv_term, kt_term


def young_tsai_coefficients(
    segment: Segment, viscosity_pa_s: float, density_kg_m3: float
) -> tuple[float, float]:
    """(K_v·μ/(D₀·A₀), K_t·ρ/(2A₀²)·(A₀/A_s − 1)²): the stenosis loss on Q and on |Q|·Q."""
    if segment.stenosis is None:
        return 0.0, 0.0
    d0 = 2.0 * segment.mean_radius_m
    a0 = math.pi * d0 * d0 / 4.0
    area_ratio = 1.0 / (1.0 - segment.stenosis.area_reduction)  # A₀/A_s
    ds = d0 * math.sqrt(1.0 - segment.stenosis.area_reduction)
    la = 0.83 * segment.stenosis.lesion_length_m + 1.64 * ds
    kv = 32.0 * (la / d0) * area_ratio**2
    kt_term = YOUNG_TSAI_KT * density_kg_m3 / (2.0 * a0 * a0) * (area_ratio - 1.0) ** 2
    return kv * viscosity_pa_s / (d0 * a0), kt_term


def poiseuille_resistance(segment: Segment, viscosity_pa_s: float) -> float:
    """8μ/π ∫ds/r⁴ over the segment."""
    return 8.0 * viscosity_pa_s / math.pi * radius_integral(segment, -4.0)


def radius_integral(segment: Segment, power: float) -> float:
    """∫ r^power ds along the segment (trapezoid rule on a radius profile)."""
    if isinstance(segment.radius_m, tuple):
        radii = np.asarray(segment.radius_m, dtype=float)
        s = np.linspace(0.0, segment.length_m, radii.size)
        return float(np.trapezoid(radii**power, s))
    return segment.length_m * float(segment.radius_m) ** power


def solve_steady(
    network: FlowNetwork,
    viscosity_pa_s: float = BLOOD_VISCOSITY_PA_S,
    density_kg_m3: float = BLOOD_DENSITY_KG_M3,
) -> ReducedResult:
    """Steady flow in every segment and pressure at every node."""
    started = time.perf_counter()
    _validate(network, viscosity_pa_s, density_kg_m3)
    resistances = resolved_outlet_resistances(network)
    coeffs = np.array([segment_loss_coefficients(s, viscosity_pa_s, density_kg_m3) for s in network.segments])
    system = NetworkSystem.of(network, list(resistances))
    conductance = np.array([1.0 / r for r in resistances.values()])
    distal = np.full(conductance.size, network.distal_pressure_pa)
    flows, pressures, steps = system.solve(
        coeffs[:, 0], coeffs[:, 1], np.zeros(len(network.segments)), conductance, distal, network.inflow_m3_s
    )
    return _result(network, resistances, flows, pressures, viscosity_pa_s, density_kg_m3, steps, started)


@dataclass(frozen=True)
class NetworkSystem:
    """The tree's connectivity, ready for repeated solves (one per time step when pulsatile).

    Node 0 is the inlet; node i + 1 the distal end of segment i. ``outlets`` lists the outlet
    segments in the order their conductances and distal pressures are given.
    """

    upstream: np.ndarray
    downstream: np.ndarray
    order: list[int]
    outlet_nodes: np.ndarray

    @classmethod
    def of(cls, network: FlowNetwork, outlets: Sequence[int]) -> NetworkSystem:
        n = len(network.segments)
        upstream = np.array([0 if s.parent is None else s.parent + 1 for s in network.segments])
        outlet_nodes = np.array([k + 1 for k in outlets], dtype=int)
        return cls(upstream, np.arange(1, n + 1), _root_first_order(network), outlet_nodes)

    def solve(
        self,
        a: np.ndarray,
        b: np.ndarray,
        head: np.ndarray,
        outlet_conductance: np.ndarray,
        outlet_pressure: np.ndarray,
        inflow_m3_s: float,
        start: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Segment flows, node pressures and Newton steps for: segment i carries Q with
        ΔP + head_i = a_i·Q + b_i·|Q|·Q; outlet k drains (P − outlet_pressure_k)·conductance_k;
        the inlet injects ``inflow_m3_s``. ``start``: pressures to begin from (default: flat)."""
        n = self.downstream.size
        injected = np.zeros(n + 1)
        injected[0] = inflow_m3_s
        grounding = np.zeros(n + 1)
        grounding[self.outlet_nodes] = outlet_conductance

        def flows_and_slopes(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _invert_loss(p[self.upstream] - p[self.downstream] + head, a, b)

        # Newton from a flat pressure field: the first step is the linear (b = 0 near ΔP = 0) solution.
        pressures = np.full(n + 1, float(np.mean(outlet_pressure))) if start is None else start.copy()
        flows, slopes = flows_and_slopes(pressures)
        flow_scale = max(abs(inflow_m3_s), 1e-300)
        steps = 0
        while True:
            steps += 1
            residual = injected.copy()
            np.subtract.at(residual, self.upstream, flows)
            np.add.at(residual, self.downstream, flows)
            drained = outlet_conductance * (pressures[self.outlet_nodes] - outlet_pressure)
            residual[self.outlet_nodes] -= drained
            delta = _solve_tree_laplacian(self.order, self.upstream, slopes, grounding, residual)
            pressures = pressures + delta
            flows, slopes = flows_and_slopes(pressures)
            pressure_scale = float(np.max(np.abs(pressures))) + 1.0
            balanced = np.max(np.abs(residual)) <= 1e-14 * flow_scale
            if balanced or np.max(np.abs(delta)) <= 1e-12 * pressure_scale:
                break
            if steps == _MAX_NEWTON_STEPS:
                raise FlowError("The reduced flow model did not converge; check the vessel radii and flows.")
        if not np.all(np.isfinite(pressures)):
            raise FlowError("The reduced flow model gave non-finite pressures; check the vessel radii.")
        return flows, pressures, steps


def _root_first_order(network: FlowNetwork) -> list[int]:
    """Segment indices with every parent before its children."""
    children: dict[int | None, list[int]] = {}
    for i, segment in enumerate(network.segments):
        children.setdefault(segment.parent, []).append(i)
    order = list(children[None])
    for i in order:  # grows while it is walked: a breadth-first sweep
        order.extend(children.get(i, ()))
    return order


def _solve_tree_laplacian(
    order: list[int], upstream: np.ndarray, weights: np.ndarray, grounding: np.ndarray, rhs: np.ndarray
) -> np.ndarray:
    """Solve (tree Laplacian + diag(grounding))·x = rhs by eliminating leaves first.

    Node i + 1 hangs below node upstream[i] by an edge of weight weights[i]. On a tree the
    elimination creates no fill-in, so this is exact Gaussian elimination in O(n), without the
    dense O(n³) solve (and without waking BLAS threads, which cost ~1 s on a busy machine).
    """
    diagonal = grounding.copy()
    np.add.at(diagonal, upstream, weights)
    diagonal[1:] += weights
    reduced_rhs = rhs.copy()
    for i in reversed(order):
        node, parent, w = i + 1, int(upstream[i]), float(weights[i])
        diagonal[parent] -= w * w / diagonal[node]
        reduced_rhs[parent] += w * reduced_rhs[node] / diagonal[node]
    x = np.empty_like(rhs)
    x[0] = reduced_rhs[0] / diagonal[0]
    for i in order:
        node, parent = i + 1, int(upstream[i])
        x[node] = (reduced_rhs[node] + float(weights[i]) * x[parent]) / diagonal[node]
    return x


def _invert_loss(dp: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q and dQ/dΔP from ΔP = a·Q + b·|Q|·Q (monotone, so one root)."""
    root = np.sqrt(a * a + 4.0 * b * np.abs(dp))
    # (−a + root)/(2b) rewritten as 2|ΔP|/(a + root): exact as b → 0 and free of cancellation.
    magnitude = 2.0 * np.abs(dp) / (a + root)
    return np.sign(dp) * magnitude, 1.0 / root


def _result(
    network: FlowNetwork,
    resistances: dict[int, float],
    flows: np.ndarray,
    pressures: np.ndarray,
    viscosity_pa_s: float,
    density_kg_m3: float,
    steps: int,
    started: float,
) -> ReducedResult:
    proximal_nodes = tuple(0 if s.parent is None else s.parent + 1 for s in network.segments)
    inlet = float(pressures[0])
    outlets = tuple(
        OutletResult(
            segment_index=k,
            flow_m3_s=float(flows[k]),
            pressure_pa=float(pressures[k + 1]),
            path=tuple(network.path_to(k)),
            pressure_drop_pa=inlet - float(pressures[k + 1]),
        )
        for k in network.outlets
    )
    stenoses = []
    for i, segment in enumerate(network.segments):
        if segment.stenosis is None:
            continue
        proximal, distal = float(pressures[proximal_nodes[i]]), float(pressures[i + 1])
        kv_term, kt_term = young_tsai_coefficients(segment, viscosity_pa_s, density_kg_m3)
        q = float(flows[i])
        stenosis_only = kv_term * q + kt_term * abs(q) * q
        stenoses.append(
            StenosisResult(
                segment_index=i,
                area_reduction=segment.stenosis.area_reduction,
                pressure_drop_pa=stenosis_only,
                proximal_pressure_pa=proximal,
                distal_pressure_pa=distal,
                pressure_ratio=distal / proximal if proximal != 0 else math.nan,
            )
        )
    return ReducedResult(
        segment_flows_m3_s=tuple(float(q) for q in flows),
        node_pressures_pa=tuple(float(p) for p in pressures),
        outlets=outlets,
        stenoses=tuple(stenoses),
        outlet_resistances=resistances,
        newton_steps=steps,
        solve_seconds=time.perf_counter() - started,
        proximal_nodes=proximal_nodes,
    )


def _check_index(network: FlowNetwork, index: int) -> None:
    if not 0 <= index < len(network.segments):
        raise FlowError(f"There is no vessel segment {index}; the network has {len(network.segments)}.")


def _validate(network: FlowNetwork, viscosity_pa_s: float, density_kg_m3: float) -> None:
    if not network.segments:
        raise FlowError("The vessel network has no segments.")
    if not (viscosity_pa_s > 0 and density_kg_m3 > 0):
        raise FlowError("Blood viscosity and density must be positive.")
    if not math.isfinite(network.inflow_m3_s):
        raise FlowError("The inflow must be a finite number.")
    n = len(network.segments)
    for i, segment in enumerate(network.segments):
        _check_segment(i, segment, n)
    _check_tree(network)


def _check_segment(i: int, segment: Segment, n: int) -> None:
    radii: Sequence[float] = segment.radius_m if isinstance(segment.radius_m, tuple) else (segment.radius_m,)
    if isinstance(segment.radius_m, tuple) and len(radii) < 2:
        raise FlowError(f"Segment {i}: a radius profile needs at least two samples.")
    if not (segment.length_m > 0 and all(r > 0 and math.isfinite(r) for r in radii)):
        raise FlowError(f"Segment {i} needs a positive length and positive radii.")
    if segment.parent is not None and not 0 <= segment.parent < n:
        raise FlowError(f"Segment {i} names a parent segment {segment.parent} that is not there.")
    if segment.stenosis is not None:
        if not 0 < segment.stenosis.area_reduction < 1:
            raise FlowError(f"Segment {i}: a stenosis area reduction lies between 0 and 1 (exclusive).")
        if segment.stenosis.lesion_length_m < 0:
            raise FlowError(f"Segment {i}: the lesion length cannot be negative.")


def _check_tree(network: FlowNetwork) -> None:
    network.root  # noqa: B018 - raises unless exactly one root
    for start in range(len(network.segments)):
        seen = set()
        node: int | None = start
        while node is not None:
            if node in seen:
                raise FlowError("The vessel segments form a loop; a flow tree cannot have one.")
            seen.add(node)
            node = network.segments[node].parent
