"""Read one file's headers (never its pixels) into :class:`FrameHeader` records.

A multi-frame file gives one record per frame, with geometry and rescale taken
from its per-frame (or shared) functional groups.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pydicom
import pydicom.config
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from surgtwin.core.dicom.inventory import FrameHeader, SkippedFile
from surgtwin.core.dicom.sources import DICOMDIR_SOP_CLASS, SourceFile

PIXEL_DATA_TAG = 0x7FE00010
# Transfer syntaxes whose compression discards information.
LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
}
# Lossy or lossless: LossyImageCompression "00" says which.
MAYBE_LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.203",  # HTJ2K
}
# Malformed values are reported by what they break, not as pydicom warnings.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
MAX_ROWS_COLUMNS = 65535
MAX_FRAMES = 100_000
# No single DICOM image object we can plan on holds more pixels than this.
MAX_IMAGE_BYTES = 16 * 2**30


def _first(seq_owner: Dataset | None, keyword: str) -> Dataset | None:
    """First item of a sequence, or None (functional groups are one-item sequences)."""
    if seq_owner is None:
        return None
    seq = seq_owner.get(keyword)
    return seq[0] if seq else None


def _floats(value: Any, n: int) -> np.ndarray | None:
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _float_or(value: Any, default: float | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


class _FrameGroups:
    """Looks an attribute up in per-frame groups first, then shared ones, then the top level."""

    def __init__(self, ds: Dataset, frame: int) -> None:
        shared = _first(ds, "SharedFunctionalGroupsSequence")
        per_frame_seq = ds.get("PerFrameFunctionalGroupsSequence")
        per_frame = per_frame_seq[frame] if per_frame_seq and frame < len(per_frame_seq) else None
        self.groups = [g for g in (per_frame, shared) if g is not None]
        self.ds = ds

    def get(self, macro: str, keyword: str) -> Any:
        for group in self.groups:
            item = _first(group, macro)
            if item is not None and keyword in item:
                return item.get(keyword)
        return self.ds.get(keyword)


def _declared_pixel_bytes(ds: Dataset) -> int:
    """Bytes the image size tags promise (uncompressed)."""
    frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    return (
        int(ds.Rows)
        * int(ds.Columns)
        * frames
        * int(ds.get("SamplesPerPixel", 1))
        * int(ds.get("BitsAllocated", 16))
        // 8
    )


def _pixel_problem(fp: Any, ds: Dataset, size: int) -> str | None:
    """Check the Pixel Data element's declared length against the header and the file."""
    syntax = ds.file_meta.get("TransferSyntaxUID", pydicom.uid.ImplicitVRLittleEndian)
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        return None  # the stream is inflated in memory; the decoder checks length
    pos = fp.tell()
    header = fp.read(12)
    if len(header) < 8:
        return "no pixel data (the file ends before the image; truncated?)"
    little = syntax != pydicom.uid.ExplicitVRBigEndian
    endian = "<" if little else ">"
    group, element = struct.unpack(endian + "HH", header[:4])
    if group == 0x7FE0 and element in (0x0008, 0x0009):
        return "floating-point pixel data (e.g. a parametric map) is not supported"
    if (group << 16 | element) != PIXEL_DATA_TAG:
        return "no pixel data (the file holds no image)"
    implicit = syntax == pydicom.uid.ImplicitVRLittleEndian
    if implicit:
        (length,) = struct.unpack(endian + "I", header[4:8])
        value_start = pos + 8
    else:
        if len(header) < 12:
            return "pixel data element is truncated"
        (length,) = struct.unpack(endian + "I", header[8:12])
        value_start = pos + 12
    if length == 0xFFFFFFFF:
        return _encapsulated_problem(fp, value_start, size, endian)
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    expected = _declared_pixel_bytes(ds)
    available = size - value_start
    if length < expected or available < expected:
        got = min(length, available)
        return (
            f"pixel data is shorter than declared ({got} bytes present, "
            f"{expected} needed for {frames} frame(s) of {rows}x{cols}); file truncated?"
        )
    return None


def _encapsulated_problem(fp: Any, start: int, size: int, endian: str) -> str | None:
    """Walk the fragment items (seeking, not reading) to find a truncated stream."""
    fp.seek(start)
    while True:
        item = fp.read(8)
        if len(item) < 8:
            return "compressed pixel data is truncated (the file ends inside the image)"
        group, element, length = struct.unpack(endian + "HHI", item)
        if (group, element) == (0xFFFE, 0xE0DD):
            return None
        if (group, element) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
            return "compressed pixel data is malformed (unexpected item in the fragment list)"
        if fp.tell() + length > size:
            return "compressed pixel data is truncated (the file ends inside the image)"
        fp.seek(length, 1)


def read_headers(source: SourceFile) -> list[FrameHeader] | SkippedFile:
    """Headers of one file, or the reason it is passed over."""
    try:
        with source.open() as fp:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True)
            except InvalidDicomError:
                return SkippedFile(source.display, "not a DICOM file")
            problem = None
            if "Rows" in ds and "Columns" in ds:
                problem = _pixel_problem(fp, ds, source.size)
        return _frames_from_dataset(ds, source, problem)
    except SkipFile as exc:
        return SkippedFile(source.display, str(exc))
    except (OSError, EOFError) as exc:
        return SkippedFile(source.display, f"cannot be read ({exc})")
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on malformed data
        return SkippedFile(source.display, f"malformed DICOM header ({type(exc).__name__}: {exc})")


class SkipFile(Exception):
    """Internal: a file that is DICOM but not an image we can use."""


def _frames_from_dataset(ds: Dataset, source: SourceFile, problem: str | None) -> list[FrameHeader]:
    sop_class = UID(_text(ds, "SOPClassUID") or str(ds.file_meta.get("MediaStorageSOPClassUID", "")))
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        raise SkipFile("DICOMDIR index (the files it lists are read directly)")
    if "Rows" not in ds or "Columns" not in ds:
        name = sop_class.name if sop_class else "unknown"
        if name.endswith("Image Storage"):
            # An image object without its image size: the header was cut short.
            raise SkipFile(
                f"{name} file without image size (Rows/Columns); header incomplete or file truncated"
            )
        raise SkipFile(f"not an image ({name})")
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    if not (0 < rows <= MAX_ROWS_COLUMNS and 0 < cols <= MAX_ROWS_COLUMNS and 0 < frames <= MAX_FRAMES):
        raise SkipFile(f"absurd image dimensions ({rows}x{cols}, {frames} frames)")
    declared = _declared_pixel_bytes(ds)
    if declared > MAX_IMAGE_BYTES:
        raise SkipFile(
            f"absurd image dimensions ({rows}x{cols}, {frames} frames = {declared / 2**30:.0f} GiB of pixels)"
        )
    if problem:
        # Before building one record per frame: a header may declare 100,000 frames.
        raise SkipFile(problem)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", pydicom.uid.ImplicitVRLittleEndian))
    lossy_tag = _text(ds, "LossyImageCompression")
    lossy = (
        lossy_tag == "01"
        or syntax in LOSSY_SYNTAXES
        or (syntax in MAYBE_LOSSY_SYNTAXES and lossy_tag != "00")
    )
    image_type = tuple(str(v) for v in (ds.get("ImageType") or ()))
    common = dict(
        display=source.display,
        source=source,
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        instance_number=_int_or_none(ds.get("InstanceNumber")) or 0,
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        study_uid=_text(ds, "StudyInstanceUID"),
        study_description=_text(ds, "StudyDescription"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_id=_text(ds, "StudyID"),
        accession_number=_text(ds, "AccessionNumber"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        series_number=_int_or_none(ds.get("SeriesNumber")) or 0,
        series_description=_text(ds, "SeriesDescription"),
        modality=_text(ds, "Modality"),
        sop_class_uid=str(sop_class),
        rows=rows,
        columns=cols,
        samples_per_pixel=int(ds.get("SamplesPerPixel", 1)),
        photometric=_text(ds, "PhotometricInterpretation"),
        bits_allocated=int(ds.get("BitsAllocated", 16)),
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 16))),
        pixel_representation=int(ds.get("PixelRepresentation", 0)),
        transfer_syntax=syntax,
        number_of_frames=frames,
        gantry_tilt_tag=_float_or(ds.get("GantryDetectorTilt"), None),
        lossy=lossy,
    )
    is_enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    out = []
    for frame in range(frames):
        out.append(_frame(ds, frame, is_enhanced, image_type, common))
    return out


def _frame(ds: Dataset, frame: int, enhanced: bool, image_type: tuple[str, ...], common: dict) -> FrameHeader:
    if enhanced:
        g = _FrameGroups(ds, frame)
        position = g.get("PlanePositionSequence", "ImagePositionPatient")
        orientation = g.get("PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = g.get("PixelMeasuresSequence", "PixelSpacing")
        thickness = g.get("PixelMeasuresSequence", "SliceThickness")
        slope = g.get("PixelValueTransformationSequence", "RescaleSlope")
        intercept = g.get("PixelValueTransformationSequence", "RescaleIntercept")
        rescale_type = g.get("PixelValueTransformationSequence", "RescaleType")
        frame_type = g.get("MRImageFrameTypeSequence", "FrameType") or g.get(
            "CTImageFrameTypeSequence", "FrameType"
        )
        if frame_type:
            image_type = tuple(str(v) for v in frame_type)
        stack_id = g.get("FrameContentSequence", "StackID")
        temporal = g.get("FrameContentSequence", "TemporalPositionIndex")
        echo = g.get("MREchoSequence", "EffectiveEchoTime")
    else:
        position = ds.get("ImagePositionPatient") if common["number_of_frames"] == 1 else None
        orientation = ds.get("ImageOrientationPatient")
        spacing = ds.get("PixelSpacing")
        thickness = ds.get("SliceThickness")
        slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
        rescale_type = ds.get("RescaleType")
        stack_id, temporal = None, ds.get("TemporalPositionIdentifier")
        echo = ds.get("EchoNumbers")
    iop = _floats(orientation, 6) if orientation is not None else None
    row_cos = col_cos = None
    if iop is not None and np.linalg.norm(iop[:3]) > 0.5 and np.linalg.norm(iop[3:]) > 0.5:
        row_cos = iop[:3] / np.linalg.norm(iop[:3])
        col_cos = iop[3:] / np.linalg.norm(iop[3:])
    ps = _floats(spacing, 2) if spacing is not None else None
    modality = common["modality"]
    default_type = "HU" if modality == "CT" else ""
    return FrameHeader(
        frame_index=frame,
        image_type=image_type,
        acquisition_number=_int_or_none(ds.get("AcquisitionNumber")),
        echo=round(v, 3) if (v := _float_or(echo, None)) is not None else None,
        temporal_position=_int_or_none(temporal),
        stack_id=str(stack_id) if stack_id is not None else None,
        row_cosine=row_cos,
        column_cosine=col_cos,
        position=_floats(position, 3) if position is not None else None,
        pixel_spacing=(float(ps[0]), float(ps[1])) if ps is not None and np.all(ps > 0) else None,
        slice_thickness=_float_or(thickness, None),
        rescale_slope=_float_or(slope, 1.0) or 1.0,
        rescale_intercept=_float_or(intercept, 0.0) or 0.0,
        rescale_type=str(rescale_type).strip() if rescale_type else default_type,
        **common,
    )
