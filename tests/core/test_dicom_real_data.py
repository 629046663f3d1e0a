"""Every dataset in ../shared/data: geometry checked against the files' own tags,
read here independently with pydicom (not through surgtwin's header code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from surgtwin.core.dicom import scan
from surgtwin.core.dicom.loader import load_series
from surgtwin.core.errors import DicomError
from surgtwin.core.importer import load_volume


def _classic_slices(folder_or_files: Path | list[str]) -> list[pydicom.Dataset]:
    """Image files (all .dcm in a folder, or the given files), sorted along their own slice normal."""
    if isinstance(folder_or_files, Path):
        files = [
            p
            for p in sorted(folder_or_files.iterdir())
            if p.is_file() and not p.name.startswith(("LICENSE", "."))
        ]
    else:
        files = [Path(f) for f in folder_or_files]
    datasets = [pydicom.dcmread(p) for p in files]
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(datasets, key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), normal)))


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _corner_checks(volume, slices: list[pydicom.Dataset]) -> None:
    first, last = slices[0], slices[-1]
    iop = np.array(first.ImageOrientationPatient, float)
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    ipp0 = np.array(first.ImagePositionPatient, float)
    np.testing.assert_allclose(volume.index_to_lps([0, 0, 0])[0], ipp0, atol=1e-3)
    np.testing.assert_allclose(
        volume.index_to_lps([0, 0, len(slices) - 1])[0], np.array(last.ImagePositionPatient, float), atol=1e-3
    )
    cols, rows = int(first.Columns), int(first.Rows)
    np.testing.assert_allclose(
        volume.index_to_lps([cols - 1, 0, 0])[0], ipp0 + (cols - 1) * col_spacing * iop[:3], atol=1e-3
    )
    np.testing.assert_allclose(
        volume.index_to_lps([0, rows - 1, 0])[0], ipp0 + (rows - 1) * row_spacing * iop[3:], atol=1e-3
    )


@pytest.fixture(scope="module")
def lidc(shared_data: Path):
    folder = shared_data / "lidc0314_chest_ct" / "dicom"
    volume, inventory = load_volume(folder)
    return folder, volume, inventory


def test_lidc_ct_geometry_and_hounsfield_units(lidc) -> None:
    folder, volume, inventory = lidc
    slices = _classic_slices(folder)
    assert len(slices) == 275
    assert volume.voxels.shape == (275, 512, 512)
    assert volume.units == "HU" and volume.modality == "CT"
    _corner_checks(volume, slices)
    for k in (0, 137, 274):
        np.testing.assert_array_equal(volume.voxels[k], _hu(slices[k]))
    # one series despite 275 different FrameOfReferenceUIDs
    assert len({str(d.FrameOfReferenceUID) for d in slices}) > 1
    assert [s.frames.__len__() for s in inventory.series] == [275]
    assert not volume.findings and not volume.decisions


def test_enhanced_ct_equals_classic_slices(lidc, shared_data: Path) -> None:
    _, classic, _ = lidc
    enhanced, _ = load_volume(shared_data / "lidc0314_chest_ct" / "derived_enhanced_ct")
    assert enhanced.voxels.shape == (120, 512, 512)
    # geometry from the per-frame functional groups, read independently
    ds = pydicom.dcmread(next((shared_data / "lidc0314_chest_ct" / "derived_enhanced_ct").iterdir()))
    positions = [
        np.array(f.PlanePositionSequence[0].ImagePositionPatient, float)
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    lowest = min(positions, key=lambda p: p[2])
    np.testing.assert_allclose(enhanced.origin, lowest, atol=1e-3)
    k0 = classic.lps_to_index(enhanced.origin)[0]
    np.testing.assert_allclose(k0, np.round(k0), atol=1e-3)
    k = int(round(k0[2]))
    np.testing.assert_allclose(enhanced.ijk_to_lps, classic.ijk_to_lps @ _translate_k(k), atol=1e-3)
    np.testing.assert_array_equal(enhanced.voxels, classic.voxels[k : k + 120])


def _translate_k(k: int) -> np.ndarray:
    shift = np.eye(4)
    shift[2, 3] = k
    return shift


def test_transfer_syntaxes_decode_identically(shared_data: Path) -> None:
    files = sorted((shared_data / "dcm_qa_ts" / "In").glob("*.dcm"))
    assert len(files) == 9
    syntaxes = {str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID) for f in files}
    assert len(syntaxes) >= 6  # LE implicit/explicit, BE, RLE, JPEG lossless, JPEG-LS, J2K
    volumes = [load_volume(f)[0] for f in files]
    assert all("mosaic_not_unpacked" in {x.code for x in v.findings} for v in volumes)
    reference = pydicom.dcmread(files[0]).pixel_array
    for f, v in zip(files, volumes, strict=True):
        assert v.voxels.shape == (1, 384, 384), f.name
        np.testing.assert_array_equal(v.voxels[0], reference, err_msg=f.name)
        np.testing.assert_allclose(v.ijk_to_lps, volumes[0].ijk_to_lps, atol=1e-6)


@pytest.mark.parametrize("vendor", ["GE", "Philips"])
def test_gantry_tilt_detected_with_its_angle_and_resampled(shared_data: Path, vendor: str) -> None:
    folder = shared_data / "dcm_qa_ct" / vendor
    inventory = scan([folder])
    tilted = [s for s in inventory.series if any(f.code == "gantry_tilt" for f in s.findings)]
    assert len(tilted) == 1
    series = tilted[0]
    frame_files = sorted({f.display for f in series.frames})
    tag = abs(float(pydicom.dcmread(frame_files[0], stop_before_pixels=True).GantryDetectorTilt))
    assert tag == pytest.approx(18.5)
    assert abs(series.geometry.tilt_deg) == pytest.approx(tag, abs=0.05)
    assert any(f"{abs(series.geometry.tilt_deg):.2f}" in f.message for f in series.findings)
    with pytest.raises(DicomError, match="regular grid"):
        load_series(series, irregular="refuse")
    volume = load_series(series)
    assert volume.is_orthogonal
    assert volume.decisions and "gantry_tilt" in volume.decisions[0]
    # Each acquired pixel must be found at its own LPS position in the resampled volume.
    slices = _classic_slices(frame_files)
    ds = slices[len(slices) // 2]
    iop = np.array(ds.ImageOrientationPatient, float)
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    jj, ii = np.mgrid[100:400:7, 100:400:7]
    lps = (
        np.array(ds.ImagePositionPatient, float)
        + ii.reshape(-1, 1) * col_spacing * iop[:3]
        + jj.reshape(-1, 1) * row_spacing * iop[3:]
    )
    ijk = volume.lps_to_index(lps)
    sampled = ndimage.map_coordinates(volume.voxels.astype(np.float64), ijk[:, ::-1].T, order=1)
    acquired = _hu(ds)[jj, ii].ravel()
    error = np.abs(sampled - acquired)
    assert np.median(error) < 0.1 * np.std(acquired), (np.median(error), np.std(acquired))


def test_ge_variable_spacing_reported(shared_data: Path) -> None:
    inventory = scan([shared_data / "dcm_qa_ct" / "GE"])
    (series,) = inventory.series
    codes = {f.code for f in series.findings}
    assert {"gantry_tilt", "variable_spacing"} <= codes


@pytest.mark.parametrize(
    ("description", "removed_file", "gap_mm"),
    [("mocoMEMPRAGE_220FOV RMS", "36749432", 2.0), ("AX FSE T2", "36444420", 5.0)],
)
def test_mr_deleted_slice_is_reported(
    shared_data: Path, description: str, removed_file: str, gap_mm: float
) -> None:
    inventory = scan([shared_data / "fnndsc_brain_mr" / "dicom"])
    assert len(inventory.series) == 4  # four series mixed in one folder
    (series,) = [s for s in inventory.series if s.description == description]
    missing = [f for f in series.findings if f.code == "missing_slices"]
    assert len(missing) == 1 and missing[0].message.startswith("1 slice(s) missing")
    # the removed file's own position lies in the reported gap
    removed = pydicom.dcmread(shared_data / "fnndsc_brain_mr" / "slices_removed_upstream" / removed_file)
    normal = series.geometry.normal
    position = float(np.dot(np.array(removed.ImagePositionPatient, float), normal))
    steps = np.diff(series.geometry.positions_mm)
    gap_index = int(np.argmax(steps))
    assert steps[gap_index] == pytest.approx(gap_mm, abs=1e-3)
    lo, hi = series.geometry.positions_mm[gap_index : gap_index + 2]
    assert lo < position < hi
    volume = load_series(series)
    assert volume.voxels.shape[0] == len(series.frames) + 1
    assert "missing_slices" in volume.decisions[0]


def test_enhanced_mr_geometry_from_functional_groups(shared_data: Path) -> None:
    path = shared_data / "dcm_qa_enh" / "Philips" / "IM_0027_fMAP.dcm"
    ds = pydicom.dcmread(path)
    inventory = scan([path])
    assert inventory.series and all(s.loadable for s in inventory.series)
    assert sum(len(s.frames) for s in inventory.series) == int(ds.NumberOfFrames)
    frames = ds.PerFrameFunctionalGroupsSequence
    for series in inventory.series:
        volume = load_series(series)
        index = {f.frame_index for f in series.frames}
        positions = [np.array(frames[i].PlanePositionSequence[0].ImagePositionPatient, float) for i in index]
        iop = np.array(
            ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
            if "PlaneOrientationSequence" in ds.SharedFunctionalGroupsSequence[0]
            else frames[0].PlaneOrientationSequence[0].ImageOrientationPatient,
            float,
        )
        normal = np.cross(iop[:3], iop[3:])
        lowest = min(positions, key=lambda p: float(p @ normal))
        np.testing.assert_allclose(volume.origin, lowest, atol=1e-3)
        # values: frame by frame, with that frame's own rescale
        k_first = min(index, key=lambda i: float(positions[sorted(index).index(i)] @ normal))
        pvt = (
            frames[k_first].get("PixelValueTransformationSequence")
            or ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
        )
        expected = ds.pixel_array[k_first] * float(pvt[0].RescaleSlope) + float(pvt[0].RescaleIntercept)
        np.testing.assert_allclose(volume.voxels[0], expected, rtol=1e-5, atol=1e-3)


def test_multifile_enhanced_mr_series(shared_data: Path) -> None:
    inventory = scan([shared_data / "dcm_qa_enh" / "Siemens_XA10"])
    frames = sum(len(s.frames) for s in inventory.series)
    assert frames == 24
    for series in inventory.series:
        volume = load_series(series)
        assert volume.voxels.shape == (6, 64, 64)


def test_totalsegmentator_contrast_ct_series(shared_data: Path) -> None:
    folder = shared_data / "totalseg_example" / "example_ct_dicom"
    volume, _ = load_volume(folder)
    slices = _classic_slices(folder)
    assert volume.voxels.shape == (20, 512, 512)
    _corner_checks(volume, slices)
    np.testing.assert_array_equal(volume.voxels[10], _hu(slices[10]))


def test_pydicom_subset_never_crashes(shared_data: Path) -> None:
    folder = shared_data / "pydicom_data_subset"
    inventory = scan([folder])
    reported = {Path(p.path).name for p in inventory.skipped} | {
        Path(f).name for s in inventory.series for f in s.files
    }
    assert {p.name for p in folder.iterdir()} == reported  # every file accounted for
    reasons = {Path(p.path).name: p.reason for p in inventory.skipped}
    assert "truncated" in reasons["emri_small_jpeg_2k_lossless_too_short.dcm"]
    assert "floating-point" in reasons["parametric_map_float.dcm"]
    loaded = 0
    for series in inventory.series:
        if not series.loadable:
            assert series.not_loadable_reason
            continue
        try:
            load_series(series)
            loaded += 1
        except DicomError as exc:
            assert str(exc)
    assert loaded >= 5
    seg = [s for s in inventory.series if s.modality == "SEG"]
    assert seg and not any(s.loadable for s in seg)


def test_classic_multiframe_without_geometry_is_refused_clearly(shared_data: Path) -> None:
    inventory = scan([shared_data / "vmtk_aorta"])
    (series,) = inventory.series
    assert not series.loadable and "geometry" in series.not_loadable_reason
    with pytest.raises(DicomError, match="cannot be loaded as a volume"):
        load_series(series)


@pytest.mark.parametrize(
    ("relative", "shape_kji"),
    [("vmtk_aorta/aorta.mha", (34, 393, 157)), ("totalseg_example/example_ct_sm.nii.gz", (30, 101, 122))],
)
def test_volume_files_import(shared_data: Path, relative: str, shape_kji: tuple[int, int, int]) -> None:
    import SimpleITK as sitk

    path = shared_data / relative
    volume, inventory = load_volume(path)
    assert inventory is None
    assert volume.voxels.shape == shape_kji
    image = sitk.ReadImage(str(path))
    np.testing.assert_allclose(volume.origin, image.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(volume.spacing, image.GetSpacing(), atol=1e-6)


def test_every_volume_file_in_shared_data_loads_with_its_geometry(shared_data: Path) -> None:
    """All NIfTI / MetaImage files (CTs, MR, reference label maps): same grid as SimpleITK reads."""
    import SimpleITK as sitk

    paths = sorted(p for p in shared_data.rglob("*") if p.name.endswith((".nii.gz", ".nii", ".mha")))
    assert len(paths) > 40
    for path in paths:
        volume, _ = load_volume(path)
        image = sitk.ReadImage(str(path))
        if image.GetDimension() == 4:
            image = image[:, :, :, 0]
        assert volume.shape_ijk == image.GetSize()[:3], path
        np.testing.assert_allclose(volume.origin, image.GetOrigin(), atol=1e-5, err_msg=str(path))
        np.testing.assert_allclose(volume.spacing, image.GetSpacing(), atol=1e-6, err_msg=str(path))
        np.testing.assert_allclose(
            volume.direction.flatten(), image.GetDirection(), atol=1e-6, err_msg=str(path)
        )
