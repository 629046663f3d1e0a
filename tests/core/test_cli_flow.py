"""`surgtwin simulate flow` (reduced model) on the sample case's aorta–iliac tree: the right
iliac stenosis and the aortic aneurysm are found, flow is conserved, and a virtual stent
restores flow to the stenosed side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from surgtwin.core.sample.anatomy import ANEURYSM_MAX_Z, STENOSIS_Z
from tests.cli_run import build_truth_case, run

TREE = "aorta,iliac_left,iliac_right"


@pytest.fixture(scope="module")
def truth_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_truth_case(tmp_path_factory.mktemp("flow") / "truth.stwin")


@pytest.fixture(scope="module")
def flow(truth_case: Path) -> dict:
    result = run(
        "simulate", "flow", str(truth_case), "--segment", TREE, "--flow-rate", "60", "--stent", "--json"
    )
    return json.loads(result.stdout)


def test_the_tree_its_lesions_and_conserved_flow(flow: dict) -> None:
    assert flow["schema"] == "surgtwin.simulate.flow/1" and flow["model"] == "reduced"
    assert flow["inflow_ml_s"] == pytest.approx(60.0)
    assert flow["centreline"]["branches"] >= 3 and flow["centreline"]["bifurcations"] >= 1
    assert flow["inlet_lps_mm"][2] > -100  # the aorta's upper end, not an iliac
    outlets = flow["outlets"]
    assert len(outlets) == 2
    assert sum(o["flow_ml_s"] for o in outlets) == pytest.approx(60.0, rel=1e-9)  # mass conserved
    (stenosis,) = flow["stenoses"]
    assert abs(stenosis["position_lps_mm"][2] - STENOSIS_Z) < 10.0
    assert stenosis["position_lps_mm"][0] < 0  # patient right (L is +x)
    assert (
        stenosis["area_reduction_percent"] > 50.0
    )  # 88 % by construction; the sphere radius reads it milder
    assert stenosis["pressure_drop_pa"] > 0 and 0.0 < stenosis["pressure_ratio"] < 1.0
    assert any(abs(a["position_lps_mm"][2] - ANEURYSM_MAX_Z) < 20.0 for a in flow["aneurysms"])
    right = min(outlets, key=lambda o: o["position_lps_mm"][0])
    left = max(outlets, key=lambda o: o["position_lps_mm"][0])
    assert right["flow_ml_s"] < left["flow_ml_s"]  # the stenosed side gets less
    assert right["pressure_drop_pa"] > left["pressure_drop_pa"]


def test_a_virtual_stent_restores_flow_to_the_stenosed_side(flow: dict) -> None:
    before = {round(o["position_lps_mm"][0]): o for o in flow["outlets"]}
    after = {round(o["position_lps_mm"][0]): o for o in flow["stented"]["outlets"]}
    right = min(before)
    assert after[right]["flow_ml_s"] > before[right]["flow_ml_s"]
    assert flow["stented"]["inlet_pressure_mmhg"] < flow["inlet_pressure_mmhg"]
    assert sum(o["flow_ml_s"] for o in after.values()) == pytest.approx(60.0, rel=1e-9)


def test_more_flow_more_stenosis_drop(truth_case: Path, flow: dict) -> None:
    faster = json.loads(
        run("simulate", "flow", str(truth_case), "--segment", TREE, "--flow-rate", "120", "--json").stdout
    )
    ratio = faster["stenoses"][0]["pressure_drop_pa"] / flow["stenoses"][0]["pressure_drop_pa"]
    assert 2.0 < ratio < 4.0  # Young–Tsai: between linear (viscous) and quadratic (expansion) in flow
    assert np.isfinite(faster["inlet_pressure_mmhg"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "aorta", "--model", "3d", "--cell-size", "0.02"], "choose larger cells"),
        (["--segment", "heart"], "no segment named 'heart'"),
        (["--segment", "aorta", "--flow-rate", "-5"], "must be positive"),
    ],
)
def test_bad_input_is_one_clear_line(truth_case: Path, args: list[str], message: str) -> None:
    result = run("simulate", "flow", str(truth_case), *args, rc=1)
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_the_3d_tier_on_the_sample_tree(truth_case: Path) -> None:
    """The sample's aorta-iliac tree in 3D from the command line: coarse cells and a short run
    keep CI quick (the chain end to end; docs/flow.md has a finer, longer run)."""
    data = json.loads(
        run(
            "simulate", "flow", str(truth_case), "--segment", TREE, "--flow-rate", "60", "--model", "3d",
            "--cell-size", "1.7", "--max-steps", "20000", "--json",
        ).stdout
    )  # fmt: skip
    three_d = data["three_d"]
    assert three_d["cells"] > 10_000 and three_d["steps"] == 20_000 and three_d["mlups"] > 0
    inlet, *outlets = three_d["ends"]
    assert len(outlets) == 2 and inlet["flow_ml_s"] == pytest.approx(60.0, rel=0.05)
    assert sum(o["flow_ml_s"] for o in outlets) == pytest.approx(inlet["flow_ml_s"], rel=0.05)
    assert all(o["pressure_drop_pa"] > 0 for o in outlets)
    (stenosis,) = three_d["stenoses"]
    assert stenosis["position_lps_mm"] == data["stenoses"][0]["position_lps_mm"]
    assert stenosis["pressure_drop_pa"] > 0
    # the 81 % throat (2.3 mm radius by area) is 2.7 cells across 1.7 mm cells: no reading, and said so
    throat_mm = 2.0 * data["stenoses"][0]["min_radius_mm"]
    assert stenosis["throat_cells_across"] == pytest.approx(throat_mm / 1.7, abs=0.06)
    assert stenosis["throat_reynolds"] > 1000  # ~20 mL/s through a 4.6 mm throat: far beyond validation
    assert stenosis["resolved"] is False
    assert 0 < three_d["wall_shear_stress"]["mean_pa"] < three_d["wall_shear_stress"]["max_pa"]


def test_the_cardiac_cycle_on_the_sample_tree(truth_case: Path, flow: dict) -> None:
    """--waveform generic: the same tree over a 70 beats/min cycle with RCR outlets. Its means
    are the steady model's (60 mL/s in and out); pressure and the stenosis drop swing about them."""
    data = json.loads(
        run(
            "simulate", "flow", str(truth_case), "--segment", TREE, "--flow-rate", "60",
            "--waveform", "generic", "--json",
        ).stdout
    )  # fmt: skip
    cycle = data["pulsatile"]
    assert (
        cycle["periodic"] and cycle["heart_rate_bpm"] == pytest.approx(70) and cycle["waveform"] == "generic"
    )
    assert cycle["inflow_ml_s"]["mean"] == pytest.approx(60.0, rel=1e-3)
    assert sum(o["flow_ml_s"]["mean"] for o in cycle["outlets"]) == pytest.approx(60.0, rel=1e-3)
    inlet = cycle["inlet_pressure_mmhg"]
    assert inlet["diastolic"] < data["inlet_pressure_mmhg"] < inlet["systolic"]
    assert inlet["mean"] == pytest.approx(data["inlet_pressure_mmhg"], rel=0.05)
    (stenosis,) = cycle["stenoses"]
    assert stenosis["position_lps_mm"] == data["stenoses"][0]["position_lps_mm"]
    assert stenosis["pressure_drop_mmhg"]["peak"] > stenosis["pressure_drop_mmhg"]["mean"]
    assert (
        stenosis["pressure_drop_mmhg"]["mean"] > data["stenoses"][0]["pressure_drop_mmhg"]
    )  # Q² grows faster
    samples = cycle["samples"]
    assert len(samples["time_s"]) == len(samples["inlet_pressure_mmhg"]) >= 50
    assert max(samples["inflow_ml_s"]) == pytest.approx(cycle["inflow_ml_s"]["max"], rel=0.05)


def test_a_measured_waveform_file_sets_rate_and_flow(truth_case: Path, tmp_path: Path) -> None:
    waveform = tmp_path / "inflow.csv"
    waveform.write_text("time_s,flow_ml_s\n0,20\n0.1,150\n0.3,30\n0.5,10\n1.0,20\n", encoding="utf-8")
    data = json.loads(
        run(
            "simulate", "flow", str(truth_case), "--segment", TREE, "--waveform", str(waveform), "--json"
        ).stdout
    )
    cycle = data["pulsatile"]
    assert cycle["heart_rate_bpm"] == pytest.approx(60) and cycle["waveform"] == str(waveform)
    assert cycle["inflow_ml_s"]["max"] == pytest.approx(150, rel=1e-3)
    assert data["inflow_ml_s"] == pytest.approx(cycle["inflow_ml_s"]["mean"], rel=1e-3)  # steady at the mean


@pytest.mark.parametrize(
    ("extra", "content", "message"),
    [
        (["--heart-rate", "80"], None, "--heart-rate applies to --waveform generic"),
        (["--waveform", "generic", "--heart-rate", "500"], None, "between 20 and 300"),
        (
            ["--waveform", "FILE", "--flow-rate", "50"],
            "0,1\n0.2,2\n0.5,1\n1,1\n",
            "drop --heart-rate and --flow-rate",
        ),
        (["--waveform", "FILE"], "0,1\n0.2,x\n0.5,1\n1,1\n", "line 2: expected two numbers"),
        (["--waveform", "FILE"], "0,1\n0.5,2\n0.4,1\n1,1\n", "increase strictly"),
        (["--waveform", "missing.csv"], None, "missing.csv"),
    ],
)
def test_bad_waveform_input_is_one_clear_line(
    truth_case: Path, tmp_path: Path, extra: list[str], content: str | None, message: str
) -> None:
    path = tmp_path / "w.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    args = [str(path) if a == "FILE" else a for a in extra]
    result = run("simulate", "flow", str(truth_case), "--segment", TREE, *args, rc=1)
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_the_3d_tier_over_the_cardiac_cycle(truth_case: Path) -> None:
    """--model 3d --waveform generic: the lattice's inflow follows the heartbeat (two fast cycles
    on coarse cells keep CI quick); the last cycle's readings join the 3D block."""
    data = json.loads(
        run(
            "simulate", "flow", str(truth_case), "--segment", TREE, "--flow-rate", "60", "--model", "3d",
            "--cell-size", "1.8", "--waveform", "generic", "--heart-rate", "150", "--json",
        ).stdout
    )  # fmt: skip
    three_d, cycle = data["three_d"], data["three_d"]["cycle"]
    assert cycle["cycles"] == 2 and cycle["period_s"] == pytest.approx(0.4)
    assert three_d["steps"] == 2 * cycle["steps_per_cycle"] == 2 * three_d["averaged_over_steps"]
    assert three_d["converged"] is None  # a fixed number of cycles: no steady test
    inlet, *outlets = cycle["ends"]
    assert inlet["end"] == "inlet" and len(outlets) == 2
    assert inlet["flow_ml_s"]["mean"] == pytest.approx(60.0, rel=0.03)
    assert inlet["flow_ml_s"]["max"] > 3 * inlet["flow_ml_s"]["mean"]
    assert all(o["pressure_drop_mmhg"]["max"] > o["pressure_drop_mmhg"]["min"] for o in outlets)
    assert len(cycle["samples"]["time_s"]) >= 150
    (stenosis,) = three_d["stenoses"]
    assert stenosis["resolved"] is False  # 1.8 mm cells: no reading of the throat, and said so
    assert stenosis["throat_reynolds"] > 3000  # over a cycle the systolic peak (~4x the steady) decides
    assert data["pulsatile"]["heart_rate_bpm"] == pytest.approx(150)  # the reduced cycle alongside
