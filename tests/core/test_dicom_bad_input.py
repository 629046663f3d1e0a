"""Bad input to the DICOM importer: every bad file gets a clear reason naming it, never a crash.

Each case puts the bad input next to a good synthetic series, which must still load
with the right shape and values. ``scan`` never raises; ``load_series`` raises only
:class:`DicomError`.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from surgtwin.cli.main import main
from surgtwin.core.dicom import Inventory, SkippedFile, scan
from surgtwin.core.dicom.loader import load_series
from surgtwin.core.errors import DicomError
from tests.core.dicom_factory import dicom_bytes, expected_stored, save, write_series

N, ROWS, COLS = 8, 16, 12
JPEG_XL_LOSSLESS = "1.2.840.10008.1.2.4.110"  # newer than pydicom 3.0's UID dictionary
MPEG2_MPML = "1.2.840.10008.1.2.4.100"  # same length as JPEG_XL_LOSSLESS; no decoder exists


# --- helpers ------------------------------------------------------------------------


def write_good(folder: Path) -> str:
    """The good series every case carries along; returns its SeriesInstanceUID."""
    uid = generate_uid()
    write_series(folder, n_slices=N, rows=ROWS, cols=COLS, series_uid=uid)
    return uid


def assert_good_loads(inventory: Inventory, uid: str) -> None:
    series = inventory.find_series(uid)
    assert series is not None, f"good series missing; skipped: {inventory.skipped}"
    assert series.loadable, series.not_loadable_reason
    volume = load_series(series)
    assert volume.voxels.shape == (N, ROWS, COLS)
    np.testing.assert_array_equal(volume.voxels, expected_stored(N, ROWS, COLS).astype(np.int32) - 1024)


def skipped_for(inventory: Inventory, path: Path | str) -> SkippedFile:
    matches = [s for s in inventory.skipped if s.path == str(path)]
    assert len(matches) == 1, f"{path} not reported exactly once among skipped: {inventory.skipped}"
    assert matches[0].reason.strip()
    return matches[0]


def indexed_files(inventory: Inventory) -> list[str]:
    return [f.display for s in inventory.series for f in s.frames]


def one_slice_dataset(folder: Path) -> pydicom.Dataset:
    """A good single-slice dataset (written to a scratch folder) to be damaged by a test."""
    path = write_series(folder, n_slices=1, rows=ROWS, cols=COLS)[0]
    ds = pydicom.dcmread(path)
    shutil.rmtree(folder)
    return ds


def header_end_of(path: Path) -> tuple[int, int]:
    """(offset where Rows starts, offset where the Pixel Data value starts) in a written file."""
    raw = path.read_bytes()
    rows_at = raw.index(b"\x28\x00\x10\x00US")  # (0028,0010) explicit VR little endian
    pixel_at = raw.index(b"\xe0\x7f\x10\x00OW") + 12
    return rows_at, pixel_at


# --- truncated and incomplete files -------------------------------------------------


def test_truncated_in_header_and_in_pixel_data_are_skipped_with_reason(tmp_path: Path) -> None:
    uid = write_good(tmp_path / "good")
    src = write_series(tmp_path / "scratch", n_slices=1, rows=ROWS, cols=COLS)[0]
    raw = src.read_bytes()
    rows_at, pixel_at = header_end_of(src)
    in_header = tmp_path / "cut_in_header.dcm"
    in_header.write_bytes(raw[: rows_at - 7])  # inside the dataset, before the image size
    in_pixels = tmp_path / "cut_in_pixels.dcm"
    in_pixels.write_bytes(raw[: pixel_at + (len(raw) - pixel_at) // 2])
    shutil.rmtree(tmp_path / "scratch")

    inventory = scan([tmp_path])

    assert "truncated" in skipped_for(inventory, in_header).reason
    reason = skipped_for(inventory, in_pixels).reason
    assert "shorter than declared" in reason or "truncated" in reason
    assert str(in_header) not in indexed_files(inventory)
    assert str(in_pixels) not in indexed_files(inventory)
    assert_good_loads(inventory, uid)


def test_every_truncation_point_is_skipped_never_indexed(tmp_path: Path) -> None:
    """Cut a file at many points (preamble, file meta, dataset, pixel data): always skipped."""
    src = write_series(tmp_path / "scratch", n_slices=1, rows=ROWS, cols=COLS)[0]
    raw = src.read_bytes()
    folder = tmp_path / "cuts"
    folder.mkdir()
    cuts = sorted(set(range(0, len(raw), 13)) | {len(raw) - 1})
    for cut in cuts:
        (folder / f"cut{cut:05d}.dcm").write_bytes(raw[:cut])

    inventory = scan([folder])

    assert inventory.series == []
    assert sorted(s.path for s in inventory.skipped) == sorted(str(p) for p in folder.iterdir())
    assert all(s.reason.strip() for s in inventory.skipped)


def test_file_without_pixel_data(tmp_path: Path) -> None:
    uid = write_good(tmp_path / "good")
    ds = one_slice_dataset(tmp_path / "scratch")
    del ds.PixelData
    bad = tmp_path / "no_pixels.dcm"
    save(ds, bad)

    inventory = scan([tmp_path])

    assert "no pixel data" in skipped_for(inventory, bad).reason
    assert_good_loads(inventory, uid)


def test_pixel_data_shorter_than_declared(tmp_path: Path) -> None:
    uid = write_good(tmp_path / "good")
    ds = one_slice_dataset(tmp_path / "scratch")
    ds.PixelData = ds.PixelData[:100]  # a valid element, but 100 of the 384 bytes a 16x12 image needs
    bad = tmp_path / "short.dcm"
    save(ds, bad)

    inventory = scan([tmp_path])

    reason = skipped_for(inventory, bad).reason
    assert "shorter than declared" in reason
    assert "100" in reason and str(ROWS * COLS * 2) in reason
    assert_good_loads(inventory, uid)


def test_file_truncated_after_scan_gives_dicom_error_naming_it(tmp_path: Path) -> None:
    files = write_series(tmp_path / "good", n_slices=N, rows=ROWS, cols=COLS)
    inventory = scan([tmp_path])
    (series,) = inventory.series
    victim = files[3]
    victim.write_bytes(victim.read_bytes()[:-50])  # changed on disk between scan and load

    with pytest.raises(DicomError) as info:
        load_series(series)
    assert str(victim) in str(info.value)
    assert info.value.code == "corrupt_pixel_data"


def test_absurd_dimensions_are_skipped_before_any_allocation(tmp_path: Path) -> None:
    uid = write_good(tmp_path / "good")
    ds = one_slice_dataset(tmp_path / "scratch")
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 50000
    bad = tmp_path / "absurd.dcm"
    save(ds, bad)
    assert bad.stat().st_size < 4096

    tracemalloc.start()
    started = time.perf_counter()
    try:
        inventory = scan([bad])
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    reason = skipped_for(inventory, bad).reason
    assert "shorter than declared" in reason or "absurd" in reason
    assert inventory.series == []
    assert elapsed < 3.0, f"scanning one small file took {elapsed:.1f} s"
    assert peak < 10 * 1024**2, f"scanning one small file peaked at {peak / 1024**2:.0f} MiB"
    assert_good_loads(scan([tmp_path]), uid)


def test_zero_sized_image_is_skipped(tmp_path: Path) -> None:
    ds = one_slice_dataset(tmp_path / "scratch")
    ds.Rows = 0
    bad = tmp_path / "zero_rows.dcm"
    save(ds, bad)
    inventory = scan([bad])
    assert "dimensions" in skipped_for(inventory, bad).reason
    assert inventory.series == []


# --- codecs -------------------------------------------------------------------------


def _encapsulated_file(tmp_path: Path, name: str, syntax: str, write_as: str) -> Path:
    """A one-slice file whose pixel data is garbage fragments under ``syntax``.

    pydicom refuses to write a transfer syntax it does not know, so the file is written
    as ``write_as`` (same UID length) and the UID is patched in the file meta afterwards.
    """
    assert len(syntax) == len(write_as)
    ds = one_slice_dataset(tmp_path / "scratch")
    ds.SeriesInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = write_as
    ds.PixelData = encapsulate([b"\x00\x11not an image" * 5, b"garbage!" * 3])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    raw = dicom_bytes(ds)
    assert raw.count(write_as.encode()) == 1
    path = tmp_path / name
    path.write_bytes(raw.replace(write_as.encode(), syntax.encode()))
    return path


def test_unknown_codec_jpeg_xl_raises_dicom_error_naming_file_and_syntax(tmp_path: Path) -> None:
    uid = write_good(tmp_path / "good")
    bad = _encapsulated_file(tmp_path, "jpegxl.dcm", JPEG_XL_LOSSLESS, MPEG2_MPML)

    inventory = scan([tmp_path])
    (series,) = [s for s in inventory.series if str(bad) in s.files]

    with pytest.raises(DicomError) as info:
        load_series(series)
    message = str(info.value)
    assert str(bad) in message
    assert JPEG_XL_LOSSLESS in message
    # Nothing is wrong with the stream as far as anyone can tell: there is no decoder.
    assert info.value.code == "unsupported_codec"
    assert_good_loads(inventory, uid)


def test_known_codec_without_decoder_is_unsupported_codec(tmp_path: Path) -> None:
    bad = _encapsulated_file(tmp_path, "mpeg2.dcm", MPEG2_MPML, MPEG2_MPML)
    (series,) = scan([bad]).series
    assert not series.loadable  # known at scan time, before any pixel is read
    assert [f.code for f in series.findings] == ["unsupported_codec"]
    with pytest.raises(DicomError) as info:
        load_series(series)
    assert info.value.code == "unsupported_codec"
    assert str(bad) in str(info.value)
    assert "MPEG2" in str(info.value)


def _j2k_with_ff(src: Path, dst: Path, offset_in_codestream: int, length: int) -> None:
    raw = src.read_bytes()
    soc = raw.index(b"\xff\x4f\xff\x51")  # start of the JPEG 2000 codestream (SOC + SIZ)
    start = soc + offset_in_codestream
    dst.write_bytes(raw[:start] + b"\xff" * length + raw[start + length :])
    assert dst.stat().st_size == src.stat().st_size


def test_corrupt_jpeg2000_codestream_raises_dicom_error_naming_file(
    tmp_path: Path, shared_data: Path
) -> None:
    src = shared_data / "dcm_qa_ts" / "In" / "9.dcm"
    assert pydicom.dcmread(src, stop_before_pixels=True).file_meta.TransferSyntaxUID.name.startswith(
        "JPEG 2000"
    )
    uid = write_good(tmp_path / "good")
    bad = tmp_path / "corrupt_j2k.dcm"
    # Packet data after the main and tile-part headers (which end ~200 bytes in).
    _j2k_with_ff(src, bad, 1000, 5000)

    inventory = scan([tmp_path])
    (series,) = [s for s in inventory.series if str(bad) in s.files]
    with pytest.raises(DicomError) as info:
        load_series(series)
    assert str(bad) in str(info.value)
    # Decoders for JPEG 2000 are installed: the stream is bad, not the codec missing.
    assert info.value.code == "corrupt_pixel_data"
    assert_good_loads(inventory, uid)


def test_corrupt_jpeg2000_header_does_not_kill_the_process(tmp_path: Path, shared_data: Path) -> None:
    """gdcm aborts the interpreter (C++ terminate) on this stream; the importer must not use it
    where another JPEG 2000 decoder exists. Run in a child so an abort cannot take pytest down."""
    bad = tmp_path / "corrupt_j2k_header.dcm"
    _j2k_with_ff(shared_data / "dcm_qa_ts" / "In" / "9.dcm", bad, 8, 100)
    script = textwrap.dedent(
        f"""
        from surgtwin.core.dicom import scan
        from surgtwin.core.dicom.loader import load_series
        from surgtwin.core.errors import DicomError
        (series,) = scan([{str(bad)!r}]).series
        try:
            load_series(series)
        except DicomError as exc:
            print("CODE", exc.code)
            print("MESSAGE", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"child died ({done.returncode}): {done.stderr[-2000:]}"
    assert "CODE corrupt_pixel_data" in done.stdout
    assert str(bad) in done.stdout


# --- archives, DICOMDIRs, links -----------------------------------------------------


def test_zip_entries_outside_the_archive_are_not_followed(tmp_path: Path) -> None:
    good = write_series(
        tmp_path / "src", n_slices=N, rows=ROWS, cols=COLS, series_uid=(uid := generate_uid())
    )
    evil = write_series(
        tmp_path / "evil", n_slices=2, rows=ROWS, cols=COLS, series_uid=(evil_uid := generate_uid())
    )
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in good:
            zf.write(path, f"case/{path.name}")
        zf.writestr(zipfile.ZipInfo("../evil.dcm"), evil[0].read_bytes())
        zf.writestr(zipfile.ZipInfo("/etc/x.dcm"), evil[1].read_bytes())
    with zipfile.ZipFile(archive) as zf:  # the names really are stored as written
        assert {"../evil.dcm", "/etc/x.dcm"} <= set(zf.namelist())

    inventory = scan([archive])

    for name in ("../evil.dcm", "/etc/x.dcm"):
        assert "outside" in skipped_for(inventory, f"{archive}!{name}").reason
    assert inventory.find_series(evil_uid) is None
    assert_good_loads(inventory, uid)
    assert all(d.startswith(f"{archive}!case/") for d in indexed_files(inventory))


def _dicomdir_with_escapes(tmp_path: Path) -> tuple[Path, str, str]:
    """A DICOMDIR listing 8 good images plus records escaping its folder (.., a link)."""
    uid, evil_uid = generate_uid(), generate_uid()
    good = write_series(tmp_path / "src", n_slices=N, rows=ROWS, cols=COLS, series_uid=uid)
    write_series(tmp_path / "outside", n_slices=1, rows=ROWS, cols=COLS, series_uid=evil_uid, names=["EVIL"])
    fileset = FileSet()
    for path in good:
        fileset.add(path)
    root = tmp_path / "media"
    fileset.write(root)
    (root / "LINK").symlink_to(tmp_path / "outside" / "EVIL")
    dicomdir = root / "DICOMDIR"
    ds = pydicom.dcmread(dicomdir)
    template = next(r for r in ds.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE")
    for file_id in (["..", "outside", "EVIL"], ["LINK"]):
        record = copy.deepcopy(template)
        record.ReferencedFileID = file_id
        ds.DirectoryRecordSequence.append(record)
    ds.save_as(dicomdir, enforce_file_format=True)
    return dicomdir, uid, evil_uid


def test_dicomdir_entries_outside_its_folder_are_not_followed(tmp_path: Path) -> None:
    dicomdir, uid, evil_uid = _dicomdir_with_escapes(tmp_path)
    assert (dicomdir.parent / ".." / "outside" / "EVIL").is_file()  # it would load if followed

    inventory = scan([dicomdir])  # the DICOMDIR passed directly

    assert "outside" in skipped_for(inventory, f"{dicomdir}: ../outside/EVIL").reason
    assert "outside" in skipped_for(inventory, f"{dicomdir}: LINK").reason
    assert inventory.find_series(evil_uid) is None
    assert_good_loads(inventory, uid)
    files = indexed_files(inventory)
    assert len(files) == N == len(set(files))


def test_dicomdir_inside_a_scanned_folder_is_skipped_as_an_index(tmp_path: Path) -> None:
    dicomdir, uid, evil_uid = _dicomdir_with_escapes(tmp_path)
    inventory = scan([dicomdir.parent])
    assert "DICOMDIR" in skipped_for(inventory, dicomdir).reason
    assert "outside" in skipped_for(inventory, dicomdir.parent / "LINK").reason
    assert inventory.find_series(evil_uid) is None
    assert_good_loads(inventory, uid)


def test_symlink_loop_is_reported_and_nothing_indexed_twice(tmp_path: Path) -> None:
    root = tmp_path / "root"
    uid = write_good(root / "series")
    (root / "sub").mkdir()
    loop = root / "sub" / "loop"
    loop.symlink_to(root, target_is_directory=True)
    (root / "series" / "self").symlink_to(root / "series", target_is_directory=True)

    inventory = scan([root])

    assert "loop" in skipped_for(inventory, loop).reason
    assert "loop" in skipped_for(inventory, root / "series" / "self").reason
    files = indexed_files(inventory)
    assert len(files) == N == len(set(files))
    assert_good_loads(inventory, uid)


def test_symlink_to_a_file_outside_the_root_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    uid = write_good(root / "series")
    outside = write_series(
        tmp_path / "elsewhere", n_slices=1, rows=ROWS, cols=COLS, series_uid=(evil_uid := generate_uid())
    )[0]
    link = root / "series" / "zz_link.dcm"
    link.symlink_to(outside)
    (root / "dir_link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    inventory = scan([root])

    assert "outside" in skipped_for(inventory, link).reason
    assert "outside" in skipped_for(inventory, root / "dir_link").reason
    assert inventory.find_series(evil_uid) is None
    assert_good_loads(inventory, uid)


def test_broken_symlink_is_reported(tmp_path: Path) -> None:
    uid = write_good(tmp_path / "series")
    dangling = tmp_path / "series" / "gone.dcm"
    dangling.symlink_to(tmp_path / "does-not-exist.dcm")
    inventory = scan([tmp_path])
    assert "broken" in skipped_for(inventory, dangling).reason
    assert_good_loads(inventory, uid)


# pydicom warns about the nonsense after "DICM"; the CLI test below covers where that warning goes.
@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
def test_not_dicom_and_empty_files_are_skipped(tmp_path: Path) -> None:
    uid = write_good(tmp_path / "good")
    text = tmp_path / "good" / "README.txt"
    text.write_text("Patient CD, burned by the scanner console.\n" * 20)
    empty = tmp_path / "good" / "empty.dcm"
    empty.write_bytes(b"")
    fake = tmp_path / "good" / "fake.dcm"
    fake.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 300)  # magic bytes, then nonsense

    inventory = scan([tmp_path])

    assert "not a DICOM file" in skipped_for(inventory, text).reason
    assert "not a DICOM file" in skipped_for(inventory, empty).reason
    skipped_for(inventory, fake)  # any reason, but reported and not indexed
    assert str(fake) not in indexed_files(inventory)
    assert_good_loads(inventory, uid)


def test_missing_path_is_reported(tmp_path: Path) -> None:
    inventory = scan([tmp_path / "nope"])
    assert "does not exist" in skipped_for(inventory, tmp_path / "nope").reason


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop reading")
    uid = write_good(tmp_path / "good")
    locked = tmp_path / "good" / "locked.dcm"
    shutil.copy(tmp_path / "good" / "IM0001.dcm", locked)
    locked.chmod(0)
    try:
        inventory = scan([tmp_path])
    finally:
        locked.chmod(0o644)
    assert "cannot be read" in skipped_for(inventory, locked).reason
    assert_good_loads(inventory, uid)


# --- real damaged files -------------------------------------------------------------

REAL_BROKEN = [
    "bad_sequence.dcm",
    "explicit_VR-UN.dcm",
    "emri_small_jpeg_2k_lossless_too_short.dcm",
    "parametric_map_float.dcm",
]


@pytest.fixture(scope="module")
def real_subset_inventory(shared_data: Path) -> tuple[Path, Inventory]:
    folder = shared_data / "pydicom_data_subset"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found (see ../shared/data/SOURCES.md)")
    return folder, scan([folder])


@pytest.mark.parametrize("name", REAL_BROKEN)
def test_real_broken_file_is_skipped_or_indexed(
    real_subset_inventory: tuple[Path, Inventory], name: str
) -> None:
    folder, inventory = real_subset_inventory
    path = str(folder / name)
    skipped = [s for s in inventory.skipped if s.path == path]
    in_series = [s for s in inventory.series if path in s.files]
    assert len(skipped) + len(in_series) == 1, (skipped, [s.uid for s in in_series])
    if skipped:
        assert skipped[0].reason.strip()


def test_real_truncated_jpeg2000_and_float_map_are_skipped(
    real_subset_inventory: tuple[Path, Inventory],
) -> None:
    folder, inventory = real_subset_inventory
    too_short = skipped_for(inventory, folder / "emri_small_jpeg_2k_lossless_too_short.dcm")
    assert "truncated" in too_short.reason
    float_map = skipped_for(inventory, folder / "parametric_map_float.dcm")
    assert "floating-point" in float_map.reason


def test_every_real_file_is_accounted_for_and_loadable_series_load(
    real_subset_inventory: tuple[Path, Inventory],
) -> None:
    folder, inventory = real_subset_inventory
    indexed = set(indexed_files(inventory))
    skipped = {s.path for s in inventory.skipped}
    assert {str(p) for p in folder.iterdir()} <= indexed | skipped
    loaded = 0
    for series in inventory.series:
        if not series.loadable:
            assert series.not_loadable_reason
            with pytest.raises(DicomError):
                load_series(series)
            continue
        try:
            volume = load_series(series)
        except DicomError as exc:
            assert any(f in str(exc) for f in series.files) or series.uid in str(exc)
            continue
        assert volume.voxels.shape[1:] == (series.frames[0].rows, series.frames[0].columns)
        assert np.isfinite(volume.voxels).all()
        loaded += 1
    assert loaded >= 1


# --- command line -------------------------------------------------------------------


def _folder_of_bad_files(folder: Path) -> dict[Path, str]:
    """Bad files of several kinds; returns {file: a word its skip reason must contain}."""
    folder.mkdir(parents=True, exist_ok=True)
    src = write_series(folder / "scratch", n_slices=1, rows=ROWS, cols=COLS)[0]
    raw = src.read_bytes()
    _, pixel_at = header_end_of(src)
    shutil.rmtree(folder / "scratch")
    bad = {
        folder / "notes.txt": "not a DICOM file",
        folder / "empty.dcm": "not a DICOM file",
        folder / "cut.dcm": "shorter than declared",
    }
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "cut.dcm").write_bytes(raw[: pixel_at + 10])
    return bad


def test_cli_info_lists_skipped_files_with_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = write_good(tmp_path / "good")
    bad = _folder_of_bad_files(tmp_path / "bad")

    status = main(["info", str(tmp_path)])

    out, err = capsys.readouterr()
    assert status == 0, err
    assert uid in out
    for path, reason in bad.items():
        line = next((ln for ln in out.splitlines() if str(path) in ln), None)
        assert line is not None, f"{path} not listed in:\n{out}"
        assert reason in line
    assert "Traceback" not in out + err


def test_cli_convert_of_only_bad_files_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _folder_of_bad_files(tmp_path / "bad")
    output = tmp_path / "out.nii.gz"

    status = main(["convert", str(tmp_path / "bad"), "-o", str(output)])

    out, err = capsys.readouterr()
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("surgtwin: error: "), err
    assert "Traceback" not in out + err
    assert not output.exists()
    assert list(tmp_path.glob("out*")) == []


def test_cli_convert_of_undecodable_series_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _encapsulated_file(tmp_path, "jpegxl.dcm", JPEG_XL_LOSSLESS, MPEG2_MPML)
    output = tmp_path / "out.nrrd"

    status = main(["convert", str(bad), "-o", str(output)])

    _, err = capsys.readouterr()
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("surgtwin: error: "), err
    assert str(bad) in lines[0]
    assert "Traceback" not in err
    assert not output.exists()


def test_cli_stderr_is_one_line_even_when_pydicom_warns(tmp_path: Path) -> None:
    """Run as a real process: under pytest, warnings and log records are captured, not printed."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "fake.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 300)
    output = tmp_path / "out.nii.gz"
    done = subprocess.run(
        [sys.executable, "-m", "surgtwin.cli.main", "convert", str(folder), "-o", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert not output.exists()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("surgtwin: error: "), done.stderr
