"""DICOM SEG (highdicom, BINARY) referencing the DICOM series the volume was loaded from.

highdicom needs the source images' headers. The pixels are not needed, so minimal
headers are rebuilt from what the loader recorded (UIDs, patient/study details) and the
volume's geometry; this keeps export possible without the original files at hand.
Label values become consecutive segment numbers 1..n (DICOM requires them so).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

import surgtwin
from surgtwin.core.errors import SegmentationError
from surgtwin.core.export.common import rgb255
from surgtwin.core.segmentation.io import same_grid
from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.volume import Volume

SEG_SERIES_NUMBER = 900  # clear of scanner series numbers, as other workstations do

# SNOMED CT codes for common segment names (type, category); others are "Tissue".
_ANATOMY = ("91723000", "Anatomical Structure")
_KNOWN_TYPES: dict[str, tuple[str, str, tuple[str, str]]] = {
    "skin": ("39937001", "Skin", _ANATOMY),
    "bone": ("272673000", "Bone", _ANATOMY),
    "muscle": ("71616004", "Skeletal muscle", _ANATOMY),
    "fat": ("55603005", "Adipose tissue", _ANATOMY),
    "liver": ("10200004", "Liver", _ANATOMY),
    "spleen": ("78961009", "Spleen", _ANATOMY),
    "kidney": ("64033007", "Kidney", _ANATOMY),
    "aorta": ("15825003", "Aorta", _ANATOMY),
    "lung": ("39607008", "Lung", _ANATOMY),
    "stomach": ("69695003", "Stomach", _ANATOMY),
    "pancreas": ("15776009", "Pancreas", _ANATOMY),
    "gallbladder": ("28231008", "Gallbladder", _ANATOMY),
    "tumour": ("108369006", "Neoplasm", ("49755003", "Morphologically Altered Structure")),
}


def _source_problem(volume: Volume | None) -> str | None:
    if volume is None:
        return "DICOM SEG needs the DICOM volume the segmentation was drawn on"
    dicom = volume.provenance.get("dicom")
    if volume.provenance.get("source") != "dicom" or not isinstance(dicom, dict):
        return (
            "the volume does not come from DICOM (e.g. a NIfTI file), so a DICOM SEG would have no images "
            "to refer to; export a NIfTI label map instead"
        )
    instances = dicom.get("source_instances")
    if instances is None:
        return (
            "the volume was resampled on import (irregular slices), so its voxels match no DICOM image; "
            "export a NIfTI label map instead"
        )
    if len(instances) != volume.voxels.shape[0]:
        return f"the volume has {volume.voxels.shape[0]} slices but {len(instances)} recorded DICOM images"
    if any(item.get("frame") is not None for item in instances):
        return "the volume comes from a multi-frame DICOM image, which DICOM SEG export does not support yet"
    return None


def _source_datasets(volume: Volume) -> list[Dataset]:
    prov, dicom = volume.provenance, volume.provenance["dicom"]
    rows, cols = volume.voxels.shape[1:]
    direction, spacing = volume.direction, volume.spacing
    datasets = []
    for k, instance in enumerate(dicom["source_instances"]):
        ds = Dataset()
        ds.SOPClassUID = dicom["sop_class_uid"]
        ds.SOPInstanceUID = instance["sop_instance_uid"]
        ds.StudyInstanceUID = prov["study_instance_uid"]
        ds.SeriesInstanceUID = prov["series_instance_uid"]
        ds.FrameOfReferenceUID = dicom["frame_of_reference_uid"]
        ds.Modality = dicom.get("modality") or volume.modality or "OT"
        ds.SeriesNumber = dicom.get("series_number") or 1
        ds.PatientID = prov.get("patient_id") or ""
        for keyword, key in (
            ("PatientName", "patient_name"),
            ("PatientBirthDate", "patient_birth_date"),
            ("PatientSex", "patient_sex"),
            ("StudyDate", "study_date"),
            ("StudyTime", "study_time"),
            ("StudyID", "study_id"),
            ("AccessionNumber", "accession_number"),
            ("StudyDescription", "study_description"),
        ):
            setattr(ds, keyword, str(dicom.get(key) or ""))
        ds.ReferringPhysicianName = ""
        ds.Rows, ds.Columns = rows, cols
        ds.ImagePositionPatient = [float(v) for v in volume.index_to_lps(np.array([0.0, 0.0, k]))[0]]
        ds.ImageOrientationPatient = [float(v) for v in np.concatenate([direction[:, 0], direction[:, 1]])]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # row spacing (j), column spacing (i)
        ds.SliceThickness = float(spacing[2])
        datasets.append(ds)
    return datasets


def _codes(segment: Segment) -> tuple[Any, Any]:
    from highdicom.sr import CodedConcept

    term = segment.terminology or {}
    if term.get("code") and term.get("scheme") and term.get("meaning"):
        kind = CodedConcept(term["code"], term["scheme"], term["meaning"])
        if term.get("category_code") and term.get("category_scheme") and term.get("category_meaning"):
            return CodedConcept(
                term["category_code"], term["category_scheme"], term["category_meaning"]
            ), kind
        return codes.SCT.Tissue, kind
    key = segment.name.lower()
    for known, (code, meaning, (cat_code, cat_meaning)) in _KNOWN_TYPES.items():
        if known in key:
            return CodedConcept(cat_code, "SCT", cat_meaning), CodedConcept(code, "SCT", meaning)
    return codes.SCT.Tissue, codes.SCT.Tissue


def seg_bytes(segmentation: Segmentation, volume: Volume | None, labels: list[int]) -> bytes:
    """A DICOM SEG of the given labels (renumbered 1..n in that order)."""
    import highdicom as hd

    problem = _source_problem(volume)
    if problem:
        raise SegmentationError(f"cannot write DICOM SEG: {problem}")
    assert volume is not None
    if not same_grid(
        segmentation.labels.shape, segmentation.ijk_to_lps, volume.voxels.shape, volume.ijk_to_lps
    ):
        raise SegmentationError("cannot write DICOM SEG: the segmentation is not on the volume's voxel grid")
    lookup = np.zeros(max(int(segmentation.labels.max()), max(labels)) + 1, dtype=np.uint16)
    for number, label in enumerate(labels, start=1):
        lookup[label] = number
    pixels = lookup[segmentation.labels]
    pixels = pixels.astype(np.uint8) if len(labels) <= 255 else pixels
    algorithm = hd.AlgorithmIdentificationSequence(
        name="surgtwin", family=codes.cid7162.ManualProcessing, version=surgtwin.__version__
    )
    descriptions = []
    for number, label in enumerate(labels, start=1):
        segment = segmentation.segments[label]
        category, kind = _codes(segment)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=segment.name[:64],
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=algorithm,
                display_color=hd.color.CIELabColor.from_rgb(*rgb255(segment.color)),
            )
        )
    seg = hd.seg.Segmentation(
        source_images=_source_datasets(volume),
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="surgtwin",
        manufacturer_model_name="surgtwin",
        software_versions=surgtwin.__version__,
        device_serial_number="0",
        content_label="SEGMENTATION",
        content_description=segmentation.name[:64],
        series_description=segmentation.name[:64],
    )
    out = io.BytesIO()
    pydicom.dcmwrite(out, seg, enforce_file_format=True)
    return out.getvalue()
