"""`surgtwin simulate deform` as users run it: the sample case's liver pulled forward with
the spine (bone) fixed, and bad input answered with a clear one-line reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from surgtwin.core.case import load_case
from tests.cli_run import build_truth_case, run

PULL_POINT = "19,-89,-36"  # the liver's most anterior voxel in the sample (LPS mm)


@pytest.fixture(scope="module")
def truth_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = tmp_path_factory.mktemp("sim") / "truth.stwin"
    return build_truth_case(case)


def test_liver_pulled_forward_with_the_spine_fixed(truth_case: Path, tmp_path: Path) -> None:
    out = tmp_path / "liver.ply"
    result = run(
        "simulate", "deform", str(truth_case), "--segment", "liver", "--fixed", "bone",
        "--load", f"{PULL_POINT}:0,-0.5,0", "--max-elements", "1000", "-o", str(out), "--json",
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert data["schema"] == "surgtwin.simulate.deform/1"
    assert 500 < data["elements"] <= 1000 and data["nodes"] > data["elements"]
    assert data["fixed_nodes"] > 0 and data["converged"] and data["inverted_elements"] == 0
    assert data["material"]["name"] == "liver"  # chosen from the segment's name
    assert 1.0 < data["max_displacement_mm"] < 100.0
    assert 0.0 < data["mean_displacement_mm"] < data["max_displacement_mm"]
    assert data["steps_per_second"] > 0 and data["output"] == str(out)
    # The deformed surface is the case's liver mesh, moved: same vertices and faces.
    scene = load_case(truth_case)
    liver = next(m for m in scene.meshes.values() if m.name == "liver")
    moved = trimesh.load(out, process=False)
    assert len(moved.vertices) == len(liver.vertices) == data["output_vertices"]
    assert np.array_equal(np.asarray(moved.faces), liver.faces)
    shift = np.asarray(moved.vertices) - liver.vertices
    near = np.linalg.norm(liver.vertices - np.array([19.0, -89.0, -36.0]), axis=1) < 15.0
    assert near.any() and shift[near, 1].mean() < -1.0  # pulled anterior (-y), where the force is
    assert np.abs(shift).max() <= data["max_displacement_mm"] * 1.6  # surface follows the nodes


def test_custom_tissue_is_stiffer_and_moves_less(truth_case: Path, tmp_path: Path) -> None:
    def pull(*material: str) -> float:
        result = run(
            "simulate", "deform", str(truth_case), "--segment", "liver", "--fixed", "bone",
            "--load", f"{PULL_POINT}:0,-0.5,0", "--max-elements", "600", *material,
            "-o", str(tmp_path / "x.ply"), "--json",
        )  # fmt: skip
        return json.loads(result.stdout)["max_displacement_mm"]

    soft = pull("--material", "liver")
    stiff = pull("--youngs", "41000", "--poisson", "0.48", "--density", "1060")
    assert 5.0 < soft / stiff < 20.0  # ten times the modulus: about a tenth of the displacement


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "heart", "--fixed", "bone"], "no segment named 'heart'"),
        (["--segment", "liver", "--load", f"{PULL_POINT}:0,-1,0"], "nothing holds"),
        (["--segment", "liver", "--fixed", "bone", "--load", "1,2:0,0,1"], "not a point"),
        (["--segment", "liver", "--fixed", "bone", "--material", "wood"], "no material preset named 'wood'"),
        (["--segment", "liver", "--fixed", "bone", "--youngs", "-5", "--poisson", "0.4", "--density", "1000"],
         "Young"),
        (["--segment", "liver", "--fixed", "spleen"], "does not touch"),
        (["--segment", "liver", "--fixed", "bone", "--load", "500,500,500:0,0,1"], "on its surface"),
        (["--segment", "liver", "--fixed", "bone", "--drag", "19,-89,-36:0,1"], "not a move in mm"),
        (["--segment", "liver", "--fixed", "bone", "-o", "liver.vtk"], "write the deformed mesh as .ply"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(truth_case: Path, args: list[str], message: str) -> None:
    result = run("simulate", "deform", str(truth_case), *args, "--max-elements", "300", rc=1)
    assert message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


def test_grasp_and_drag_reports_the_force_on_the_tool(truth_case: Path, tmp_path: Path) -> None:
    result = run(
        "simulate", "deform", str(truth_case), "--segment", "liver", "--fixed", "bone",
        "--drag", f"{PULL_POINT}:0,-10,0", "--rate", "200", "-o", str(tmp_path / "d.ply"), "--json",
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert data["element_budget"] < 1500  # 200 steps/s asks for a small mesh
    (drag,) = data["drags"]
    assert drag["nodes"] >= 1 and drag["move_mm"] == [0.0, -10.0, 0.0]
    force = np.array(drag["tool_force_n"])
    assert force[1] > 0.01  # the tissue pulls the tool back, posterior (+y)
    assert abs(force[1]) > abs(force[0]) and abs(force[1]) > abs(force[2])
    assert 5.0 < data["max_displacement_mm"] < 15.0  # the grasped nodes follow the 10 mm move
    assert data["converged"]
