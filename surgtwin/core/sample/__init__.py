"""The embedded sample case: a synthetic abdominal CT with its ground truth.

``generate_sample(out_dir)`` writes ``dicom/`` (a CT Image Storage series) and
``ground_truth/`` (label map + names) and a README. The output is byte-for-byte
reproducible; the repository's ``sample_dicom/`` is this function's output.
Headless: numpy, scipy, SimpleITK and pydicom only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from surgtwin.core.sample.anatomy import LABEL_VALUES, LABELS, build_layers, paint_labels
from surgtwin.core.sample.ct import RESCALE_INTERCEPT, simulate_ct
from surgtwin.core.sample.dicom_writer import write_series
from surgtwin.core.sample.ground_truth import readme_text, write_label_map, write_label_names
from surgtwin.core.sample.shapes import Grid

__all__ = [
    "LABELS",
    "LABEL_VALUES",
    "REPO_SAMPLE_DIR",
    "RESCALE_INTERCEPT",
    "SAMPLE_GRID",
    "SAMPLE_VERSION",
    "generate_sample",
    "render_sample",
]

logger = logging.getLogger(__name__)

# Bump when the phantom or the files change: it is hashed into every UID.
SAMPLE_VERSION = "1"
SAMPLE_SEED = 20240315
# 192 x 192 x 64 voxels of 2 x 2 x 3 mm; x and y centred on the patient.
SAMPLE_GRID = Grid(shape=(64, 192, 192), spacing=(2.0, 2.0, 3.0), origin=(-191.0, -191.0, -189.0))
# Where the sample lives in a source checkout (surgtwin/core/sample -> repository root).
REPO_SAMPLE_DIR = Path(__file__).resolve().parents[3] / "sample_dicom"


def render_sample(grid: Grid = SAMPLE_GRID) -> tuple[np.ndarray, np.ndarray]:
    """(stored CT pixels uint16, labels uint8), both ``[k, j, i]`` with k inferior -> superior."""
    layers = build_layers(grid)
    return simulate_ct(grid, layers, SAMPLE_SEED), paint_labels(grid, layers)


def generate_sample(out_dir: Path) -> None:
    """Write the sample case into ``out_dir`` (replacing a previous one there)."""
    out_dir = Path(out_dir)
    stored, labels = render_sample()
    dicom_dir = out_dir / "dicom"
    for stale in dicom_dir.glob("IM*.dcm"):  # a slice from an older grid would join the series
        stale.unlink()
    write_series(dicom_dir, SAMPLE_GRID, stored, SAMPLE_VERSION)
    truth_dir = out_dir / "ground_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    write_label_map(truth_dir / "labels.nii.gz", SAMPLE_GRID, labels)
    write_label_names(truth_dir / "labels.json", LABELS)
    voxel_ml = float(np.prod(SAMPLE_GRID.spacing)) / 1000.0
    counts = np.bincount(labels.ravel(), minlength=max(LABELS) + 1)
    volumes = {value: float(counts[value]) * voxel_ml for value in LABELS}
    readme = readme_text(SAMPLE_GRID, LABELS, volumes)
    (out_dir / "README.md").write_text(readme, encoding="utf-8")
    logger.info("sample case written to %s", out_dir)
