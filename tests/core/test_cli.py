"""The `surgtwin` command as users run it: a real subprocess, real files, real signals."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from surgtwin.core.case import load_case

SURGTWIN = [sys.executable, "-m", "surgtwin"]


def run(*args: str, check_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SURGTWIN, *args], capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert result.returncode == check_rc, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_info_json_lists_series_warnings_and_skipped(shared_data: Path) -> None:
    result = run("info", str(shared_data / "dcm_qa_ct"), "--json")
    data = json.loads(result.stdout)
    assert data["schema"] == "surgtwin.info/1"
    series = [s for p in data["patients"] for st in p["studies"] for s in st["series"]]
    tilted = [s for s in series if any(w["code"] == "gantry_tilt" for w in s["warnings"])]
    assert len(tilted) == 2
    for s in tilted:
        assert s["dimensions"][:2] == [512, 512] and s["spacing_mm"][0] < 0.5
    assert any(s["split_reason"] for s in series)
    assert any("DIRFILE" in sk["path"] for sk in data["skipped"])
    assert all(sk["reason"] for sk in data["skipped"])


def test_info_human_output(shared_data: Path) -> None:
    result = run("info", str(shared_data / "fnndsc_brain_mr" / "dicom"))
    assert result.stdout.count("Series ") == 4
    assert "[missing_slices]" in result.stdout


def test_convert_writes_geometry(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "totalseg_example" / "example_ct_dicom"
    out = tmp_path / "ct.nrrd"
    data = json.loads(run("convert", str(folder), "-o", str(out), "--json").stdout)
    image = sitk.ReadImage(str(out))
    assert image.GetSize() == (512, 512, 20)
    np.testing.assert_allclose(image.GetOrigin(), data["volume"]["origin_lps_mm"], atol=1e-3)
    reference = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))


def test_convert_refuses_tilt_without_resampling(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "ge.nii.gz"
    result = run(
        "convert", str(shared_data / "dcm_qa_ct" / "GE"), "--no-resample", "-o", str(out), check_rc=1
    )
    assert result.stderr.startswith("surgtwin: error:") and result.stderr.count("\n") == 1
    assert "regular grid" in result.stderr
    assert not out.exists()


def test_import_then_show_and_append(shared_data: Path, tmp_path: Path) -> None:
    case = tmp_path / "case.stwin"
    first = json.loads(run("import", str(shared_data / "dcm_qa_ct" / "GE"), "-o", str(case), "--json").stdout)
    assert first["schema"] == "surgtwin.case-summary/1"
    (vol,) = first["volumes"]
    assert vol["decisions"] and "gantry_tilt" in vol["decisions"][0]
    run("import", str(shared_data / "vmtk_aorta" / "aorta.mha"), "-o", str(case), "--append")
    shown = json.loads(run("show", str(case), "--json").stdout)
    assert len(shown["volumes"]) == 2
    scene = load_case(case)
    assert [v.modality for v in scene.volumes.values()][0] == "CT"


def test_failures_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = run("info", str(tmp_path / "nope"), check_rc=1)
    assert result.stderr == f"surgtwin: error: {tmp_path / 'nope'}: no such file or folder\n"
    (tmp_path / "note.txt").write_text("not an image")
    result = run("convert", str(tmp_path), "-o", str(tmp_path / "x.nii.gz"), "--json", check_rc=1)
    assert json.loads(result.stdout)["error"]["code"] == "no_images"
    damaged = tmp_path / "damaged.stwin"
    damaged.write_bytes(b"PK\x03\x04 this is not really a zip")
    result = run("show", str(damaged), check_rc=1)
    assert "damaged.stwin" in result.stderr
    assert run("frobnicate", check_rc=2).returncode == 2


def test_ctrl_c_cancels_cleanly_with_progress_bar(shared_data: Path, tmp_path: Path) -> None:
    """Run under a pseudo-terminal: the bar is drawn, Ctrl-C stops it, nothing is written."""
    case = tmp_path / "case.stwin"
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [*SURGTWIN, "import", str(shared_data / "lidc0314_chest_ct" / "dicom"), "-o", str(case)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        close_fds=True,
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 60
    while b"decoding slices" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                seen += os.read(primary, 4096)
            except OSError:
                break
    assert b"reading headers" in seen or b"decoding slices" in seen, seen
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=60)
    try:
        while True:
            chunk = os.read(primary, 4096)
            if not chunk:
                break
            seen += chunk
    except OSError:
        pass
    os.close(primary)
    assert rc == 130, seen
    assert b"cancelled" in seen and b"Traceback" not in seen
    assert not case.exists()
    assert not list(tmp_path.iterdir())  # no temp file left either


@pytest.mark.parametrize("fmt", ["nii.gz", "mha"])
def test_volume_file_round_trip(shared_data: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"t2.{fmt}"
    run(
        "convert",
        str(shared_data / "fnndsc_brain_mr" / "dicom"),
        "--series",
        _series_uid(shared_data, "AX FSE T2"),
        "-o",
        str(out),
    )
    back = json.loads(run("convert", str(out), "-o", str(tmp_path / "again.nrrd"), "--json").stdout)
    assert back["volume"]["dimensions"] == [384, 512, 56]  # one missing slice filled in


def _series_uid(shared_data: Path, description: str) -> str:
    data = json.loads(run("info", str(shared_data / "fnndsc_brain_mr" / "dicom"), "--json").stdout)
    series = [s for p in data["patients"] for st in p["studies"] for s in st["series"]]
    return next(s["uid"] for s in series if s["description"] == description)
