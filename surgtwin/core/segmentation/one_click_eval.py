"""Accuracy of the one-click twin against reference label maps: Dice and mean
symmetric surface distance, with references resampled by physical geometry.

Which reference labels each twin segment is compared with is decided here, once, so
the tests, the benchmark's ``--accuracy`` and the docs report the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from surgtwin.core.importer import load_volume
from surgtwin.core.segmentation.one_click import TwinResult, one_click_twin
from surgtwin.core.volume import Volume

# Sample case (portal-venous phase): the twin's vessels are the arterial tree plus the
# portal vein; the vena cava (~135 HU, mixed with unopacified blood) is below any
# threshold that keeps enhancing kidney cortex out, so it is not expected.
SAMPLE_REFERENCE = {
    "bone": ("bone",),
    "vessels": ("aorta", "iliac_left", "iliac_right", "renal_arteries"),
    "lungs": ("lung",),
}
SAMPLE_ALL_VESSELS = ("aorta", "iliac_left", "iliac_right", "renal_arteries", "portal_vein", "vena_cava")

# TotalSegmentator "total" task names that count as bone / as contrast-filled vessels.
TOTALSEG_BONE_PREFIXES = (
    "vertebrae_",
    "rib_",
    "sternum",
    "sacrum",
    "humerus_",
    "scapula_",
    "clavicula_",
    "femur_",
    "hip_",
    "skull",
)
TOTALSEG_VESSELS = (
    "aorta",
    "pulmonary_vein",
    "brachiocephalic_trunk",
    "subclavian_artery_right",
    "subclavian_artery_left",
    "common_carotid_artery_right",
    "common_carotid_artery_left",
    "brachiocephalic_vein_left",
    "brachiocephalic_vein_right",
    "superior_vena_cava",
    "inferior_vena_cava",
    "portal_vein_and_splenic_vein",
    "iliac_artery_left",
    "iliac_artery_right",
    "iliac_vena_left",
    "iliac_vena_right",
)
# The arterial-phase crop's own vessel masks (files in aorta_report/).
AORTA_REPORT_VESSELS = (
    "aorta",
    "brachiocephalic_trunk",
    "celiac_trunk",
    "common_carotid_artery_left",
    "iliac_artery_left",
    "iliac_artery_right",
    "renal_arteries",
    "subclavian_artery_left",
    "superior_mesenteric_artery",
)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else 1.0


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def mean_surface_distance_mm(a: np.ndarray, b: np.ndarray, spacing_kji: np.ndarray) -> float:
    """Mean of the distances from each surface voxel of one mask to the other's surface, both ways."""
    sa, sb = _surface(a), _surface(b)
    if not sa.any() or not sb.any():
        return float("inf")
    da = ndimage.distance_transform_edt(~sb, sampling=spacing_kji)[sa]
    db = ndimage.distance_transform_edt(~sa, sampling=spacing_kji)[sb]
    return float((da.sum() + db.sum()) / (da.size + db.size))


def labels_on_volume(path: Path, volume: Volume) -> np.ndarray:
    """A reference label map resampled (nearest neighbour) onto the volume's grid by physical geometry."""
    reference = sitk.ReadImage(str(path))
    resampled = sitk.Resample(reference, volume.to_sitk(), sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(resampled)


def union(
    labels: np.ndarray,
    names: dict[int, str],
    wanted: tuple[str, ...] | None = None,
    prefixes: tuple[str, ...] = (),
) -> np.ndarray:
    values = [v for v, n in names.items() if (wanted and n in wanted) or n.startswith(prefixes or ("\0",))]
    return np.isin(labels, values)


def read_names(path: Path, task: str | None = None) -> dict[int, str]:
    data = json.loads(path.read_text())
    if task is not None:
        data = data[task]
    return {int(k): str(v) for k, v in data.items()}


def score(mask: np.ndarray, reference: np.ndarray, spacing_kji: np.ndarray) -> dict[str, float]:
    return {
        "dice": round(dice(mask, reference), 4),
        "msd_mm": round(mean_surface_distance_mm(mask, reference, spacing_kji), 3),
        "twin_ml": round(float(mask.sum()) * float(np.prod(spacing_kji)) / 1000.0, 1),
        "reference_ml": round(float(reference.sum()) * float(np.prod(spacing_kji)) / 1000.0, 1),
    }


# --- whole-case evaluations (shared by tests, benchmarks/one_click_twin.py --accuracy and the docs)


def _twin(path: Path) -> tuple[Volume, TwinResult]:
    volume, _ = load_volume(path)
    if not volume.units and not volume.modality:  # NIfTI CT crops carry no units; their values are HU
        volume.units = "HU"
    return volume, one_click_twin(volume)


def _report(volume: Volume, result: TwinResult, scores: dict[str, dict[str, float]]) -> dict[str, Any]:
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    return {
        "scores": scores,
        "volumes_ml": {k: round(v, 1) for k, v in result.volumes_ml(voxel_ml).items()},
        "skipped": dict(result.skipped),
        "measured": result.parameters["measured"],
        "seconds": round(sum(result.timings_s.values()), 2),
    }


def evaluate_sample(sample_dicom: Path) -> dict[str, Any]:
    volume, result = _twin(sample_dicom / "dicom")
    labels = labels_on_volume(sample_dicom / "ground_truth" / "labels.nii.gz", volume)
    names = read_names(sample_dicom / "ground_truth" / "labels.json")
    spacing = volume.spacing[::-1]
    body = np.logical_or.reduce([m for m in result.masks.values()])
    scores = {"body (all segments)": score(body, labels > 0, spacing)}
    for segment, wanted in SAMPLE_REFERENCE.items():
        if segment in result.masks:
            scores[segment] = score(result.masks[segment], union(labels, names, wanted), spacing)
    if "vessels" in result.masks:
        scores["vessels vs arteries+portal+caval"] = score(
            result.masks["vessels"], union(labels, names, SAMPLE_ALL_VESSELS), spacing
        )
    return _report(volume, result, scores)


def evaluate_totalseg_dicom(folder: Path) -> dict[str, Any]:
    volume, result = _twin(folder / "example_ct_dicom")
    labels = labels_on_volume(folder / "example_seg_dicom.nii.gz", volume)
    names = read_names(folder / "labels_class_map.json", "total")
    present = {v: n for v, n in names.items() if v in set(np.unique(labels).tolist())}
    spacing = volume.spacing[::-1]
    empty = np.zeros(labels.shape, dtype=bool)
    scores = {
        "bone": score(
            result.masks.get("bone", empty), union(labels, present, prefixes=TOTALSEG_BONE_PREFIXES), spacing
        ),
        "vessels": score(
            result.masks.get("vessels", empty), union(labels, present, TOTALSEG_VESSELS), spacing
        ),
    }
    report = _report(volume, result, scores)
    report["reference_labels"] = sorted(present.values())
    return report


def evaluate_aorta_report(folder: Path) -> dict[str, Any]:
    volume, result = _twin(folder / "ct_cropped.nii.gz")
    reference = np.zeros(volume.voxels.shape, dtype=bool)
    for name in AORTA_REPORT_VESSELS:
        if (folder / f"{name}.nii.gz").exists():
            reference |= labels_on_volume(folder / f"{name}.nii.gz", volume) > 0
    vessels = result.masks.get("vessels", np.zeros_like(reference))
    spacing = volume.spacing[::-1]
    # The reference has arteries only; the twin's blood pool also holds the heart chambers.
    scores = {"vessels": score(vessels, reference, spacing)}
    report = _report(volume, result, scores)
    report["reference_recall"] = round(float((vessels & reference).sum()) / max(int(reference.sum()), 1), 4)
    return report


def evaluate_lidc(folder: Path) -> dict[str, Any]:
    volume, result = _twin(folder)
    return _report(volume, result, {})
