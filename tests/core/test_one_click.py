"""One-click twin: accuracy against ground truth (sample case) and real reference
segmentations (TotalSegmentator), contrast detection, and the API's contracts.

The numbers are printed (run with ``-s``) and also reported by
``benchmarks/one_click_twin.py --accuracy``; thresholds sit below what is measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from surgtwin.core.errors import CancelledError, SegmentationError
from surgtwin.core.importer import load_volume
from surgtwin.core.progress import Progress
from surgtwin.core.segmentation import one_click_eval as ev
from surgtwin.core.segmentation.one_click import SEGMENT_NAMES, one_click_twin, to_segmentation
from surgtwin.core.volume import Volume


def _print(title: str, report: dict) -> None:
    print(
        f"\n{title}: {json.dumps(report['scores'])}\n"
        f"  volumes {report['volumes_ml']} skipped {report['skipped']}"
    )


@pytest.fixture(scope="module")
def sample_twin(sample_dicom: Path) -> tuple[Volume, object]:
    volume, _ = load_volume(sample_dicom / "dicom")
    return volume, one_click_twin(volume)


def test_sample_accuracy(sample_dicom: Path) -> None:
    report = ev.evaluate_sample(sample_dicom)
    _print("sample case", report)
    s = report["scores"]
    assert s["body (all segments)"]["dice"] > 0.98 and s["body (all segments)"]["msd_mm"] < 1.0
    assert s["bone"]["dice"] > 0.8 and s["bone"]["msd_mm"] < 2.0
    assert s["vessels"]["dice"] > 0.85 and s["vessels"]["msd_mm"] < 4.0
    assert s["lungs"]["dice"] > 0.8
    assert report["skipped"] == {"airways": "no trachea found (the scan may start below the carina)"}
    assert "contrast detected" in report["measured"]["contrast"]


def test_masks_disjoint_named_and_recorded(sample_twin) -> None:
    volume, result = sample_twin
    assert set(result.masks) <= set(SEGMENT_NAMES)
    stack = np.stack(list(result.masks.values())).astype(np.uint8)
    assert stack.sum(axis=0).max() == 1  # never two segments in one voxel
    assert all(m.dtype == bool and m.shape == volume.voxels.shape for m in result.masks.values())
    json.dumps(result.parameters)  # JSON-ready provenance
    assert result.parameters["bone_hu"] == 200.0 and "vessel_low_hu" in result.parameters["measured"]
    seg = to_segmentation(result, volume, reference_volume_id="ct")
    assert [s.name for s in seg.segments.values()] == [n for n in SEGMENT_NAMES if n in result.masks]
    for label, segment in seg.segments.items():
        assert np.array_equal(seg.labels == label, result.masks[segment.name])
        assert segment.provenance["tool"] == "one_click_twin"
    assert seg.provenance["skipped"] == result.skipped and seg.reference_volume_id == "ct"


def test_rejects_what_is_not_a_ct_in_hu(sample_twin) -> None:
    volume, _ = sample_twin
    mr = Volume(volume.voxels, volume.ijk_to_lps, modality="MR", units="")
    with pytest.raises(SegmentationError, match="needs a CT"):
        one_click_twin(mr)
    unitless = Volume((volume.voxels + 1024).astype(np.int16), volume.ijk_to_lps)  # raw stored values
    with pytest.raises(SegmentationError, match="Hounsfield"):
        one_click_twin(unitless)
    with pytest.raises(SegmentationError, match="no body"):
        one_click_twin(Volume(np.full((8, 16, 16), -1000, np.int16), np.eye(4), modality="CT", units="HU"))
    # A coronal stack: slices along the patient's anterior-posterior axis.
    coronal = np.array([[1.0, 0, 0, 0], [0, 0, 2.0, 0], [0, -2.0, 0, 0], [0, 0, 0, 1]])
    with pytest.raises(SegmentationError, match="axial") as info:
        one_click_twin(Volume(volume.voxels, coronal, modality="CT", units="HU"))
    assert info.value.code == "not_axial"


def test_cancellation(sample_twin) -> None:
    volume, _ = sample_twin
    stages: list[str] = []
    progress = Progress(lambda stage, done, total: stages.append(f"{done}/{total}"))
    progress.cancel()
    with pytest.raises(CancelledError):
        one_click_twin(volume, progress)


def test_totalsegmentator_dicom_bone_and_vessels(shared_data: Path) -> None:
    report = ev.evaluate_totalseg_dicom(shared_data / "totalseg_example")
    _print("TotalSegmentator DICOM (20 slices, contrast APPLIED)", report)
    assert "contrast detected" in report["measured"]["contrast"]
    assert report["scores"]["bone"]["dice"] > 0.6
    assert report["scores"]["vessels"]["dice"] > 0.4
    assert "lungs" in report["skipped"]


def test_aorta_report_vessels(shared_data: Path) -> None:
    report = ev.evaluate_aorta_report(shared_data / "totalseg_example" / "aorta_report")
    _print("aorta_report crop (arterial phase, dissection)", report)
    assert "contrast detected" in report["measured"]["contrast"]
    assert report["reference_recall"] > 0.6  # most of the reference arteries are found
    assert report["scores"]["vessels"]["dice"] > 0.3  # low: the twin's blood pool includes the heart


def test_lidc_lungs_airways_no_contrast(shared_data: Path) -> None:
    report = ev.evaluate_lidc(shared_data / "lidc0314_chest_ct" / "dicom")
    _print("LIDC-IDRI-0314 (no contrast)", report)
    volumes = report["volumes_ml"]
    assert 2000 < volumes["lungs"] < 8000
    assert 10 < volumes["airways"] < 400
    assert 300 < volumes["bone"] < 3000
    assert report["skipped"]["vessels"].startswith("no contrast detected")


@pytest.mark.parametrize(
    ("shape", "spacing_kji"),
    [((27, 33, 30), (1.0, 0.78, 0.78)), ((9, 31, 29), (2.5, 0.6, 0.6)), ((13, 19, 22), (0.5, 0.5, 0.5))],
)
def test_fast_grid_ops_match_their_plain_definitions(shape, spacing_kji) -> None:
    """The block mean, band refinement and cortex block test equal the plain full-volume
    versions (SimpleITK BinShrink of the edge-padded volume; expand + threshold everywhere),
    partial blocks included."""
    import SimpleITK as sitk
    from scipy import ndimage

    from surgtwin.core.segmentation import one_click_ops as ops

    rng = np.random.default_rng(3)
    hu = rng.integers(-1100, 1500, size=shape).astype(np.int16)
    grid = ops.Grid.for_spacing(shape, np.array(spacing_kji), 1.5)
    pad = [(0, (-n) % f) for n, f in zip(shape, grid.factors, strict=True)]
    padded = np.pad(hu, pad, mode="edge")
    expected = sitk.GetArrayFromImage(sitk.BinShrink(sitk.GetImageFromArray(padded), grid.factors[::-1]))
    assert np.array_equal(grid.shrink_mean(hu), expected)  # integer voxels: rounded half up
    real = hu + rng.random(shape).astype(np.float32)  # float voxels: plain means, no rounding
    padded_real = np.pad(real, pad, mode="edge")
    expected_real = sitk.GetArrayFromImage(
        sitk.BinShrink(sitk.GetImageFromArray(padded_real), grid.factors[::-1])
    )
    assert np.allclose(grid.shrink_mean(real), expected_real, rtol=0, atol=1e-3)

    coarse = ndimage.gaussian_filter(rng.random(grid.shape), 1.5) > 0.5
    code = ops.dilate(coarse, 1).astype(np.uint8) + ops.erode(coarse, 1)  # 2 inside, 1 band, 0 outside
    full_code = np.kron(code, np.ones(grid.factors, dtype=np.uint8))[: shape[0], : shape[1], : shape[2]]
    plain = (full_code == 2) | ((full_code == 1) & (hu > 0))
    assert np.array_equal(ops.refine(grid, coarse, hu, lambda v: v > 0), plain)
    box = ops.bounding_box(coarse, 1)
    assert box is not None
    cropped = ops.refine(grid, coarse[box], hu, lambda v: v > 0, tuple(s.start for s in box))
    assert cropped.flags.c_contiguous and np.array_equal(cropped, plain)

    half = sitk.GetArrayFromImage(
        sitk.BinShrink(sitk.GetImageFromArray((padded > 450).view(np.uint8)), grid.factors[::-1])
    )
    block = hu.reshape(-1)[grid.block_indices(coarse)]
    assert np.array_equal(2 * np.count_nonzero(block > 450, axis=1) >= block.shape[1], half[coarse] > 0)
