"""What an import found: patients -> studies -> series, and the files passed over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgtwin.core.findings import Finding


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class FrameHeader:
    """Everything needed to place and decode one 2D frame, read from headers only."""

    display: str  # file (or zip member) it lives in
    source: Any  # SourceFile, to reopen it for pixels
    frame_index: int  # 0 for single-frame files
    sop_instance_uid: str
    instance_number: int
    patient_id: str
    patient_name: str
    study_uid: str
    study_description: str
    study_date: str
    study_time: str
    study_id: str
    accession_number: str
    patient_birth_date: str
    patient_sex: str
    frame_of_reference_uid: str
    series_uid: str
    series_number: int
    series_description: str
    modality: str
    sop_class_uid: str
    rows: int
    columns: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    number_of_frames: int
    image_type: tuple[str, ...]
    acquisition_number: int | None
    echo: float | None  # EchoNumbers, or EffectiveEchoTime (ms) in enhanced MR
    temporal_position: int | None
    stack_id: str | None
    row_cosine: np.ndarray | None  # direction of increasing column index (i)
    column_cosine: np.ndarray | None  # direction of increasing row index (j)
    position: np.ndarray | None  # ImagePositionPatient, LPS mm
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns)
    slice_thickness: float | None
    rescale_slope: float
    rescale_intercept: float
    rescale_type: str
    gantry_tilt_tag: float | None
    lossy: bool

    @property
    def normal(self) -> np.ndarray | None:
        if self.row_cosine is None or self.column_cosine is None:
            return None
        n = np.cross(self.row_cosine, self.column_cosine)
        return n / np.linalg.norm(n)


@dataclass
class Series:
    """A group of frames that can form one volume (or say why not)."""

    uid: str  # SeriesInstanceUID, with a suffix "#N" when a series had to be split
    series_instance_uid: str
    modality: str
    description: str
    number: int
    frames: list[FrameHeader]
    split_reason: str | None = None
    findings: list[Finding] = field(default_factory=list)
    loadable: bool = True
    not_loadable_reason: str | None = None
    geometry: Any = None  # SliceGeometry once analysed

    @property
    def files(self) -> list[str]:
        return sorted({f.display for f in self.frames})

    def summary(self) -> dict[str, Any]:
        first = self.frames[0]
        out: dict[str, Any] = {
            "uid": self.uid,
            "series_instance_uid": self.series_instance_uid,
            "modality": self.modality,
            "description": self.description,
            "series_number": self.number,
            "files": len(self.files),
            "frames": len(self.frames),
            "dimensions": None,
            "spacing_mm": None,
            "loadable": self.loadable,
            "not_loadable_reason": self.not_loadable_reason,
            "split_reason": self.split_reason,
            "transfer_syntax": first.transfer_syntax,
            "warnings": [f.to_dict() for f in self.findings],
        }
        if self.geometry is not None:
            out["dimensions"] = list(self.geometry.dimensions)
            out["spacing_mm"] = [round(float(s), 6) for s in self.geometry.spacing]
        return out


@dataclass
class Study:
    uid: str
    description: str
    date: str
    series: list[Series] = field(default_factory=list)


@dataclass
class Patient:
    patient_id: str
    name: str
    studies: list[Study] = field(default_factory=list)


@dataclass
class Inventory:
    patients: list[Patient] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def series(self) -> list[Series]:
        return [s for p in self.patients for st in p.studies for s in st.series]

    def find_series(self, uid: str) -> Series | None:
        for s in self.series:
            if s.uid == uid:
                return s
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "patients": [
                {
                    "patient_id": p.patient_id,
                    "name": p.name,
                    "studies": [
                        {
                            "study_instance_uid": st.uid,
                            "description": st.description,
                            "date": st.date,
                            "series": [s.summary() for s in st.series],
                        }
                        for st in p.studies
                    ],
                }
                for p in self.patients
            ],
            "skipped": [s.to_dict() for s in self.skipped],
        }
