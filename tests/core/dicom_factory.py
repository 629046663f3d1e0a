"""Small synthetic DICOM series for importer tests, written with pydicom.

Every stored value identifies its voxel: ``stored_pattern(i, j, k)`` (see
:func:`expected_stored`), so that a slice in the wrong order, a transposed image
or a flipped axis shows up as wrong values, not only as a wrong affine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
BITS_STORED = 12
MAX_STORED = 2**BITS_STORED - 1


def ds_str(x: float) -> str:
    """A float as the most precise valid DS string (at most 16 characters)."""
    return format_number_as_ds(float(x))


def expected_stored(n_slices: int, rows: int, cols: int) -> np.ndarray:
    """The stored values written for slice k (in ``positions`` order), row j, column i: [k, j, i].

    Distinct for every voxel of a series up to 4094 voxels; always within 1..4094 (12 bits).
    """
    k, j, i = np.meshgrid(np.arange(n_slices), np.arange(rows), np.arange(cols), indexing="ij")
    return (1 + (i + cols * (j + rows * k)) % (MAX_STORED - 1)).astype(np.uint16)


def normal_of(orientation: Sequence[float]) -> np.ndarray:
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    n = np.cross(row, col)
    return n / np.linalg.norm(n)


def slice_positions(
    n_slices: int,
    step: float,
    orientation: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-10.0, -20.0, 30.0),
    tilt_deg: float = 0.0,
) -> list[np.ndarray]:
    """Positions ``step`` apart along the normal, shifted along the column direction by
    ``step * tan(tilt)`` per slice (gantry tilt)."""
    col = np.asarray(orientation[3:], float)
    col = col / np.linalg.norm(col)
    normal = normal_of(orientation)
    shift = step * math.tan(math.radians(tilt_deg))
    o = np.asarray(origin, float)
    return [o + k * step * normal + k * shift * col for k in range(n_slices)]


def make_dataset(
    *,
    rows: int,
    cols: int,
    pixels: np.ndarray,
    position: Sequence[float],
    orientation: Sequence[float],
    spacing: tuple[float, float],
    instance_number: int,
    uids: dict[str, str],
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float = -1024.0,
    photometric: str = "MONOCHROME2",
    transfer_syntax: str = ExplicitVRLittleEndian,
    charset: str | Sequence[str] | None = None,
    patient_name: str = "Test^Patient",
    patient_id: str = "PID-001",
    step: float = 1.5,
) -> Dataset:
    """One single-frame CT/MR image with complete file meta (uncompressed pixel data)."""
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.StudyDescription = "synthetic study"
    ds.SeriesDescription = f"synthetic {modality}"
    ds.Modality = modality
    ds.SeriesNumber = 3
    ds.InstanceNumber = instance_number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [ds_str(v) for v in position]
    ds.ImageOrientationPatient = [ds_str(v) for v in orientation]
    ds.PixelSpacing = [ds_str(spacing[0]), ds_str(spacing[1])]
    ds.SliceThickness = ds_str(step)
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope = ds_str(slope)
    ds.RescaleIntercept = ds_str(intercept)
    if modality == "CT":
        ds.RescaleType = "HU"
    big = UID(transfer_syntax) == ExplicitVRBigEndian
    ds.PixelData = np.ascontiguousarray(pixels, dtype=">u2" if big else "<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def write_series(
    folder: Path | str,
    n_slices: int = 8,
    rows: int = 16,
    cols: int = 12,
    spacing: tuple[float, float] = (0.8, 0.7),
    step: float = 1.5,
    orientation: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-10.0, -20.0, 30.0),
    tilt_deg: float = 0.0,
    positions: Sequence[Sequence[float]] | None = None,
    modality: str = "CT",
    slope: float | Sequence[float] = 1.0,
    intercept: float | Sequence[float] = -1024.0,
    photometric: str = "MONOCHROME2",
    transfer_syntax: str = ExplicitVRLittleEndian,
    charset: str | Sequence[str] | None = None,
    patient_name: str = "Test^Patient",
    patient_id: str = "PID-001",
    names: Sequence[str] | None = None,
    pixels: np.ndarray | None = None,
    series_uid: str | None = None,
) -> list[Path]:
    """Write one series, slice k at ``positions[k]`` holding ``pixels[k]``.

    ``positions`` (explicit list) overrides ``step``/``origin``/``tilt_deg``; ``slope`` and
    ``intercept`` may be per-slice lists; ``pixels`` defaults to :func:`expected_stored`.
    Returns the files in slice order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if positions is None:
        positions = slice_positions(n_slices, step, orientation, origin, tilt_deg)
    n = len(positions)
    if pixels is None:
        pixels = expected_stored(n, rows, cols)
    slopes = list(slope) if isinstance(slope, Sequence) else [slope] * n
    intercepts = list(intercept) if isinstance(intercept, Sequence) else [intercept] * n
    names = list(names) if names is not None else [f"IM{k + 1:04d}.dcm" for k in range(n)]
    uids = {"study": generate_uid(), "series": series_uid or generate_uid(), "frame": generate_uid()}
    paths = []
    for k in range(n):
        ds = make_dataset(
            rows=rows,
            cols=cols,
            pixels=pixels[k],
            position=positions[k],
            orientation=orientation,
            spacing=spacing,
            instance_number=k + 1,
            uids=uids,
            modality=modality,
            slope=slopes[k],
            intercept=intercepts[k],
            photometric=photometric,
            transfer_syntax=transfer_syntax,
            charset=charset,
            patient_name=patient_name,
            patient_id=patient_id,
            step=step,
        )
        path = folder / names[k]
        save(ds, path)
        paths.append(path)
    return paths


def save(ds: Dataset, path: Path) -> None:
    """Write with the preamble and file meta, encoded as the file meta's transfer syntax says."""
    ds.save_as(path, enforce_file_format=True)


def dicom_bytes(ds: Dataset) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
