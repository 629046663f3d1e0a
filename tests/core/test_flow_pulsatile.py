"""Reduced model over the cardiac cycle: checked against the steady model, the analytic input
impedance of a tube into an RCR Windkessel, and conservation of mass over a cycle."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.flow.errors import FlowError
from surgtwin.core.flow.pulsatile import (
    DECAY_TIME_S,
    Waveform,
    Windkessel,
    default_windkessels,
    segment_inertance,
    solve_pulsatile,
)
from surgtwin.core.flow.reduced import FlowNetwork, Segment, Stenosis, poiseuille_resistance, solve_steady

MU, RHO = 3.5e-3, 1060.0
PERIOD = 0.8


def y_tree() -> tuple[Segment, ...]:
    """A trunk and two daughters, one with an 80 % stenosis."""
    return (
        Segment(0.06, 0.006),
        Segment(0.08, 0.004, parent=0, stenosis=Stenosis(0.8, 0.01)),
        Segment(0.07, (0.0045, 0.004, 0.0042), parent=0),
    )


def drained_to_the_veins(result) -> np.ndarray:
    """Flow through the outlets' R_d, (P_c − P_v) / R_d with P_c = P_node − R_p·Q: rigid vessels
    pass the inflow on at once, the capacitors store and release it (venous pressure 0)."""
    drained = np.zeros_like(result.inflow_m3_s)
    for k, w in result.windkessels.items():
        capacitor = result.node_pressures_pa[:, k + 1] - w.proximal * result.segment_flows_m3_s[:, k]
        drained += capacitor / w.distal
    return drained


def sine_waveform(mean: float, amplitude: float, samples: int) -> Waveform:
    t = np.arange(samples) / samples * PERIOD
    return Waveform(tuple(mean + amplitude * np.sin(2 * np.pi * t / PERIOD)), PERIOD)


def test_a_constant_inflow_gives_the_steady_solution_throughout_the_cycle() -> None:
    """With no pulse, capacitors and inertia carry nothing: every node's pressure is the steady
    model's with outlet resistance R_p + R_d (the stenosis' quadratic loss included)."""
    inflow = 8e-6
    windkessels = {1: Windkessel(2e7, 1e-9, 1.5e9), 2: Windkessel(0.0, 2e-9, 1.2e9)}
    network = FlowNetwork(y_tree(), inflow)
    result = solve_pulsatile(network, Waveform((inflow,) * 8, PERIOD), windkessels, MU, RHO)
    steady = solve_steady(FlowNetwork(y_tree(), inflow, {k: w.resistance for k, w in windkessels.items()}))
    assert result.periodic and result.cycles == 2  # already periodic: two equal cycles
    np.testing.assert_allclose(
        result.node_pressures_pa, np.tile(steady.node_pressures_pa, (400, 1)), rtol=1e-9
    )
    (drop,) = result.stenosis_drops_pa.values()
    np.testing.assert_allclose(drop, steady.stenoses[0].pressure_drop_pa, rtol=1e-9)


def input_impedance_error(steps: int) -> float:
    """Largest inlet-pressure error over the cycle against P = Z(ω)·Q for a tube into an RCR,
    Z = R + jωL + R_p + R_d / (1 + jωR_dC), relative to the pulse pressure."""
    tube = Segment(0.1, 0.004)
    windkessel = Windkessel(1e7, 1e-8, 1e8)
    q0, q1 = 5e-6, 3e-6
    result = solve_pulsatile(
        FlowNetwork((tube,), q0),
        sine_waveform(q0, q1, steps),
        {0: windkessel},
        MU,
        RHO,
        steps_per_cycle=steps,
    )
    omega = 2 * np.pi / PERIOD
    resistance, inertance = poiseuille_resistance(tube, MU), segment_inertance(tube, RHO)
    impedance = (
        resistance
        + 1j * omega * inertance
        + windkessel.proximal
        + windkessel.distal / (1 + 1j * omega * windkessel.distal * windkessel.compliance)
    )
    exact = q0 * (resistance + windkessel.resistance) + np.imag(
        impedance * q1 * np.exp(1j * omega * result.times_s)
    )
    assert result.periodic
    return float(np.max(np.abs(result.inlet_pressure_pa - exact)) / np.ptp(exact))


def test_a_sinusoidal_inflow_meets_the_analytic_input_impedance_with_first_order_convergence() -> None:
    coarse, fine = input_impedance_error(500), input_impedance_error(2000)
    assert fine < 2e-3
    assert coarse / fine > 3.0  # backward Euler: error ~ dt


def test_mass_is_conserved_over_a_cycle_and_compliance_smooths_the_pulse() -> None:
    mean = 1e-5
    network = FlowNetwork(y_tree(), mean)
    waveform = Waveform.generic(mean, heart_rate_bpm=75)
    result = solve_pulsatile(network, waveform, viscosity_pa_s=MU, density_kg_m3=RHO)
    assert result.periodic
    drained = drained_to_the_veins(result)
    # capacitors end the cycle as they began: what came in went out
    assert drained.mean() == pytest.approx(result.inflow_m3_s.mean(), rel=1e-4)
    assert drained.max() < 0.5 * result.inflow_m3_s.max()  # ... but later and smoother
    stiff = {k: Windkessel(w.proximal, w.compliance / 4, w.distal) for k, w in result.windkessels.items()}
    stiffer = solve_pulsatile(network, waveform, stiff, MU, RHO)
    assert np.ptp(stiffer.inlet_pressure_pa) > 1.5 * np.ptp(result.inlet_pressure_pa)
    assert stiffer.inlet_pressure_pa.mean() == pytest.approx(result.inlet_pressure_pa.mean(), rel=0.02)


def test_a_pulsatile_stenosis_loses_more_on_average_than_the_steady_flow_at_the_mean() -> None:
    """The Young–Tsai loss grows as Q², so over a cycle its mean exceeds the loss at the mean
    flow (Jensen); its peak comes in systole."""
    mean = 1e-5
    network = FlowNetwork(y_tree(), mean)
    waveform = Waveform.generic(mean)
    result = solve_pulsatile(network, waveform, viscosity_pa_s=MU, density_kg_m3=RHO)
    steady = solve_steady(
        FlowNetwork(y_tree(), mean, {k: w.resistance for k, w in result.windkessels.items()})
    )
    drop = result.stenosis_drops_pa[1]
    assert drop.mean() > 1.2 * steady.stenoses[0].pressure_drop_pa
    assert result.times_s[np.argmax(drop)] < 0.5 * waveform.period_s


def test_default_windkessels_keep_the_steady_resistance_and_the_decay_time() -> None:
    network = FlowNetwork(y_tree(), 1e-5)
    steady = solve_steady(network)
    for k, w in default_windkessels(network).items():
        assert w.resistance == pytest.approx(steady.outlet_resistances[k])
        assert w.distal * w.compliance == pytest.approx(DECAY_TIME_S)


def test_the_generic_waveform_has_the_asked_mean_and_rate() -> None:
    waveform = Waveform.generic(6e-5, heart_rate_bpm=60)
    assert waveform.mean_m3_s == pytest.approx(6e-5)
    assert waveform.period_s == pytest.approx(1.0) and waveform.heart_rate_bpm == pytest.approx(60)
    assert 3.0 < max(waveform.flows_m3_s) / waveform.mean_m3_s < 5.0 and min(waveform.flows_m3_s) > 0
    assert waveform.at(0.25) == pytest.approx(waveform.at(1.25))  # periodic


def test_a_measured_waveform_is_resampled_over_its_period() -> None:
    times = [0.0, 0.1, 0.3, 1.0]
    flows = [1e-5, 5e-5, 1e-5, 1e-5]
    waveform = Waveform.from_samples(times, flows)
    assert waveform.period_s == pytest.approx(1.0)
    assert waveform.at(0.1) == pytest.approx(5e-5) and waveform.at(0.2) == pytest.approx(3e-5)
    assert waveform.at(0.6) == pytest.approx(1e-5) and waveform.at(1.1) == pytest.approx(5e-5)


@pytest.mark.parametrize(
    ("times", "flows", "message"),
    [
        ([0.0, 0.2, 0.2, 0.8], [1.0, 2.0, 1.0, 1.0], "increase strictly"),
        ([0.1, 0.2, 0.4, 0.8], [1.0, 2.0, 1.0, 1.0], "start at 0"),
        ([0.0, 0.8], [1.0, 1.0], "at least 4"),
        ([0.0, 0.2, 0.4, 0.8], [1.0, float("nan"), 1.0, 1.0], "non-numeric"),
        ([0.0, 0.2, 0.4, 0.8], [-1.0, -2.0, -1.0, -1.0], "mean must be positive"),
        ([0.0, 2.0, 4.0, 8.0], [1.0, 2.0, 1.0, 1.0], "outside 0.2–3 s"),
    ],
)
def test_a_bad_waveform_is_refused_with_the_reason(times, flows, message) -> None:
    with pytest.raises(FlowError, match=message):
        Waveform.from_samples(times, flows)


def test_windkessels_must_cover_the_outlets() -> None:
    with pytest.raises(FlowError, match="every outlet"):
        solve_pulsatile(FlowNetwork(y_tree(), 1e-5), Waveform.generic(1e-5), {1: Windkessel(1e7, 1e-9, 1e9)})
    with pytest.raises(FlowError, match="C > 0"):
        Windkessel(1e7, 0.0, 1e9)


def test_a_waveform_with_reverse_flow_is_solved_and_conserves_mass() -> None:
    """Early diastolic backflow at the inlet (a measured femoral-like cycle): still periodic, and
    the cycle's mean outflow is its mean inflow."""
    times = [0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8]
    flows = [1e-6, 2.5e-5, 1e-5, -6e-6, 2e-6, 1e-6, 1e-6]
    waveform = Waveform.from_samples(times, flows)
    assert min(waveform.flows_m3_s) < 0
    result = solve_pulsatile(FlowNetwork(y_tree(), 1e-5), waveform, viscosity_pa_s=MU, density_kg_m3=RHO)
    assert result.periodic and np.all(np.isfinite(result.node_pressures_pa))
    assert drained_to_the_veins(result).mean() == pytest.approx(result.inflow_m3_s.mean(), rel=1e-4)
    assert result.segment_flows_m3_s[:, 0].min() < 0  # the trunk carries the backflow
