"""Properties of DICOM import on synthetic series: what must not matter, and geometry that must hold.

Expected positions are computed here from the header values written to disk (IPP, IOP,
PixelSpacing), and expected values from the written stored pattern, slope and intercept,
never taken from the importer.
"""

from __future__ import annotations

import math
import shutil
import string
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from surgtwin.core.dicom import Series, scan
from surgtwin.core.dicom.loader import load_series
from surgtwin.core.volume import Volume
from tests.core.dicom_factory import AXIAL, MAX_STORED, expected_stored, normal_of, write_series

N, ROWS, COLS = 8, 16, 12
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers ------------------------------------------------------------------------


def only_series(paths: Sequence[Path]) -> Series:
    inventory = scan(paths)
    assert len(inventory.series) == 1, (inventory.series, inventory.skipped)
    assert inventory.skipped == []
    (series,) = inventory.series
    assert series.loadable, series.not_loadable_reason
    return series


def load(paths: Sequence[Path]) -> Volume:
    return load_series(only_series(paths))


def codes(series: Series) -> set[str]:
    return {f.code for f in series.findings}


def header_geometry(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(IPP, row cosine, column cosine, (row spacing, column spacing)) as written in a file."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    return (
        np.array([float(v) for v in ds.ImagePositionPatient]),
        iop[:3],
        iop[3:],
        np.array([float(v) for v in ds.PixelSpacing]),
    )


@st.composite
def rotations(draw: st.DrawFn) -> np.ndarray:
    """A uniformly random rotation, from a random unit quaternion."""
    q = np.array(draw(st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 4)))
    norm = float(np.linalg.norm(q))
    if norm < 0.1:
        q, norm = np.array([1.0, 0.0, 0.0, 0.0]), 1.0
    w, x, y, z = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def orientation_of(rotation: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.concatenate([rotation[:, 0], rotation[:, 1]]))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Volume]:
    """One oblique series written once, and its volume (checked against the written pattern)."""
    folder = tmp_path_factory.mktemp("reference")
    orientation = (0.8, 0.6, 0.0, 0.0, 0.0, -1.0)  # oblique-coronal: both axes off the LPS axes
    paths = write_series(folder, n_slices=N, rows=ROWS, cols=COLS, orientation=orientation)
    volume = load([folder])
    np.testing.assert_array_equal(volume.voxels, expected_stored(N, ROWS, COLS).astype(np.int32) - 1024)
    return paths, volume


def assert_same_volume(a: Volume, b: Volume) -> None:
    assert a.voxels.dtype == b.voxels.dtype
    np.testing.assert_array_equal(a.voxels, b.voxels)
    np.testing.assert_array_equal(a.ijk_to_lps, b.ijk_to_lps)


SAFE_NAME = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=16)


# --- (1), (2): file names, order and container do not matter ------------------------


@FAST
@given(
    names=st.lists(SAFE_NAME, min_size=N, max_size=N, unique=True),
    order=st.permutations(range(N)),
    suffix=st.sampled_from(["", ".dcm", ".DCM", ".ima"]),
)
def test_file_names_and_copy_order_do_not_change_the_volume(
    reference: tuple[list[Path], Volume], names: list[str], order: list[int], suffix: str
) -> None:
    paths, expected = reference
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "copy"
        folder.mkdir()
        for k in order:  # file k gets a random name, files arrive in a random order
            shutil.copyfile(paths[k], folder / (names[k] + suffix))
        assert_same_volume(load([folder]), expected)


@FAST
@given(
    names=st.lists(SAFE_NAME, min_size=N, max_size=N, unique=True),
    order=st.permutations(range(N)),
    nested=st.booleans(),
)
def test_zip_member_order_does_not_change_the_volume(
    reference: tuple[list[Path], Volume], names: list[str], order: list[int], nested: bool
) -> None:
    paths, expected = reference
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "series.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for k in order:
                zf.write(paths[k], ("a/b/" if nested else "") + names[k])
        with zipfile.ZipFile(archive) as zf:
            assert [i.filename.rsplit("/", 1)[-1] for i in zf.infolist()] == [names[k] for k in order]
        assert_same_volume(load([archive]), expected)


def test_list_of_files_in_reverse_order_gives_the_same_volume(reference: tuple[list[Path], Volume]) -> None:
    paths, expected = reference
    assert_same_volume(load(list(reversed(paths))), expected)


# --- (3): oblique geometry and values ------------------------------------------------


@FAST
@given(
    rotation=rotations(),
    spacing=st.tuples(st.floats(0.2, 3.0), st.floats(0.2, 3.0)),
    step=st.floats(0.3, 6.0),
    origin=st.tuples(*[st.floats(-400, 400)] * 3),
    shape=st.tuples(st.integers(2, 6), st.integers(2, 10), st.integers(2, 10)),
    slope=st.sampled_from([1.0, 2.0, 0.5, 0.25, 1.5]),
    intercept=st.sampled_from([-1024.0, 0.0, -1000.5, 17.0]),
)
def test_oblique_corners_and_values_match_the_written_headers(
    rotation: np.ndarray,
    spacing: tuple[float, float],
    step: float,
    origin: tuple[float, float, float],
    shape: tuple[int, int, int],
    slope: float,
    intercept: float,
) -> None:
    n, rows, cols = shape
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_series(
            Path(tmp),
            n_slices=n,
            rows=rows,
            cols=cols,
            spacing=spacing,
            step=step,
            orientation=orientation_of(rotation),
            origin=origin,
            slope=slope,
            intercept=intercept,
        )
        series = only_series([Path(tmp)])
        volume = load_series(series)
        first, row_cos, col_cos, (row_spacing, col_spacing) = header_geometry(paths[0])
        last = header_geometry(paths[-1])[0]

    assert not codes(series) & {"gantry_tilt", "variable_spacing", "missing_slices"}
    assert volume.voxels.shape == (n, rows, cols)
    corners = volume.index_to_lps(np.array([[0, 0, 0], [cols - 1, 0, 0], [0, rows - 1, 0], [0, 0, n - 1]]))
    expected = np.array(
        [
            first,
            first + (cols - 1) * col_spacing * row_cos,  # along a row: columns, PixelSpacing[1]
            first + (rows - 1) * row_spacing * col_cos,  # down a column: rows, PixelSpacing[0]
            last,
        ]
    )
    np.testing.assert_allclose(corners, expected, atol=1e-3, rtol=0)
    values = expected_stored(n, rows, cols).astype(np.float64) * slope + intercept
    np.testing.assert_allclose(volume.voxels, values, atol=1e-3, rtol=1e-6)
    assert volume.is_orthogonal


# --- (4): spacing irregularities ------------------------------------------------------


def positions_from_steps(
    origin: Sequence[float], orientation: Sequence[float], offsets: Sequence[float]
) -> list:
    normal = normal_of(orientation)
    return [np.asarray(origin, float) + d * normal for d in offsets]


@FAST
@given(
    jitter=st.lists(st.floats(-1e-6, 1e-6), min_size=N, max_size=N),
    rotation=rotations(),
    step=st.floats(0.5, 5.0),
)
def test_micrometre_jitter_never_reports_irregular_spacing(
    jitter: list[float], rotation: np.ndarray, step: float
) -> None:
    orientation = orientation_of(rotation)
    offsets = [k * step + jitter[k] for k in range(N)]
    with tempfile.TemporaryDirectory() as tmp:
        write_series(
            Path(tmp),
            n_slices=N,
            rows=ROWS,
            cols=COLS,
            step=step,
            orientation=orientation,
            positions=positions_from_steps((5.0, -7.0, 120.0), orientation, offsets),
        )
        series = only_series([Path(tmp)])
        volume = load_series(series)
    assert not codes(series) & {"variable_spacing", "missing_slices", "gantry_tilt"}
    assert series.geometry.regular
    assert volume.decisions == []
    np.testing.assert_array_equal(volume.voxels, expected_stored(N, ROWS, COLS).astype(np.int32) - 1024)


@FAST
@given(
    which=st.integers(0, N - 2),
    factor=st.one_of(st.floats(1.1, 1.6), st.floats(0.4, 0.9)),
    step=st.floats(0.5, 5.0),
)
def test_one_step_off_by_ten_percent_reports_variable_spacing(which: int, factor: float, step: float) -> None:
    steps = [step] * (N - 1)
    steps[which] *= factor
    offsets = np.concatenate([[0.0], np.cumsum(steps)])
    with tempfile.TemporaryDirectory() as tmp:
        write_series(
            Path(tmp),
            n_slices=N,
            rows=ROWS,
            cols=COLS,
            step=step,
            positions=positions_from_steps((0.0, 0.0, 0.0), AXIAL, offsets),
        )
        series = only_series([Path(tmp)])
        volume = load_series(series)
    assert "variable_spacing" in codes(series)
    assert "missing_slices" not in codes(series)
    assert any("variable_spacing" in d for d in volume.decisions)
    assert volume.is_orthogonal


@FAST
@given(removed=st.integers(1, N - 2), step=st.floats(0.5, 5.0), rotation=rotations())
def test_removed_middle_slice_reports_missing_slices(removed: int, step: float, rotation: np.ndarray) -> None:
    orientation = orientation_of(rotation)
    kept = [k for k in range(N) if k != removed]
    stored = expected_stored(N, ROWS, COLS)
    with tempfile.TemporaryDirectory() as tmp:
        write_series(
            Path(tmp),
            rows=ROWS,
            cols=COLS,
            step=step,
            orientation=orientation,
            positions=positions_from_steps((1.0, 2.0, 3.0), orientation, [k * step for k in kept]),
            pixels=stored[kept],
        )
        series = only_series([Path(tmp)])
        volume = load_series(series)
    assert "missing_slices" in codes(series)
    assert "variable_spacing" not in codes(series)
    assert "1 slice(s) missing" in next(f.message for f in series.findings if f.code == "missing_slices")
    # Resampled at the regular step: the acquired slices stay exact, the gap is interpolated.
    assert volume.voxels.shape == (N, ROWS, COLS)
    hu = stored.astype(np.float64) - 1024
    for k in kept:
        np.testing.assert_array_equal(volume.voxels[k], hu[k])
    np.testing.assert_allclose(volume.voxels[removed], (hu[removed - 1] + hu[removed + 1]) / 2, atol=0.5)


# --- (5): gantry tilt -------------------------------------------------------------------


@FAST
@example(angle=2.0, rotation=np.eye(3), marker=(0, 5))  # marker in the first row, shifted by a fraction
@example(angle=-7.5, rotation=np.eye(3), marker=(ROWS - 1, COLS - 1))
@given(
    angle=st.one_of(st.floats(2.0, 30.0), st.floats(-30.0, -2.0)),
    rotation=st.one_of(st.just(np.eye(3)), rotations()),
    marker=st.tuples(st.integers(0, ROWS - 1), st.integers(0, COLS - 1)),
)
def test_gantry_tilt_is_measured_and_resampled_to_the_right_place(
    angle: float, rotation: np.ndarray, marker: tuple[int, int]
) -> None:
    step = 1.5
    jm, im = marker
    km = N // 2
    stored = expected_stored(N, ROWS, COLS)
    stored[km, jm, im] = MAX_STORED  # far brighter than any pattern value (< N*ROWS*COLS + 1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_series(
            Path(tmp),
            n_slices=N,
            rows=ROWS,
            cols=COLS,
            step=step,
            orientation=orientation_of(rotation),
            tilt_deg=angle,
            pixels=stored,
        )
        series = only_series([Path(tmp)])
        volume = load_series(series)
        ipp, row_cos, col_cos, (row_spacing, col_spacing) = header_geometry(paths[km])

    assert "gantry_tilt" in codes(series)
    assert abs(abs(series.geometry.tilt_deg) - abs(angle)) <= 0.05
    assert volume.is_orthogonal
    assert any("gantry_tilt" in d for d in volume.decisions)
    truth = ipp + im * col_spacing * row_cos + jm * row_spacing * col_cos
    k, j, i = np.unravel_index(int(np.argmax(volume.voxels)), volume.voxels.shape)
    assert np.all(np.abs(volume.lps_to_index(truth)[0] - [i, j, k]) <= 1.0), (
        volume.lps_to_index(truth),
        (i, j, k),
    )
    assert np.linalg.norm(volume.index_to_lps([i, j, k])[0] - truth) <= np.linalg.norm(volume.spacing)


def test_tilted_series_refused_when_resampling_is_not_allowed(tmp_path: Path) -> None:
    from surgtwin.core.errors import DicomError

    write_series(tmp_path, n_slices=N, rows=ROWS, cols=COLS, tilt_deg=12.0)
    series = only_series([tmp_path])
    with pytest.raises(DicomError) as info:
        load_series(series, irregular="refuse")
    assert info.value.code == "irregular_geometry"


# --- (6): MONOCHROME1 -----------------------------------------------------------------


@pytest.mark.parametrize(("modality", "intercept"), [("MR", 0.0), ("CT", -1024.0)])
def test_monochrome1_keeps_modality_values_and_flags_display(
    tmp_path: Path, modality: str, intercept: float
) -> None:
    """MONOCHROME1 changes how values are shown, not what they are (quantitative maps stay true)."""
    write_series(
        tmp_path,
        n_slices=N,
        rows=ROWS,
        cols=COLS,
        modality=modality,
        photometric="MONOCHROME1",
        slope=1.0,
        intercept=intercept,
    )
    volume = load([tmp_path])
    expected = expected_stored(N, ROWS, COLS).astype(np.int32) + int(intercept)
    np.testing.assert_array_equal(volume.voxels, expected)
    assert volume.provenance["display_inverted"] is True
    assert any("MONOCHROME1" in d and "display inverts" in d for d in volume.decisions)
    assert volume.units == ("HU" if modality == "CT" else "")


# --- (7): character sets ---------------------------------------------------------------

CHARSET_CASES = [
    ("ISO_IR 192", "Müller^Jürgen", "Müller".encode()),
    ("ISO_IR 100", "Müller^Jürgen", "Müller".encode("latin-1")),
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう", b"\x1b$B"),
    ("ISO_IR 144", "Иванов^Пётр", "Иванов".encode("iso8859-5")),
    ("GB18030", "Wang^XiaoDong=王^小东", "王".encode("gb18030")),
]


@pytest.mark.parametrize(("charset", "name", "raw"), CHARSET_CASES, ids=lambda v: str(v)[:20])
def test_patient_name_decoded_from_its_character_set(
    tmp_path: Path, charset: str | list[str], name: str, raw: bytes
) -> None:
    paths = write_series(tmp_path, n_slices=2, rows=4, cols=4, charset=charset, patient_name=name)
    assert raw in paths[0].read_bytes()  # really encoded in that character set on disk
    inventory = scan([tmp_path])
    assert inventory.patients[0].name == name


@settings(max_examples=15, deadline=None)
@given(
    family=st.text(st.characters(categories=["L"]), min_size=1, max_size=12),
    given_name=st.text(st.characters(categories=["L"]), min_size=1, max_size=12),
)
def test_any_utf8_patient_name_round_trips(family: str, given_name: str) -> None:
    name = f"{family}^{given_name}"
    with tempfile.TemporaryDirectory() as tmp:
        write_series(Path(tmp), n_slices=1, rows=4, cols=4, charset="ISO_IR 192", patient_name=name)
        inventory = scan([Path(tmp)])
    assert inventory.patients[0].name == name


# --- (8): transfer syntaxes -------------------------------------------------------------


@pytest.mark.parametrize(
    "syntax",
    [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian],
    ids=lambda s: s.name,
)
def test_other_native_syntaxes_give_identical_voxels(
    tmp_path: Path, reference: tuple[list[Path], Volume], syntax: str
) -> None:
    _, expected = reference
    orientation = (0.8, 0.6, 0.0, 0.0, 0.0, -1.0)
    paths = write_series(
        tmp_path, n_slices=N, rows=ROWS, cols=COLS, orientation=orientation, transfer_syntax=syntax
    )
    ds = pydicom.dcmread(paths[0])
    assert ds.file_meta.TransferSyntaxUID == syntax
    raw = paths[0].read_bytes()
    if syntax == ExplicitVRBigEndian:
        assert b"\x00\x01\x00\x02\x00\x03" in raw  # stored 1, 2, 3 big-endian on disk
    if syntax == DeflatedExplicitVRLittleEndian:
        assert b"Test^Patient" not in raw  # the dataset really is deflated
    assert_same_volume(load([tmp_path]), expected)


def test_explicit_little_endian_reference_matches_big_endian_in_one_folder(tmp_path: Path) -> None:
    """The same pixels in two syntaxes: two series, same values (syntax never leaks into values)."""
    write_series(tmp_path / "le", n_slices=N, rows=ROWS, cols=COLS, transfer_syntax=ExplicitVRLittleEndian)
    write_series(tmp_path / "be", n_slices=N, rows=ROWS, cols=COLS, transfer_syntax=ExplicitVRBigEndian)
    inventory = scan([tmp_path])
    assert len(inventory.series) == 2
    a, b = (load_series(s) for s in inventory.series)
    np.testing.assert_array_equal(a.voxels, b.voxels)


# --- (9): per-slice rescale ---------------------------------------------------------------


@FAST
@given(
    slopes=st.lists(st.sampled_from([1.0, 2.0, 0.5, 3.0, 0.25, 1.25]), min_size=N, max_size=N),
    intercepts=st.lists(st.sampled_from([-1024.0, 0.0, -1000.0, 10.0, -3.5, 7.25]), min_size=N, max_size=N),
    modality=st.sampled_from(["CT", "MR"]),
)
def test_per_slice_rescale_is_applied_slice_by_slice(
    slopes: list[float], intercepts: list[float], modality: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_series(
            Path(tmp), n_slices=N, rows=ROWS, cols=COLS, modality=modality, slope=slopes, intercept=intercepts
        )
        volume = load([Path(tmp)])
    stored = expected_stored(N, ROWS, COLS).astype(np.float64)
    for k in range(N):
        np.testing.assert_allclose(
            volume.voxels[k],
            stored[k] * slopes[k] + intercepts[k],
            atol=1e-3,
            rtol=1e-6,
            err_msg=f"slice {k}: slope {slopes[k]}, intercept {intercepts[k]}",
        )
    integral = all(float(s).is_integer() for s in slopes) and all(float(i).is_integer() for i in intercepts)
    assert volume.voxels.dtype == (np.int16 if integral else np.float32)


def test_factory_tilt_positions() -> None:
    """The factory's tilt: shift per slice is step * tan(angle) along the column direction."""
    from tests.core.dicom_factory import slice_positions

    p = slice_positions(3, 2.0, AXIAL, (0, 0, 0), 30.0)
    assert p[2][1] == pytest.approx(2 * 2.0 * math.tan(math.radians(30.0)))
    assert p[2][2] == pytest.approx(4.0)
