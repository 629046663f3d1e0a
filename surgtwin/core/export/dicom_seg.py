"""DICOM SEG (highdicom, BINARY) referencing the DICOM series the volume was loaded from.

highdicom needs the source images' headers. The pixels are not needed, so minimal
headers are rebuilt from what the loader recorded (UIDs, patient/study details) and the
volume's geometry; this keeps export possible without the original files at hand.
Label values become consecutive segment numbers 1..n (DICOM requires them so).
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

import surgtwin
from surgtwin.core.errors import SegmentationError
from surgtwin.core.export.common import rgb255
from surgtwin.core.segmentation.io import same_grid
from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.volume import Volume

SEG_SERIES_NUMBER = 900  # clear of scanner series numbers, as other workstations do

# SNOMED CT codes (from the DICOM code dictionary) for words in segment names, matched
# as whole words of the name split on "_", "-" and spaces. Lesion words are looked for
# first, so "liver_tumour" is a neoplasm, not the liver; otherwise the last anatomy word
# counts ("portal_vein" is a vein, "liver_vessels" vessels). Anything else is "Tissue".
_ANATOMY = codes.SCT.AnatomicalStructure  # 91723000
_ABNORMAL = codes.SCT.MorphologicallyAbnormalStructure  # 49755003
_LESION_TYPES: dict[str, Code] = {
    "tumour": codes.SCT.Neoplasm,  # 108369006
    "tumor": codes.SCT.Neoplasm,
    "tumours": codes.SCT.Neoplasm,
    "tumors": codes.SCT.Neoplasm,
    "neoplasm": codes.SCT.Neoplasm,
    "metastasis": codes.SCT.NeoplasmMetastatic,  # 14799000
    "metastases": codes.SCT.NeoplasmMetastatic,
    "mass": codes.SCT.Mass,  # 4147007
    "nodule": codes.SCT.Nodule,  # 27925004
    "nodules": codes.SCT.Nodule,
    "cyst": codes.SCT.Cyst,  # 367643001
    "cysts": codes.SCT.Cyst,
    "lesion": codes.SCT.Lesion,  # 52988006
    "lesions": codes.SCT.Lesion,
}
_ANATOMY_TYPES: dict[str, Code] = {
    "skin": codes.SCT.Skin,  # 39937001
    "bone": codes.SCT.Bone,  # 272673000
    "bones": codes.SCT.Bone,
    "muscle": codes.SCT.SkeletalMuscle,  # 127954009
    "muscles": codes.SCT.SkeletalMuscle,
    "fat": Code("55603005", "SCT", "Adipose tissue"),
    "liver": codes.SCT.Liver,  # 10200004
    "spleen": codes.SCT.Spleen,  # 78961009
    "kidney": codes.SCT.Kidney,  # 64033007
    "kidneys": codes.SCT.Kidney,
    "aorta": codes.SCT.Aorta,  # 15825003
    "artery": codes.SCT.Artery,  # 51114001
    "arteries": codes.SCT.Artery,
    "vein": codes.SCT.Vein,  # 29092000
    "veins": codes.SCT.Vein,
    "vessel": codes.SCT.BloodVessel,  # 59820001
    "vessels": codes.SCT.BloodVessel,
    "airway": codes.SCT.AirwayStructure,  # 89187006
    "airways": codes.SCT.AirwayStructure,
    "lung": codes.SCT.Lung,  # 39607008
    "lungs": codes.SCT.Lung,
    "stomach": codes.SCT.Stomach,  # 69695003
    "pancreas": codes.SCT.Pancreas,  # 15776009
    "gallbladder": codes.SCT.Gallbladder,  # 28231008
}
# Segments the one-click twin made (their provenance names this tool) are AUTOMATIC.
_ONE_CLICK_TOOL = "one_click_twin"
ONE_CLICK_ALGORITHM = "surgtwin one-click twin"


def name_codes(name: str) -> tuple[Code, Code]:
    """(category, type) SNOMED CT codes for a segment name, by whole words."""
    words = [w for w in re.split(r"[_\-\s]+", name.lower()) if w]
    for word in words:
        if word in _LESION_TYPES:
            return _ABNORMAL, _LESION_TYPES[word]
    for word in reversed(words):
        if word in _ANATOMY_TYPES:
            return _ANATOMY, _ANATOMY_TYPES[word]
    return codes.SCT.Tissue, codes.SCT.Tissue


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
    by_name = name_codes(segment.name)
    return CodedConcept.from_code(by_name[0]), CodedConcept.from_code(by_name[1])


def _algorithm(segment: Segment) -> tuple[Any, Any]:
    """(SegmentAlgorithmType, AlgorithmIdentificationSequence): AUTOMATIC for what the
    one-click twin made, otherwise SEMIAUTOMATIC (made or edited with surgtwin's tools);
    never MANUAL, which would claim no algorithm was involved."""
    import highdicom as hd

    if segment.provenance.get("tool") == _ONE_CLICK_TOOL:
        version = segment.provenance.get("version")
        return hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, hd.AlgorithmIdentificationSequence(
            name=ONE_CLICK_ALGORITHM,
            family=codes.cid7162.MorphologicalOperations,
            version=f"{surgtwin.__version__} (twin v{version})" if version else surgtwin.__version__,
        )
    return hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC, hd.AlgorithmIdentificationSequence(
        name="surgtwin", family=codes.cid7162.ManualProcessing, version=surgtwin.__version__
    )


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
    descriptions = []
    for number, label in enumerate(labels, start=1):
        segment = segmentation.segments[label]
        category, kind = _codes(segment)
        algorithm_type, algorithm = _algorithm(segment)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=segment.name[:64],
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=algorithm_type,
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
