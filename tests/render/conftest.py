"""Render-tier fixtures: a working off-screen OpenGL (EGL, OSMesa, or Xvfb started here),
the sample case's volume + ground-truth segmentation + meshes, and an artefacts folder.

If no way to render is found the session errors: render tests never skip silently.
PNG artefacts go to tests/render/artifacts/ (git-ignored) or $SURGTWIN_RENDER_ARTIFACTS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from surgtwin.core.mesh import extract_meshes
from surgtwin.core.segmentation.io import read_label_map
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "sample_dicom"
# Shown in the 3D tests: colourful organs that the skin/fat/muscle would hide.
SHOWN = ["liver", "aorta", "vena_cava", "stomach", "gallbladder", "spleen", "bone", "kidney_left"]


@pytest.fixture(scope="session", autouse=True)
def offscreen() -> Iterator[object]:
    from surgtwin.render.offscreen import ensure_offscreen

    setup = ensure_offscreen()  # raises (test error, not skip) when nothing works
    print(f"\nrendering off-screen with {setup.status.window_class} {setup.status.environment}")
    yield setup
    setup.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("SURGTWIN_RENDER_ARTIFACTS", HERE / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nrender artefacts in {folder}")
    return folder


@pytest.fixture(scope="session")
def sample_volume() -> Volume:
    from surgtwin.core.importer import load_volume

    volume, _ = load_volume(SAMPLE / "dicom")
    return volume


@pytest.fixture(scope="session")
def sample_truth(sample_volume: Volume) -> Segmentation:
    truth = SAMPLE / "ground_truth"
    return read_label_map(truth / "labels.nii.gz", truth / "labels.json", sample_volume)


@pytest.fixture(scope="session")
def sample_meshes(sample_truth: Segmentation) -> dict:
    return extract_meshes(sample_truth, [sample_truth.label_of(n) for n in SHOWN])
