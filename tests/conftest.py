"""Shared fixtures: the real test images in ../shared/data, and the repo's sample case."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DICOM = REPO / "sample_dicom"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real medical images (CI always has them); tests skip clearly without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test images not found at {SHARED_DATA} (see ../shared/data/SOURCES.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_dicom() -> Path:
    return SAMPLE_DICOM
