"""`surgtwin build | export | measure` as users run them, on the sample case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import trimesh

from surgtwin.core.case import load_case
from tests.cli_run import TRUTH, run


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    case = tmp_path_factory.mktemp("build") / "sample.stwin"
    return case, json.loads(run("build", "sample_dicom", "-o", str(case), "--json").stdout)


def test_build_one_click_summary_and_case(built: tuple[Path, dict]) -> None:
    case, data = built
    assert data["schema"] == "surgtwin.build/1" and data["segmentation_source"] == "one_click"
    names = {row["name"] for row in data["segments"]}
    assert {"skin", "bone", "vessels"} <= names <= {"skin", "bone", "lungs", "airways", "vessels"}
    assert set(data["timings_s"]) == {"import", "segment", "mesh", "save"}
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(TRUTH / "labels.nii.gz")))
    voxel_ml = 2.0 * 2.0 * 3.0 / 1000
    body_ml = np.count_nonzero(labels) * voxel_ml
    all_ml = sum(row["volume_ml"] for row in data["segments"])
    assert all_ml == pytest.approx(body_ml, rel=0.03)  # the twin covers the body
    for row in data["segments"]:
        assert row["triangles"] > 0
        assert row["mesh_volume_ml"] == pytest.approx(row["volume_ml"], rel=0.06)
    scene = load_case(case)
    assert len(scene.volumes) == 1 and len(scene.segmentations) == 1
    assert len(scene.meshes) == len(data["segments"])


def test_measure_json(built: tuple[Path, dict]) -> None:
    case, data = built
    out = json.loads(run("measure", str(case), "--json", "--distance", "0,0,0", "3,4,0").stdout)
    assert out["schema"] == "surgtwin.measure/1"
    assert out["distance"]["distance_mm"] == pytest.approx(5.0)
    (seg,) = out["segmentations"]
    bone = next(r for r in seg["segments"] if r["name"] == "bone")
    assert bone["intensity"]["units"] == "HU" and bone["intensity"]["mean"] > 200
    assert bone["mesh"]["closed"] and bone["mesh"]["surface_area_mm2"] > 0
    # a point far outside the body is outside the skin surface
    far = json.loads(run("measure", str(case), "--json", "--to-surface", "skin", "0,-400,-90").stdout)
    assert far["to_surface"]["distance_mm"] > 50


@pytest.mark.parametrize("fmt", ["stl", "obj", "ply", "glb", "3mf"])
def test_export_meshes(built: tuple[Path, dict], tmp_path: Path, fmt: str) -> None:
    case, data = built
    out = json.loads(
        run(
            "export", str(case), "--format", fmt, "-o", str(tmp_path), "--segments", "bone,vessels", "--json"
        ).stdout
    )
    assert out["files"] and all(Path(f).is_file() for f in out["files"])
    if fmt == "stl":
        bone = trimesh.load(next(f for f in out["files"] if "bone" in Path(f).name))
        expected = next(r for r in data["segments"] if r["name"] == "bone")["mesh_volume_ml"]
        assert bone.is_watertight and bone.volume / 1000 == pytest.approx(expected, rel=0.005)


def test_dicom_seg_export_builds_back_into_the_same_case(built: tuple[Path, dict], tmp_path: Path) -> None:
    case, data = built
    (seg_file,) = [
        Path(f)
        for f in json.loads(
            run("export", str(case), "--format", "seg", "-o", str(tmp_path / "seg"), "--json").stdout
        )["files"]
    ]
    rebuilt = json.loads(
        run(
            "build", "sample_dicom", "--labels", str(seg_file), "-o", str(tmp_path / "again.stwin"), "--json"
        ).stdout
    )
    assert rebuilt["segmentation_source"] == "dicom_seg"
    before = {r["name"]: r["volume_ml"] for r in data["segments"]}
    after = {r["name"]: r["volume_ml"] for r in rebuilt["segments"]}
    assert after == before


def test_build_from_ground_truth_labels(tmp_path: Path) -> None:
    data = json.loads(
        run(
            "build",
            "sample_dicom",
            "--labels",
            str(TRUTH / "labels.nii.gz"),
            "--names",
            str(TRUTH / "labels.json"),
            "-o",
            str(tmp_path / "gt.stwin"),
            "--json",
        ).stdout
    )
    names = json.loads((TRUTH / "labels.json").read_text())
    assert {r["name"] for r in data["segments"]} == set(names.values())
    assert all(r["triangles"] > 0 for r in data["segments"])


def test_build_usage_errors(tmp_path: Path) -> None:
    result = run(
        "build", "sample_dicom", "--names", str(TRUTH / "labels.json"), "-o", str(tmp_path / "x.stwin"), rc=1
    )
    assert "--names goes with --labels" in result.stderr
    result = run("export", str(tmp_path / "none.stwin"), "--format", "stl", "-o", str(tmp_path), rc=1)
    assert "no such file" in result.stderr
    assert not (tmp_path / "x.stwin").exists()
