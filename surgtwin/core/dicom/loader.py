"""Turn one indexed series into a :class:`Volume` in modality units with its affine."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np

import surgtwin
from surgtwin.core.dicom.inventory import FrameHeader, Series
from surgtwin.core.dicom.pixels import iter_decoded, stored_range
from surgtwin.core.dicom.resample import output_step, resample_to_grid
from surgtwin.core.errors import DicomError
from surgtwin.core.progress import Progress, ensure_progress
from surgtwin.core.volume import Volume

IrregularPolicy = Literal["resample", "refuse"]
INT16 = np.iinfo(np.int16)


def _integral(x: float) -> bool:
    return float(x).is_integer()


def _rescale(stored: np.ndarray, frame: FrameHeader, out_dtype: np.dtype) -> np.ndarray:
    slope, intercept = frame.rescale_slope, frame.rescale_intercept
    if out_dtype == np.int16:
        return stored.astype(np.int32) * int(slope) + int(intercept)
    return stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _fits_int16(frames: list[FrameHeader]) -> bool:
    """Whether every frame's possible rescaled values are whole numbers within int16."""
    for f in frames:
        if not (_integral(f.rescale_slope) and _integral(f.rescale_intercept)):
            return False
        lo, hi = stored_range(f)
        ends = sorted(
            (lo * f.rescale_slope + f.rescale_intercept, hi * f.rescale_slope + f.rescale_intercept)
        )
        if ends[0] < INT16.min or ends[1] > INT16.max:
            return False
    return True


def load_series(
    series: Series, progress: Progress | None = None, irregular: IrregularPolicy = "resample"
) -> Volume:
    """Decode and place every slice; resample irregular slices only when allowed, recording it."""
    progress = ensure_progress(progress)
    if not series.loadable or series.geometry is None:
        blocking = [f.code for f in series.findings if f.severity == "error"]
        raise DicomError(
            f"series {series.uid} cannot be loaded as a volume: {series.not_loadable_reason}",
            code=blocking[0] if blocking else "not_a_volume",
        )
    geometry = series.geometry
    frames = geometry.frames
    if not geometry.regular and irregular == "refuse":
        codes = ", ".join(f.code for f in geometry.findings)
        raise DicomError(
            f"series {series.uid} is not on a regular grid ({codes}) and resampling was not allowed",
            code="irregular_geometry",
        )
    first = frames[0]
    # Values that cannot fit int16 exactly (fractional slope, wide range) go to float32.
    dtype = np.dtype(np.int16) if _fits_int16(frames) else np.dtype(np.float32)
    voxels = np.empty((len(frames), first.rows, first.columns), dtype=dtype)
    decisions: list[str] = []
    progress.start("decoding slices", len(frames))
    for k, stored in iter_decoded(frames):
        voxels[k] = _rescale(stored, frames[k], dtype)
        progress.advance()
    display_inverted = first.photometric == "MONOCHROME1"
    if display_inverted:
        # Values stay in modality units (quantitative maps stay true); only display flips.
        decisions.append("MONOCHROME1: values kept in modality units; display inverts (low values bright)")
    affine = geometry.acquired_affine()
    if not geometry.regular:
        progress.start("resampling onto a regular grid", 1)
        step = output_step(geometry)
        fill = float(voxels.min())
        before = len(frames)
        voxels, affine = resample_to_grid(voxels, geometry, step, fill)
        what = ", ".join(
            f.code
            for f in geometry.findings
            if f.code in ("gantry_tilt", "variable_spacing", "missing_slices", "inconsistent_positions")
        )
        decisions.append(
            f"resampled onto a regular grid because of {what}: {before} acquired slices -> "
            f"{voxels.shape[0]} slices every {step:.4g} mm along the slice normal, "
            f"linear interpolation, outside filled with {fill:g}"
        )
        progress.advance()
    return Volume(
        voxels=voxels,
        ijk_to_lps=affine,
        modality=first.modality,
        units=_units(first),
        name=series.description or f"{first.modality} series {series.number}",
        provenance=_provenance(series, resampled=not geometry.regular)
        | {"display_inverted": display_inverted},
        findings=list(series.findings),
        decisions=decisions,
    )


def _units(frame: FrameHeader) -> str:
    if frame.modality == "CT" and frame.rescale_type in ("HU", ""):
        return "HU"
    return frame.rescale_type if frame.rescale_type not in ("US", "") else ""


def _provenance(series: Series, resampled: bool) -> dict:
    first = series.frames[0]
    frames = series.geometry.frames if series.geometry else []
    return {
        "source": "dicom",
        "series_instance_uid": series.series_instance_uid,
        "series_part": series.uid,
        "study_instance_uid": first.study_uid,
        "patient_id": first.patient_id,
        "files": len(series.files),
        "frames_used": len(series.geometry.frames) if series.geometry else 0,
        "transfer_syntaxes": sorted({f.transfer_syntax for f in series.frames}),
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "software_version": surgtwin.__version__,
        # What a derived DICOM object (e.g. a DICOM SEG) needs to point back at its source.
        "dicom": {
            "patient_name": first.patient_name,
            "patient_birth_date": first.patient_birth_date,
            "patient_sex": first.patient_sex,
            "study_date": first.study_date,
            "study_time": first.study_time,
            "study_id": first.study_id,
            "accession_number": first.accession_number,
            "study_description": first.study_description,
            "series_number": series.number,
            "modality": first.modality,
            "frame_of_reference_uid": first.frame_of_reference_uid,
            "sop_class_uid": first.sop_class_uid,
            # one per slice k, with the frame number for multi-frame files; None once resampled
            "source_instances": None
            if resampled
            else [
                {
                    "sop_instance_uid": f.sop_instance_uid,
                    "frame": f.frame_index + 1 if f.number_of_frames > 1 else None,
                }
                for f in frames
            ],
        },
    }
