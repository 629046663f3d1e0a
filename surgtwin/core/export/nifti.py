"""NIfTI label map (compressed) with a names file beside it, as ``read_label_map`` reads them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from surgtwin.core.errors import SegmentationError, VolumeError
from surgtwin.core.export.common import write_atomic
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume


def nifti_bytes(segmentation: Segmentation, labels: list[int]) -> bytes:
    """The label map restricted to ``labels`` (others become background), as .nii.gz bytes."""
    kept = np.where(np.isin(segmentation.labels, labels), segmentation.labels, 0).astype(
        segmentation.labels.dtype
    )
    try:
        image = Volume(kept, segmentation.ijk_to_lps).to_sitk()
    except VolumeError as exc:
        raise SegmentationError(f"cannot write a NIfTI label map: {exc}") from exc
    # SimpleITK writes only to a path: write in a private temp folder, then move the bytes.
    with tempfile.TemporaryDirectory(prefix="surgtwin-nifti-") as tmp:
        path = Path(tmp) / "labels.nii.gz"
        sitk.WriteImage(image, str(path), useCompression=True)
        return path.read_bytes()


def names_json(segmentation: Segmentation, labels: list[int]) -> bytes:
    names = {str(label): segmentation.segments[label].name for label in sorted(labels)}
    return (json.dumps(names, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_nifti(
    segmentation: Segmentation, labels: list[int], out_dir: Path, stem: str = "labels"
) -> list[Path]:
    image = nifti_bytes(segmentation, labels)
    names = write_atomic(out_dir / f"{stem}.json", names_json(segmentation, labels))
    return [write_atomic(out_dir / f"{stem}.nii.gz", image), names]
