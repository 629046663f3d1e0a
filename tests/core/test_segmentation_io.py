"""Import of segmentations made elsewhere: label maps with names files, and DICOM SEG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from surgtwin.core.case import load_case, save_case
from surgtwin.core.errors import SegmentationError
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.io import _KJI, read_dicom_seg, read_label_map
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.core.volume_files import read_volume_file


@pytest.fixture(scope="module")
def totalseg(shared_data: Path) -> Path:
    return shared_data / "totalseg_example"


@pytest.fixture(scope="module")
def example_ct(totalseg: Path) -> Volume:
    return read_volume_file(totalseg / "example_ct_sm.nii.gz")


def _write(tmp_path: Path, array: np.ndarray, name: str = "labels.nii.gz", spacing: float = 2.0) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([spacing] * 3)
    path = tmp_path / name
    sitk.WriteImage(image, str(path))
    return path


def _grid(shape_kji: tuple[int, int, int], spacing: float = 2.0, origin: float = 0.0) -> Volume:
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = origin
    return Volume(np.zeros(shape_kji, np.int16), affine)


# --- label maps ---------------------------------------------------------------------
def test_totalsegmentator_map_on_its_ct(totalseg: Path, example_ct: Volume) -> None:
    seg = read_label_map(totalseg / "example_seg.nii.gz", totalseg / "labels_class_map.json", example_ct)
    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(totalseg / "example_seg.nii.gz")))
    assert np.array_equal(seg.labels, raw)
    present = sorted(int(v) for v in np.unique(raw) if v)
    assert sorted(seg.segments) == present and len(present) == 41  # absent classes not created
    total = json.loads((totalseg / "labels_class_map.json").read_text())["total"]
    assert all(seg.segments[v].name == total[str(v)] for v in present)
    assert seg.segments[5].name == "liver"
    assert any("used 'total'" in d for d in seg.provenance["decisions"])
    assert np.allclose(seg.ijk_to_lps, example_ct.ijk_to_lps)


def test_class_map_task_can_be_chosen(totalseg: Path, example_ct: Volume) -> None:
    with pytest.raises(SegmentationError, match="no task 'nope'"):
        read_label_map(
            totalseg / "example_seg.nii.gz", totalseg / "labels_class_map.json", example_ct, "nope"
        )


def test_resampled_onto_a_coarser_grid_by_physical_position(totalseg: Path, example_ct: Volume) -> None:
    affine = example_ct.ijk_to_lps.copy()
    affine[:3, :3] *= 2.0
    affine[:3, 3] += example_ct.ijk_to_lps[:3, :3] @ [0.5, 0.5, 0.5]  # coarse centres between fine ones
    reference = Volume(np.zeros((15, 50, 61), np.int16), affine)
    seg = read_label_map(totalseg / "example_seg.nii.gz", totalseg / "labels_class_map.json", reference)
    assert seg.labels.shape == (15, 50, 61)
    assert any("resampled by nearest neighbour" in d for d in seg.provenance["decisions"])
    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(totalseg / "example_seg.nii.gz")))
    rng = np.random.default_rng(1)
    for k, j, i in zip(
        rng.integers(0, 15, 200), rng.integers(0, 50, 200), rng.integers(0, 61, 200), strict=True
    ):
        lps = reference.index_to_lps([i, j, k])
        fi, fj, fk = np.floor(example_ct.lps_to_index(lps)[0] + 0.5 + 1e-6).astype(int)
        assert seg.labels[k, j, i] == raw[fk, fj, fi]


def test_no_overlap_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, np.ones((4, 4, 4), np.uint8))
    with pytest.raises(SegmentationError, match="does not overlap"):
        read_label_map(path, None, _grid((4, 4, 4), origin=500.0))


def test_names_dict_unnamed_and_absent_labels(tmp_path: Path) -> None:
    array = np.zeros((4, 5, 6), np.uint8)
    array[1, 1:3, 1:3] = 2
    array[2, 2, 2] = 7
    path = _write(tmp_path, array)
    seg = read_label_map(path, {2: "liver", 3: "spleen"}, _grid((4, 5, 6)))
    assert {k: s.name for k, s in seg.segments.items()} == {2: "liver", 7: "label_7"}
    assert np.array_equal(seg.labels, array)


def _saved_and_loaded(seg: Segmentation, tmp_path: Path) -> Segmentation:
    scene = Scene()
    seg_id = scene.add(seg)
    save_case(scene, tmp_path / "case.stwin")
    back = load_case(tmp_path / "case.stwin").segmentations[seg_id]
    assert {k: s.name for k, s in back.segments.items()} == {k: s.name for k, s in seg.segments.items()}
    return back


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"1": "a", "2": "a"}, {1: "a", 2: "a_2"}),
        ({"1": "label_2"}, {1: "label_2", 2: "label_2_2"}),
        ({"2": "label_1"}, {1: "label_1_2", 2: "label_1"}),  # a name from the file wins
        ({"1": "a", "2": "a", "3": "a_2"}, {1: "a", 2: "a_3", 3: "a_2"}),  # a suffix takes no given name
    ],
)
def test_repeated_names_are_made_unique_and_recorded(
    tmp_path: Path, names: dict[str, str], expected: dict[int, str]
) -> None:
    array = np.zeros((4, 5, 6), np.uint8)
    for value in expected:
        array[value, 1, 1] = value
    names_file = tmp_path / "names.json"
    names_file.write_text(json.dumps(names))
    seg = read_label_map(_write(tmp_path, array), names_file, _grid((4, 5, 6)))
    assert {k: s.name for k, s in seg.segments.items()} == expected
    renames = [d for d in seg.provenance["decisions"] if "renamed" in d]
    wanted = {k: names.get(str(k), f"label_{k}") for k in expected}
    renamed = [f"label {k} {wanted[k]!r} -> {v!r}" for k, v in expected.items() if v != wanted[k]]
    assert len(renames) == 1 and renamed and all(r in renames[0] for r in renamed)
    _saved_and_loaded(seg, tmp_path)


def test_float_label_map_with_whole_values_is_accepted(tmp_path: Path) -> None:
    array = np.zeros((3, 3, 3), np.float32)
    array[1, 1, 1] = 4.0
    seg = read_label_map(_write(tmp_path, array), None, _grid((3, 3, 3)))
    assert list(seg.segments) == [4]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((3, 3, 3), 0.5, np.float32), "non-integer values"),
        (np.full((3, 3, 3), -1, np.int16), "within 0..65535"),
        (np.ones((2, 3, 3, 3), np.uint8), "must be 3D"),
        (np.ones((3, 3, 3, 3), np.uint8), "several values per voxel"),
    ],
)
def test_bad_label_maps(tmp_path: Path, array: np.ndarray, message: str) -> None:
    if array.ndim == 4:
        path = tmp_path / "four_d.nrrd"
        sitk.WriteImage(sitk.GetImageFromArray(array, isVector=array.shape[0] == 3), str(path))
    else:
        path = _write(tmp_path, array)
    with pytest.raises(SegmentationError, match=message):
        read_label_map(path, None, _grid((3, 3, 3)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ('{"1": "liver",', "not valid JSON"),
        ('["liver"]', "expected a JSON object"),
        ('{"one": "liver"}', "not a whole number"),
        ('{"0": "background"}', "outside 1..65535"),
        ('{"1": ""}', "non-empty text"),
    ],
)
def test_bad_names_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = _write(tmp_path, np.ones((3, 3, 3), np.uint8))
    names = tmp_path / "names.json"
    if content is not None:
        names.write_text(content)
    with pytest.raises(SegmentationError, match=message):
        read_label_map(path, names, _grid((3, 3, 3)))


def test_missing_label_map(tmp_path: Path) -> None:
    with pytest.raises(SegmentationError, match="not found"):
        read_label_map(tmp_path / "nothing.nii.gz", None, _grid((3, 3, 3)))


# --- DICOM SEG ------------------------------------------------------------------------
def _seg_grid(path: Path, coarsen: int = 1) -> Volume:
    import highdicom as hd

    geometry = hd.seg.segread(str(path)).get_volume_geometry()
    affine = np.asarray(geometry.affine) @ _KJI
    affine[:3, :2] *= coarsen
    k, j, i = geometry.spatial_shape
    return Volume(np.zeros((k, j // coarsen, i // coarsen), np.int16), affine)


@pytest.mark.parametrize("name", ["liver.dcm", "liver_j2k.dcm"])
def test_dicom_seg_that_decodes(shared_data: Path, name: str) -> None:
    path = shared_data / "pydicom_data_subset" / name
    seg = read_dicom_seg(path, _seg_grid(path))
    assert list(seg.segments) == [1]
    liver = seg.segments[1]
    assert liver.name == "Liver"
    assert liver.terminology is not None and liver.terminology["meaning"] == "Liver"
    assert liver.terminology["category_meaning"] == "Tissue"
    assert liver.color != (0.0, 0.0, 0.0)
    assert seg.voxel_count(1) == 107098  # every foreground pixel of the 3 frames
    assert "copied without resampling" in seg.provenance["decisions"][-1]


def test_dicom_seg_onto_a_coarser_grid(shared_data: Path) -> None:
    path = shared_data / "pydicom_data_subset" / "liver.dcm"
    seg = read_dicom_seg(path, _seg_grid(path, coarsen=2))
    assert any("resampled" in d for d in seg.provenance["decisions"])
    assert abs(seg.voxel_count(1) * 4 - 107098) / 107098 < 0.01


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("liver_deflate.dcm", "Deflated Image Frame Compression"),
        ("liver_rle.dcm", "pixel data cannot be decoded .*RLE Lossless"),
    ],
)
def test_dicom_seg_that_does_not_decode(shared_data: Path, name: str, message: str) -> None:
    path = shared_data / "pydicom_data_subset" / name
    with pytest.raises(SegmentationError, match=message):
        read_dicom_seg(path, _seg_grid(shared_data / "pydicom_data_subset" / "liver.dcm"))


def test_not_a_seg(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(SegmentationError, match="cannot be read as a DICOM SEG"):
        read_dicom_seg(shared_data / "pydicom_data_subset" / "693_UNCR.dcm", _grid((3, 3, 3)))
    (tmp_path / "x.dcm").write_bytes(b"not dicom")
    with pytest.raises(SegmentationError, match="not a DICOM file"):
        read_dicom_seg(tmp_path / "x.dcm", _grid((3, 3, 3)))
