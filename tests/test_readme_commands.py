"""The README's two commands are the contract with a new user and with CI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image

from surgtwin.core.case import load_case

REPO = Path(__file__).resolve().parents[1]


def _bash_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    blocks = _bash_blocks()
    test_command = next(b for b in blocks if "pytest" in b)
    ci_lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_main_command_opens_the_app_on_the_sample_and_shows_its_twin(tmp_path: Path) -> None:
    """The README's main command, scripted to save a screenshot and quit, on the test X server."""
    main_command = _bash_blocks()[0]
    prefix = "bash installers/setup.sh && .venv/bin/surgtwin "
    assert main_command.startswith(prefix)
    app_args = main_command[len(prefix) :].split()
    assert app_args[0] == "sample_dicom" and "--twin" in app_args
    assert os.environ.get("DISPLAY"), "pytest-xvfb provides the X server this test needs"
    shot = tmp_path / "main.png"
    result = subprocess.run(
        [sys.executable, "-m", "surgtwin", *app_args, "--screenshot", str(shot), "--quit"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "QT_QPA_PLATFORM": "xcb", "SURGTWIN_SETTINGS_DIR": str(tmp_path / "settings")},
    )
    assert result.returncode == 0, result.stderr
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert rgb.shape[0] > 400 and rgb.shape[1] > 600
    assert rgb.std() > 20  # slices and the twin, not a blank window
    reddish = (rgb[..., 0] > rgb[..., 1] + 60) & (rgb[..., 0] > rgb[..., 2] + 60)
    assert reddish.sum() > 200  # the vessels' colour in the 3D view and the slice overlays


def test_headless_build_makes_the_sample_twin(tmp_path: Path) -> None:
    """The same twin without a display, as the README says."""
    assert "surgtwin build sample_dicom -o sample.stwin" in (REPO / "README.md").read_text()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "surgtwin",
            "build",
            "sample_dicom",
            "-o",
            str(tmp_path / "sample.stwin"),
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {"skin", "bone", "vessels"} <= {row["name"] for row in summary["segments"]}
    scene = load_case(tmp_path / "sample.stwin")
    assert len(scene.meshes) == len(summary["segments"])


def test_import_places_the_sample_on_the_ground_truth_grid(tmp_path: Path) -> None:
    """The import step alone, on the committed sample."""
    case = tmp_path / "sample.stwin"
    result = subprocess.run(
        [sys.executable, "-m", "surgtwin", "import", "sample_dicom", "-o", str(case), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    (volume,) = load_case(case).volumes.values()
    assert summary["volumes"][0]["dimensions"] == [192, 192, 64]
    # The imported CT sits exactly on the ground-truth label map's grid.
    labels = sitk.ReadImage(str(REPO / "sample_dicom" / "ground_truth" / "labels.nii.gz"))
    np.testing.assert_allclose(volume.origin, labels.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(volume.spacing, labels.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(volume.direction.flatten(), labels.GetDirection(), atol=1e-9)
    names = {
        int(k): v
        for k, v in json.loads((REPO / "sample_dicom" / "ground_truth" / "labels.json").read_text()).items()
    }
    label_array = sitk.GetArrayFromImage(labels)
    aorta = next(k for k, v in names.items() if v == "aorta")
    liver = next(k for k, v in names.items() if v == "liver")
    assert volume.voxels[label_array == aorta].mean() > 200  # contrast-enhanced
    assert 60 < volume.voxels[label_array == liver].mean() < 150
    assert volume.units == "HU" and not volume.decisions
