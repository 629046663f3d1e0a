"""Shared fixtures: the real test images in ../shared/data, and the repo's sample case."""

from __future__ import annotations

import gc
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


@pytest.fixture(scope="session", autouse=True)
def main_thread_gc():
    """Cycles are collected on the main thread only, for the whole run (as the app does on its
    GUI thread): with CPython's automatic collector, a helper thread (a process pool's
    manager, a simulation loop) could free another test's render window or widget."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem) -> None:
    from surgtwin.ui.gui_thread_gc import collect_due

    collect_due()
