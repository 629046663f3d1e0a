"""The embedded sample case (sample_dicom/): reproducible, valid DICOM, plausible anatomy."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from surgtwin.core.sample import LABEL_VALUES, LABELS, generate_sample

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_dicom"
LABEL_FILE = SAMPLE_DIR / "ground_truth" / "labels.nii.gz"


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def series() -> list[pydicom.Dataset]:
    """The committed series, sorted inferior -> superior (label map k order)."""
    datasets = [pydicom.dcmread(p) for p in sorted((SAMPLE_DIR / "dicom").glob("*.dcm"))]
    return sorted(datasets, key=lambda ds: float(ds.ImagePositionPatient[2]))


@pytest.fixture(scope="module")
def hu(series: list[pydicom.Dataset]) -> np.ndarray:
    return np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in series])


@pytest.fixture(scope="module")
def label_image() -> sitk.Image:
    return sitk.ReadImage(str(LABEL_FILE))


@pytest.fixture(scope="module")
def labels(label_image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(label_image)


def test_regenerating_reproduces_the_committed_files(tmp_path: Path) -> None:
    assert (SAMPLE_DIR / "dicom").is_dir(), "sample_dicom/ is missing: python -m surgtwin.core.sample"
    generate_sample(tmp_path)
    assert _files(tmp_path) == _files(SAMPLE_DIR)
    for name in sorted(_files(SAMPLE_DIR)):
        new, old = (tmp_path / name).read_bytes(), (SAMPLE_DIR / name).read_bytes()
        if name.endswith(".gz") and new != old:
            # Deflate output may differ between zlib builds; the payload must not.
            new, old = gzip.decompress(new), gzip.decompress(old)
        assert new == old, f"{name} differs from the committed file: regenerate sample_dicom/"


def test_series_is_a_valid_ct_series(series: list[pydicom.Dataset]) -> None:
    assert len(series) == 64
    first = series[0]
    for ds in series:
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == CTImageStorage
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.Modality == "CT" and ds.PatientID == "STWIN-SAMPLE-001"
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            assert ds[keyword].value == first[keyword].value
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == [2.0, 2.0]
        assert ds.ImagePositionPatient[:2] == first.ImagePositionPatient[:2]
        assert float(ds.SliceLocation) == float(ds.ImagePositionPatient[2])
        assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.PixelRepresentation) == (192, 192, 16, 0)
        assert int(ds.pixel_array.max()) < 2 ** int(ds.BitsStored)
        assert ds.RescaleType == "HU" and list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
        uid = ds.SOPInstanceUID
        assert uid.is_valid and len(uid) <= 64
    assert len({ds.SOPInstanceUID for ds in series}) == len(series)
    assert sorted(int(ds.InstanceNumber) for ds in series) == list(range(1, 65))
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in series])
    assert np.allclose(np.diff(z), float(first.SliceThickness))  # contiguous, +z superior


def test_label_map_has_the_dicom_geometry(
    series: list[pydicom.Dataset], label_image: sitk.Image, labels: np.ndarray
) -> None:
    first, second = series[0], series[1]
    row, col = (
        np.array(first.ImageOrientationPatient[:3]),
        np.array(first.ImageOrientationPatient[3:]),
    )
    normal = np.cross(row, col)
    step = np.array(second.ImagePositionPatient, float) - np.array(first.ImagePositionPatient, float)
    dz = float(step @ normal)
    spacing = (float(first.PixelSpacing[1]), float(first.PixelSpacing[0]), dz)
    assert np.allclose(label_image.GetOrigin(), np.array(first.ImagePositionPatient, float))
    assert np.allclose(label_image.GetSpacing(), spacing)
    assert np.allclose(
        np.array(label_image.GetDirection()).reshape(3, 3), np.column_stack([row, col, normal])
    )
    assert labels.shape == (len(series), first.Rows, first.Columns)
    assert labels.dtype == np.uint8
    # An independent DICOM reader agrees.
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(SAMPLE_DIR / "dicom")))
    ct = reader.Execute()
    assert np.allclose(ct.GetOrigin(), label_image.GetOrigin())
    assert np.allclose(ct.GetSpacing(), label_image.GetSpacing())
    assert np.allclose(ct.GetDirection(), label_image.GetDirection())
    names = json.loads((SAMPLE_DIR / "ground_truth" / "labels.json").read_text())
    assert {int(k): v for k, v in names.items()} == LABELS
    assert set(np.unique(labels)) == {0, *LABELS}


def test_ct_numbers_match_the_tissues(hu: np.ndarray, labels: np.ndarray) -> None:
    def mean(name: str) -> float:
        return float(hu[labels == LABEL_VALUES[name]].mean())

    assert mean("aorta") > 200
    assert mean("iliac_left") > 180 and mean("iliac_right") > 180
    assert 80 < mean("liver") < 130
    assert mean("liver_tumour") < mean("liver") - 30
    assert 120 < mean("kidney_left") < 220 and 120 < mean("kidney_right") < 220
    assert mean("fat") < -50
    assert mean("bone") > 300 and np.percentile(hu[labels == LABEL_VALUES["bone"]], 99) > 600
    assert mean("lung") < -500
    assert float(hu[labels == 0].mean()) < -950  # everything inside the body is labelled
    # Noise: the spread inside the liver, away from its edges, is CT-like.
    from scipy.ndimage import binary_erosion

    core = binary_erosion(labels == LABEL_VALUES["liver"], iterations=3)
    assert 9 < float(hu[core].std()) < 16


def _slice_areas(mask: np.ndarray, pixel_mm2: float = 4.0) -> np.ndarray:
    return mask.reshape(mask.shape[0], -1).sum(axis=1) * pixel_mm2


def test_aneurysm_is_over_1_8_times_the_normal_aorta(labels: np.ndarray) -> None:
    diameters = np.sqrt(4 * _slice_areas(labels == LABEL_VALUES["aorta"]) / np.pi)
    suprarenal = diameters[-20:]  # the top 20 slices, above the renal arteries
    normal = float(np.median(suprarenal))
    assert 18 < normal < 26
    assert diameters.max() > 1.8 * normal


def test_one_common_iliac_is_stenosed(labels: np.ndarray) -> None:
    left = _slice_areas(labels == LABEL_VALUES["iliac_left"])
    right = _slice_areas(labels == LABEL_VALUES["iliac_right"])
    below_bifurcation = (_slice_areas(labels == LABEL_VALUES["aorta"]) == 0) & (left > 0)
    assert below_bifurcation.sum() >= 8
    assert right[below_bifurcation].min() > 0  # narrowed, not occluded
    assert right[below_bifurcation].min() < 0.5 * left[below_bifurcation].min()


def test_organ_sizes_and_sides(labels: np.ndarray) -> None:
    voxel_ml = 2.0 * 2.0 * 3.0 / 1000.0

    def volume(name: str) -> float:
        return float((labels == LABEL_VALUES[name]).sum()) * voxel_ml

    def centre_x(name: str) -> float:  # LPS x (mm): + is the patient's left
        return float(np.argwhere(labels == LABEL_VALUES[name])[:, 2].mean()) * 2.0 - 191.0

    assert 1200 < volume("liver") < 2000
    assert 100 < volume("kidney_left") < 250 and 100 < volume("kidney_right") < 250
    tumour_diameter = (6 * volume("liver_tumour") * 1000 / np.pi) ** (1 / 3)
    assert 24 < tumour_diameter < 32
    assert centre_x("liver") < 0 < centre_x("spleen")
    assert centre_x("kidney_right") < 0 < centre_x("kidney_left")
    assert centre_x("aorta") > 0  # left of the midline
    # The tumour lies wholly within the liver.
    tumour = labels == LABEL_VALUES["liver_tumour"]
    from scipy.ndimage import binary_dilation

    rim = binary_dilation(tumour) & ~tumour
    assert set(np.unique(labels[rim])) <= {LABEL_VALUES["liver"]}
