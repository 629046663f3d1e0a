"""Grouping without UIDs, in-plane displaced slices, and atomic conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from surgtwin.cli.main import main
from surgtwin.core.dicom import scan
from surgtwin.core.dicom.loader import load_series
from tests.core.dicom_factory import slice_positions, write_series


def _strip_uids(paths: list[Path]) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        del ds.SeriesInstanceUID
        del ds.StudyInstanceUID
        ds.save_as(path)


def test_files_without_uids_are_never_merged_across_folders(tmp_path: Path) -> None:
    # Same positions, same everything but the patient: without UIDs they must stay apart.
    _strip_uids(write_series(tmp_path / "a", n_slices=5, patient_name="One^Patient", patient_id=""))
    _strip_uids(write_series(tmp_path / "b", n_slices=5, patient_name="Two^Patient", patient_id=""))
    inventory = scan([tmp_path])
    assert len(inventory.series) == 2
    for series in inventory.series:
        assert len(series.frames) == 5
        assert "missing_series_uid" in {f.code for f in series.findings}
        assert series.uid.startswith("no-uid-")
        assert inventory.find_series(series.uid) is series
        assert not any(f.code == "duplicate_slices" for f in series.findings)


def test_a_slice_displaced_in_plane_is_reported_and_placed(tmp_path: Path) -> None:
    positions = [list(p) for p in slice_positions(7, 1.5, (1, 0, 0, 0, 1, 0), (-10.0, -20.0, 30.0), 0.0)]
    positions[3][0] += 3.5  # 5 columns (0.7 mm) to the patient's left
    pixels = np.zeros((7, 16, 12), dtype=np.uint16)
    pixels[:, 8, 2] = 3000  # a marker: column 2 of every slice
    write_series(tmp_path, positions=positions, pixels=pixels, intercept=0.0)
    (series,) = scan([tmp_path]).series
    assert "inconsistent_positions" in {f.code for f in series.findings}
    volume = load_series(series)
    assert volume.decisions and "inconsistent_positions" in volume.decisions[0]
    # The displaced slice's marker lands 3.5 mm to the left of the others'.
    marker = np.argwhere(volume.voxels[3] == volume.voxels[3].max())[0]
    other = np.argwhere(volume.voxels[2] == volume.voxels[2].max())[0]
    lps3 = volume.index_to_lps([marker[1], marker[0], 3])[0]
    lps2 = volume.index_to_lps([other[1], other[0], 2])[0]
    assert lps3[0] - lps2[0] == pytest.approx(3.5, abs=0.71)


def test_rounding_in_positions_is_not_a_displacement(tmp_path: Path) -> None:
    positions = [list(p) for p in slice_positions(7, 1.5, (1, 0, 0, 0, 1, 0), (-10.0, -20.0, 30.0), 0.0)]
    positions[3][0] += 0.004  # below the tolerance: rounding in DS strings
    write_series(tmp_path, positions=positions)
    (series,) = scan([tmp_path]).series
    assert not series.findings and series.geometry.regular


def test_convert_refused_output_leaves_no_file_and_existing_target_untouched(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "ct", n_slices=4)
    target = tmp_path / "out.nii.gz"
    target.write_bytes(b"previous content")
    assert main(["convert", str(tmp_path / "ct"), "--series", "1.2.3", "-o", str(target)]) == 1
    assert target.read_bytes() == b"previous content"
    assert main(["convert", str(tmp_path / "ct"), "-o", str(tmp_path / "missing" / "x.nii.gz")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "ct"), "-o", str(target)]) == 0
    assert target.read_bytes() != b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct", "out.nii.gz"]  # no temp left
