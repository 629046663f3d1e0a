"""Reduced (0D) steady flow model: Hagen–Poiseuille, Young–Tsai, mass balance, stent what-if."""

from __future__ import annotations

import math
import time

import pytest

from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.reduced import (
    PA_PER_MMHG,
    FlowNetwork,
    Segment,
    Stenosis,
    solve_steady,
    with_inflow,
    with_stenosis_removed,
)

MU = 3.5e-3
RHO = 1060.0


def _young_tsai(q: float, radius: float, area_reduction: float, lesion_length: float) -> float:
    """Young & Tsai (1973) written out independently of the module."""
    d0 = 2 * radius
    a0 = math.pi * radius**2
    a_s = a0 * (1 - area_reduction)
    d_s = math.sqrt(4 * a_s / math.pi)
    u = q / a0
    kv = 32 * ((0.83 * lesion_length + 1.64 * d_s) / d0) * (a0 / a_s) ** 2
    return kv * MU * u / d0 + 1.52 / 2 * RHO * (a0 / a_s - 1) ** 2 * abs(u) * u


def _binary_tree(count: int) -> tuple[Segment, ...]:
    """Heap-ordered tree: segment i feeds 2i+1 and 2i+2; radii shrink by Murray's 2^(-1/3)."""
    segments = []
    for i in range(count):
        depth = int(math.log2(i + 1))
        segments.append(
            Segment(
                length_m=0.03 + 0.002 * (i % 5),
                radius_m=0.005 * 2 ** (-depth / 3) * (1 + 0.05 * (i % 3)),
                parent=None if i == 0 else (i - 1) // 2,
                stenosis=Stenosis(0.7, 0.01) if i in (3, 10) else None,
            )
        )
    return tuple(segments)


def test_straight_tube_reproduces_hagen_poiseuille() -> None:
    length, radius, q = 0.12, 0.004, 6e-6
    network = FlowNetwork((Segment(length, radius),), q, outlet_resistances={0: 1.3e9})

    result = solve_steady(network, viscosity_pa_s=MU, density_kg_m3=RHO)

    expected = 8 * MU * length * q / (math.pi * radius**4)
    assert result.outlets[0].pressure_drop_pa == pytest.approx(expected, rel=1e-9)
    assert result.outlets[0].pressure_drop_mmhg == pytest.approx(expected / PA_PER_MMHG, rel=1e-9)
    assert result.segment_flows_m3_s[0] == pytest.approx(q, rel=1e-12)
    assert result.outlets[0].pressure_pa == pytest.approx(1.3e9 * q, rel=1e-9)


def test_radius_profile_integrates_inverse_fourth_power() -> None:
    # r(s) linear from r1 to r2: ∫ds/r⁴ = L/(3(r2−r1))·(r1⁻³ − r2⁻³); a fine profile must approach it.
    length, r1, r2, q = 0.1, 0.004, 0.003, 5e-6
    profile = tuple(r1 + (r2 - r1) * k / 2000 for k in range(2001))
    network = FlowNetwork((Segment(length, profile),), q, outlet_resistances={0: 1e9})

    result = solve_steady(network, viscosity_pa_s=MU, density_kg_m3=RHO)

    integral = length / (3 * (r1 - r2)) * (r2**-3 - r1**-3)
    assert result.outlets[0].pressure_drop_pa == pytest.approx(8 * MU * q / math.pi * integral, rel=1e-5)


@pytest.mark.parametrize("area_reduction", [0.5, 0.75, 0.9])
def test_single_stenosis_reproduces_young_tsai(area_reduction: float) -> None:
    length, radius, q, lesion = 0.05, 0.003, 4e-6, 0.008
    stenosed = Segment(length, radius, stenosis=Stenosis(area_reduction, lesion))
    network = FlowNetwork((stenosed,), q, outlet_resistances={0: 2e9})

    result = solve_steady(network, viscosity_pa_s=MU, density_kg_m3=RHO)

    expected_stenosis = _young_tsai(q, radius, area_reduction, lesion)
    expected_total = 8 * MU * length * q / (math.pi * radius**4) + expected_stenosis
    (stenosis,) = result.stenoses
    assert stenosis.pressure_drop_pa == pytest.approx(expected_stenosis, rel=1e-12)
    assert result.outlets[0].pressure_drop_pa == pytest.approx(expected_total, rel=1e-9)
    assert stenosis.pressure_ratio == pytest.approx(result.outlets[0].pressure_pa / result.inlet_pressure_pa)
    assert 0 < stenosis.pressure_ratio < 1


def test_bifurcation_conserves_mass_and_path_drops_add_up() -> None:
    q = 8e-6
    segments = (
        Segment(0.06, 0.006),
        Segment(0.08, 0.004, parent=0, stenosis=Stenosis(0.8, 0.01)),
        Segment(0.07, (0.0045, 0.004, 0.0042), parent=0),
    )
    network = FlowNetwork(segments, q)  # Murray's-law outlets

    result = solve_steady(network, viscosity_pa_s=MU, density_kg_m3=RHO)

    outflow = sum(o.flow_m3_s for o in result.outlets)
    assert outflow == pytest.approx(q, rel=1e-12, abs=0)
    flows = result.segment_flows_m3_s
    assert flows[0] == pytest.approx(flows[1] + flows[2], rel=1e-12, abs=0)
    assert flows[1] < flows[2]  # the stenosed branch carries less
    for outlet in result.outlets:
        along_path = 0.0
        for i in outlet.path:
            s = segments[i]
            drop = result.proximal_pressure_pa(i) - result.distal_pressure_pa(i)
            # each segment's own law, evaluated independently from the solved flow
            poiseuille_integral = (
                s.length_m / s.radius_m**4
                if isinstance(s.radius_m, float)
                else _trapezoid_inverse_fourth(s.length_m, s.radius_m)
            )
            expected = 8 * MU * flows[i] * poiseuille_integral / math.pi
            if s.stenosis is not None:
                expected += _young_tsai(flows[i], s.mean_radius_m, 0.8, 0.01)
            assert drop == pytest.approx(expected, rel=1e-9)
            along_path += drop
        assert outlet.pressure_drop_pa == pytest.approx(along_path, rel=1e-12)
        assert outlet.pressure_pa == pytest.approx(
            result.outlet_resistances[outlet.segment_index] * outlet.flow_m3_s
        )


def test_murray_outlets_split_flow_as_radius_cubed_without_vessel_losses() -> None:
    # With negligible vessel resistance the outlets alone set the split: r³ and the mean pressure.
    q = 5e-6
    segments = (Segment(1e-4, 0.01), Segment(1e-4, 0.004, parent=0), Segment(1e-4, 0.002, parent=0))
    result = solve_steady(FlowNetwork(segments, q), viscosity_pa_s=MU, density_kg_m3=RHO)

    flows = {o.segment_index: o.flow_m3_s for o in result.outlets}
    assert flows[1] / flows[2] == pytest.approx(8.0, rel=1e-4)
    assert result.inlet_pressure_pa == pytest.approx(93 * PA_PER_MMHG, rel=1e-3)


def test_removing_a_stenosis_lowers_inlet_pressure_by_its_drop() -> None:
    q = 5e-6
    segments = (
        Segment(0.05, 0.005),
        Segment(0.04, 0.004, parent=0, stenosis=Stenosis(0.85, 0.012)),
        Segment(0.05, 0.0035, parent=1),
    )
    network = FlowNetwork(segments, q)
    before = solve_steady(network, viscosity_pa_s=MU, density_kg_m3=RHO)

    stented = with_stenosis_removed(network, 1)
    after = solve_steady(stented, viscosity_pa_s=MU, density_kg_m3=RHO)

    (stenosis,) = before.stenoses
    assert stenosis.pressure_drop_pa > 100  # a real lesion, so the check below means something
    assert before.inlet_pressure_pa - after.inlet_pressure_pa == pytest.approx(
        stenosis.pressure_drop_pa, rel=1e-9
    )
    assert after.stenoses == ()
    assert network.segments[1].stenosis is not None  # the original network is untouched
    assert after.outlets[0].pressure_pa == pytest.approx(before.outlets[0].pressure_pa, rel=1e-12)


def test_changed_inflow_keeps_outlet_resistances_and_raises_stenosis_drop_superlinearly() -> None:
    segments = (Segment(0.05, 0.004), Segment(0.03, 0.003, parent=0, stenosis=Stenosis(0.75, 0.01)))
    network = FlowNetwork(segments, 3e-6)
    rest = solve_steady(network, viscosity_pa_s=MU, density_kg_m3=RHO)

    hyperaemia = solve_steady(with_inflow(network, 9e-6), viscosity_pa_s=MU, density_kg_m3=RHO)

    assert hyperaemia.outlet_resistances == rest.outlet_resistances
    assert hyperaemia.segment_flows_m3_s[1] == pytest.approx(9e-6, rel=1e-12)
    ratio = hyperaemia.stenoses[0].pressure_drop_pa / rest.stenoses[0].pressure_drop_pa
    assert 3 < ratio < 9  # linear viscous part plus quadratic inertial part
    assert hyperaemia.stenoses[0].pressure_ratio < rest.stenoses[0].pressure_ratio


def test_fifty_segment_tree_solves_fast_and_balances() -> None:
    network = FlowNetwork(_binary_tree(50), 80e-6)
    solve_steady(network)  # warm-up (first numpy calls)

    started = time.perf_counter()
    result = solve_steady(network)
    elapsed = time.perf_counter() - started

    print(f"50-segment steady solve: {elapsed * 1e3:.2f} ms, {result.newton_steps} Newton steps")
    assert elapsed < 1.0
    assert sum(o.flow_m3_s for o in result.outlets) == pytest.approx(80e-6, rel=1e-12, abs=0)
    assert len(result.outlets) == 25 and len(result.stenoses) == 2


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ((), "no segments"),
        ((Segment(0.05, 0.004), Segment(0.05, 0.004)), "exactly one inlet"),
        ((Segment(0.05, 0.004), Segment(0.05, 0.004, parent=2), Segment(0.05, 0.004, parent=1)), "loop"),
        ((Segment(0.05, -0.004),), "positive"),
        ((Segment(0.05, 0.004, stenosis=Stenosis(1.2, 0.01)),), "area reduction"),
    ],
)
def test_bad_networks_raise_readable_errors(segments: tuple[Segment, ...], message: str) -> None:
    with pytest.raises(FlowError, match=message):
        solve_steady(FlowNetwork(segments, 5e-6))


def _trapezoid_inverse_fourth(length: float, radii: tuple[float, ...]) -> float:
    h = length / (len(radii) - 1)
    values = [r**-4 for r in radii]
    return h * (sum(values) - (values[0] + values[-1]) / 2)
