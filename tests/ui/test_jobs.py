"""The app's two-step DICOM open: scan (headers + one preview per series), then load one series."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_fragments

from surgtwin.core.errors import CancelledError, DicomError
from surgtwin.core.importer import choose_series
from surgtwin.core.progress import Progress
from surgtwin.ui import jobs, thumbnails
from surgtwin.ui.thumbnails import THUMBNAIL_SIZE, placeholder_image, series_thumbnail

BRAIN_MR = "fnndsc_brain_mr/dicom"  # 4 series in one folder (SOURCES.md)
RLE_FILE = "dcm_qa_ts/In/4.dcm"  # one RLE-compressed MR slice


def corrupt_rle_copy(source: Path, target: Path) -> Path:
    """A copy whose headers are intact but whose RLE segments are zeroed (decoding fails)."""
    ds = pydicom.dcmread(source)
    assert ds.file_meta.TransferSyntaxUID.name == "RLE Lossless"
    raw = bytearray(source.read_bytes())
    fragment = next(f for f in generate_fragments(ds.PixelData) if f)
    start = raw.find(bytes(fragment[:64]), raw.rfind(b"\xe0\x7f\x10\x00"))
    assert start > 0
    raw[start + 64 : start + len(fragment)] = bytes(len(fragment) - 64)  # keep the 64-byte RLE header
    target.write_bytes(bytes(raw))
    return target


@pytest.fixture(scope="module")
def brain_scan(shared_data) -> jobs.ScanData:
    return jobs.scan_path(shared_data / BRAIN_MR, Progress())


def test_scan_lists_every_series_with_a_real_preview_decoding_one_image_each(shared_data, monkeypatch):
    decoded: list[str] = []
    real_iter = thumbnails.iter_decoded

    def counting(frames):
        decoded.extend(f.display for f in frames)
        return real_iter(frames)

    monkeypatch.setattr(thumbnails, "iter_decoded", counting)
    stages: list[str] = []
    data = jobs.scan_path(shared_data / BRAIN_MR, Progress(lambda stage, _n, _t: stages.append(stage)))

    series = data.inventory.series
    assert len(series) == 4
    assert set(data.thumbnails) == {s.uid for s in series}
    assert len(decoded) == len(series)  # headers for all files, pixels of one image per series
    assert "making previews" in stages and not data.thumbnail_reasons
    for s in series:
        image = data.thumbnails[s.uid]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert max(image.shape[:2]) == THUMBNAIL_SIZE
        assert float(image.std()) > 20, s.description  # a real picture, not a flat placeholder
    # The axial T2 is 512 rows x 384 columns of square pixels: its preview keeps that shape.
    t2 = next(s for s in series if s.description == "AX FSE T2")
    h, w, _ = data.thumbnails[t2.uid].shape
    assert abs(h / w - t2.frames[0].rows / t2.frames[0].columns) < 0.05
    # The previews differ from series to series (each shows its own image).
    firsts = [data.thumbnails[s.uid] for s in series[:2]]
    assert firsts[0].shape != firsts[1].shape or not np.array_equal(*firsts)


def test_ct_preview_uses_a_soft_tissue_window(sample_dicom):
    data = jobs.scan_path(sample_dicom / "dicom", Progress())
    (series,) = data.inventory.series
    image = series_thumbnail(series)[:, :, 0]
    assert np.array_equal(image, data.thumbnails[series.uid][:, :, 0])
    # Air (-1000 HU) is black and bone (far above 240 HU) white; organs fall in between.
    assert (image == 0).mean() > 0.1
    assert (image >= 250).any()
    assert ((image > 40) & (image < 215)).mean() > 0.1


def test_choosing_a_series_other_than_the_largest_loads_that_series(brain_scan):
    largest = choose_series(brain_scan.inventory, None)
    t2 = next(s for s in brain_scan.inventory.series if s.description == "AX FSE T2")
    assert t2.uid != largest.uid

    opened = jobs.load_series(brain_scan, t2.uid, Progress())

    assert opened.inventory is brain_scan.inventory and opened.scan is brain_scan
    volume = opened.volume
    assert volume is not None and volume.provenance["series_part"] == t2.uid
    columns, rows, slices = t2.geometry.dimensions
    assert volume.shape_ijk[:2] == (columns, rows)
    # One slice is missing upstream, so the loader resamples onto a regular grid: never fewer slices.
    assert volume.shape_ijk[2] >= slices
    assert volume.shape_ijk != largest.geometry.dimensions
    assert any(f.code == "missing_slices" for f in opened.findings)


def test_load_series_from_a_path_and_open_path_still_take_the_largest(shared_data, brain_scan):
    largest = choose_series(brain_scan.inventory, None)
    t2 = next(s for s in brain_scan.inventory.series if s.description == "AX FSE T2")

    from_path = jobs.load_series(shared_data / BRAIN_MR, t2.uid, Progress())
    assert from_path.volume.provenance["series_part"] == t2.uid
    assert from_path.scan is not None and not from_path.scan.thumbnails  # a plain scan, no previews

    opened = jobs.open_path(shared_data / BRAIN_MR, Progress())
    assert opened.volume.provenance["series_part"] == largest.uid and opened.scan is None
    with_previews = jobs.open_path(shared_data / BRAIN_MR, Progress(), thumbnails=True)
    assert with_previews.volume.provenance["series_part"] == largest.uid
    assert with_previews.scan is not None and len(with_previews.scan.thumbnails) == 4

    with pytest.raises(DicomError, match="no series with UID"):
        jobs.load_series(brain_scan, "1.2.3.not-there", Progress())


def test_undecodable_middle_image_gives_a_placeholder_and_a_finding(sample_dicom, shared_data, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(sample_dicom / "dicom", folder)
    bad = corrupt_rle_copy(shared_data / RLE_FILE, folder / "corrupt.dcm")

    data = jobs.scan_path(folder, Progress())

    assert len(data.inventory.series) == 2
    bad_series = next(s for s in data.inventory.series if str(bad) in s.files)
    good_series = next(s for s in data.inventory.series if s is not bad_series)
    assert np.array_equal(data.thumbnails[bad_series.uid], placeholder_image())
    assert "cannot be decoded" in data.thumbnail_reasons[bad_series.uid]
    finding = next(f for f in data.findings if f.code == "preview_not_decoded")
    assert finding.path == str(bad) and "cannot be decoded" in finding.message
    assert good_series.uid not in data.thumbnail_reasons
    assert float(data.thumbnails[good_series.uid].std()) > 20
    # Loading the broken series fails with a DicomError; the good one still loads from the same scan.
    with pytest.raises(DicomError):
        jobs.load_series(data, bad_series.uid, Progress())
    good = jobs.load_series(data, good_series.uid, Progress())
    assert good.volume.shape_ijk == good_series.geometry.dimensions
    assert finding in good.findings


def test_cancel_stops_the_scan_previews_and_the_load(shared_data, brain_scan):
    def cancel_at(stage_name: str) -> Progress:
        progress = Progress(lambda stage, _n, _t: stage == stage_name and progress.cancel())
        return progress

    with pytest.raises(CancelledError):
        jobs.scan_path(shared_data / BRAIN_MR, cancel_at("reading headers"))
    with pytest.raises(CancelledError):
        jobs.scan_path(shared_data / BRAIN_MR, cancel_at("making previews"))
    with pytest.raises(CancelledError):
        jobs.load_series(brain_scan, None, cancel_at("decoding slices"))


def test_scan_path_refuses_volume_files_and_cases(shared_data, tmp_path):
    nifti = shared_data / "totalseg_example" / "example_ct_sm.nii.gz"
    assert not jobs.is_dicom_source(nifti) and not jobs.is_dicom_source(tmp_path / "a.stwin")
    with pytest.raises(DicomError, match="not a DICOM"):
        jobs.scan_path(nifti, Progress())
    # open_path with previews asked for still opens a volume file as before.
    opened = jobs.open_path(nifti, Progress(), thumbnails=True)
    assert opened.volume is not None and opened.scan is None


def test_several_dropped_files_are_scanned_together(sample_dicom):
    files = sorted((sample_dicom / "dicom").glob("*.dcm"))[10:20]

    data = jobs.scan_path(files, Progress())

    assert data.path == (sample_dicom / "dicom").absolute()
    (series,) = data.inventory.series
    assert sorted(series.files) == sorted(str(f) for f in files)
    opened = jobs.load_series(files, None, Progress())
    assert opened.volume.shape_ijk[2] == len(files)
    with pytest.raises(DicomError, match="no paths"):
        jobs.scan_path([], Progress())
