"""Header indexing in worker processes gives exactly the serial inventory."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

scan_module = importlib.import_module("surgtwin.core.dicom.scan")


def test_parallel_indexing_equals_serial(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folders = [
        shared_data / "fnndsc_brain_mr",
        shared_data / "dcm_qa_ct",
        shared_data / "pydicom_data_subset",
    ]
    serial = scan_module.scan(folders)
    monkeypatch.setattr(scan_module, "PARALLEL_MIN_FILES", 1)
    parallel = scan_module.scan(folders)
    assert parallel.to_dict() == serial.to_dict()
    assert sum(len(s.frames) for s in serial.series) > 250
