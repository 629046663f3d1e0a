"""Segmentations made elsewhere, brought onto a reference volume's grid.

Two sources: a label map file (NIfTI/NRRD/MetaImage; e.g. TotalSegmentator) with a
names file, and DICOM SEG (highdicom). Both end on the reference volume's voxel grid,
placed by physical (LPS) geometry, so that segments line up with the voxels they label.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.uid import UID
from scipy import ndimage

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.colors import Color, default_color
from surgtwin.core.segmentation.model import MAX_LABEL, Segment, Segmentation, unique_name
from surgtwin.core.volume import Volume

# Two grids are "the same" when their affines differ by less than this (mm): NIfTI stores
# its geometry in float32, so a round trip through a file moves it by ~1e-5 mm.
SAME_GRID_TOLERANCE_MM = 1e-3
# A DICOM SEG frame sits "on" a reference slice when its pixel centres are this close
# (in voxels) to reference voxel centres.
ON_GRID_TOLERANCE_VOXELS = 0.01

# Errors that pydicom and highdicom raise for files they cannot read or decode. Not
# AttributeError/KeyError/TypeError: those would hide bugs; missing attributes that
# highdicom would trip over are checked for first (_REQUIRED).
_DECODE_ERRORS = (
    ValueError,
    RuntimeError,
    NotImplementedError,
    EOFError,
    OSError,
    InvalidDicomError,
    BytesLengthException,
)
# Attributes a SEG must have for highdicom and this reader to use it.
_REQUIRED = (
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "SegmentationType",
    "SegmentSequence",
    "SharedFunctionalGroupsSequence",
    "Rows",
    "Columns",
)
_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
# Transfer syntaxes newer than pydicom 3.0 knows, named for the error message.
_UNKNOWN_SYNTAXES = {"1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression"}
_KJI = np.eye(4)[[2, 1, 0, 3]]  # swaps (i, j, k) <-> (k, j, i); its own inverse


# --- names files --------------------------------------------------------------------
def _name_tables(source: dict[int, str] | Path | str | None, task: str | None) -> dict[str, dict[int, str]]:
    """Label value -> name tables: one for ``{"1": "liver", ...}``; one per task for a
    TotalSegmentator-style class map ``{"total": {"1": "spleen", ...}, ...}`` unless ``task`` is given.
    """
    if source is None:
        return {}
    if isinstance(source, dict):
        return {"": _checked_names(source, "names")}
    path = Path(source)
    if not path.is_file():
        raise SegmentationError(
            f"names file {path} not found: give a JSON file mapping label values to names, "
            'e.g. {"1": "liver", "2": "spleen"}'
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SegmentationError(f"names file {path} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise SegmentationError(f'names file {path}: expected a JSON object like {{"1": "liver"}}')
    if not all(isinstance(v, dict) for v in data.values()):
        return {"": _checked_names(data, str(path))}
    if task is not None:
        if task not in data:
            raise SegmentationError(f"names file {path} has no task {task!r} (tasks: {', '.join(data)})")
        return {task: _checked_names(data[task], f"{path} [{task}]")}
    return {t: _checked_names(m, f"{path} [{t}]") for t, m in data.items()}


def _checked_names(raw: dict[Any, Any], where: str) -> dict[int, str]:
    names: dict[int, str] = {}
    for key, value in raw.items():
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise SegmentationError(f"{where}: label {key!r} is not a whole number") from None
        if not 1 <= label <= MAX_LABEL:
            raise SegmentationError(f"{where}: label {label} is outside 1..{MAX_LABEL} (0 is background)")
        if not isinstance(value, str) or not value.strip():
            raise SegmentationError(f"{where}: the name of label {label} must be a non-empty text")
        names[label] = value.strip()
    return names


def _choose_table(
    tables: dict[str, dict[int, str]], present: list[int], decisions: list[str]
) -> dict[int, str]:
    """A class map's task: the first (TotalSegmentator lists its default first) naming every label."""
    if len(tables) <= 1:
        return next(iter(tables.values()), {})
    for task, table in tables.items():
        if all(v in table for v in present):
            decisions.append(
                f"class map has tasks {', '.join(tables)}; used {task!r}, the first that names every "
                "label in the image (pass task=... to choose another)"
            )
            return table
    raise SegmentationError(
        f"no task of the class map ({', '.join(tables)}) names every label in the image; "
        "choose one with task=..."
    )


# --- label maps ---------------------------------------------------------------------
def read_label_map(
    path: Path | str,
    names: dict[int, str] | Path | str | None,
    reference: Volume,
    task: str | None = None,
) -> Segmentation:
    """Read a NIfTI/NRRD/MetaImage label map onto ``reference``'s grid.

    Only labels present in the image become segments; labels without a name are called
    ``label_<value>``. When the grids differ, labels are resampled (nearest neighbour,
    physical geometry) and the decision is recorded in ``provenance["decisions"]``.
    """
    path = Path(path)
    tables = _name_tables(names, task)
    if not path.is_file():
        raise SegmentationError(f"label map {path} not found")
    labels, src_affine = _read_label_image(path)
    decisions: list[str] = []
    present_in_file = [int(v) for v in np.unique(labels) if v != 0]
    name_map = _choose_table(tables, present_in_file, decisions)

    placed = _onto_grid(labels, src_affine, reference, decisions, str(path))
    present = [int(v) for v in np.unique(placed) if v != 0]
    lost = sorted(set(present_in_file) - set(present))
    if lost:
        decisions.append(f"labels {lost} have no voxel left on the reference grid and were not created")
    if present_in_file and not present:
        raise SegmentationError(f"{path}: no labelled voxel falls inside the reference volume")
    unnamed = [v for v in present if v not in name_map]
    if name_map and unnamed:
        decisions.append(f"labels {unnamed} have no name in the names file; called label_<value>")

    dtype = np.uint8 if max(present, default=0) <= 255 else np.uint16
    segmentation = Segmentation(
        placed.astype(dtype, copy=False),
        reference.ijk_to_lps.copy(),
        name=path.name.split(".")[0],
        provenance={"source": "label_map", "path": str(path), "decisions": decisions},
    )
    # Names from the file are claimed before automatic ones, so a given name is kept.
    wanted = [(v, name_map[v]) for v in present if v in name_map]
    wanted += [(v, f"label_{v}") for v in present if v not in name_map]
    unique = _unique_names(wanted, decisions)
    for value in present:
        name = unique[value]
        segmentation.segments[value] = Segment(
            name=name, color=default_color(name), provenance={"source": "label_map", "label_in_file": value}
        )
    return segmentation


def _unique_names(wanted: list[tuple[int, str]], decisions: list[str]) -> dict[int, str]:
    """Label -> name, in ``wanted``'s order of priority, with repeated names made unique
    (``a``, ``a_2``, ...; a suffix never takes a name wanted by another label); renames are
    recorded in ``decisions``."""
    reserved = {name for _, name in wanted}
    claimed: set[str] = set()
    names: dict[int, str] = {}
    renamed: list[str] = []
    for label, name in wanted:
        if name in claimed:
            new = unique_name(name, reserved | claimed)
            renamed.append(f"label {label} {name!r} -> {new!r}")
            name = new
        claimed.add(name)
        names[label] = name
    if renamed:
        decisions.append("segment names must be unique; renamed " + ", ".join(renamed))
    return names


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1].strip() if text else "unknown reason"


def _read_label_image(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The label array (k, j, i) and its ijk -> LPS affine, checked to be a label map."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise SegmentationError(f"{path}: cannot be read as a label map ({_last_line(exc)})") from exc
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise SegmentationError(f"{path}: has several values per voxel (colour/vector); a label map has one")
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise SegmentationError(f"{path}: a label map must be 3D, this image is {image.GetDimension()}D")
    raw = sitk.GetArrayFromImage(image)
    # Some tools save label maps as float; accept them only when every value is whole.
    if raw.dtype.kind == "f" and (not np.all(np.isfinite(raw)) or not np.array_equal(raw, np.round(raw))):
        raise SegmentationError(
            f"{path}: holds non-integer values, so it is not a label map "
            "(a probability map or an image? threshold it first)"
        )
    if raw.dtype.kind not in "iuf":
        raise SegmentationError(f"{path}: voxel type {raw.dtype} cannot hold label values")
    if raw.size and (raw.min() < 0 or raw.max() > MAX_LABEL):
        raise SegmentationError(
            f"{path}: label values must be within 0..{MAX_LABEL}, found {raw.min()}..{raw.max()}"
        )
    labels = raw.astype(np.uint16 if raw.size and raw.max() > 255 else np.uint8)
    return labels, Volume.from_sitk(image).ijk_to_lps


def same_grid(
    shape_a: tuple[int, ...], affine_a: np.ndarray, shape_b: tuple[int, ...], affine_b: np.ndarray
) -> bool:
    return tuple(shape_a) == tuple(shape_b) and bool(
        np.allclose(affine_a, affine_b, rtol=0.0, atol=SAME_GRID_TOLERANCE_MM)
    )


def _onto_grid(
    labels: np.ndarray, src_affine: np.ndarray, reference: Volume, decisions: list[str], what: str
) -> np.ndarray:
    """``labels`` (k, j, i on ``src_affine``) resampled onto the reference grid if needed."""
    ref_shape = reference.voxels.shape
    if same_grid(labels.shape, src_affine, ref_shape, reference.ijk_to_lps):
        decisions.append("on the reference grid: used as is")
        return labels
    ref_to_src = np.linalg.inv(src_affine) @ reference.ijk_to_lps  # reference ijk -> source ijk
    _require_overlap(labels.shape, ref_to_src, ref_shape, what)
    m = _KJI @ ref_to_src @ _KJI
    out = ndimage.affine_transform(
        labels, m[:3, :3], offset=m[:3, 3], output_shape=ref_shape, order=0, mode="constant", cval=0
    )
    decisions.append(
        f"grid {list(labels.shape[::-1])} (spacing "
        f"{np.round(np.linalg.norm(src_affine[:3, :3], axis=0), 3).tolist()} mm) differs from the reference "
        f"grid {list(ref_shape[::-1])}: resampled by nearest neighbour in patient coordinates"
    )
    return np.asarray(out)


def _require_overlap(
    src_shape: tuple[int, ...], ref_to_src: np.ndarray, ref_shape: tuple[int, ...], what: str
) -> None:
    ends = [(-0.5, n - 0.5) for n in ref_shape[::-1]]
    corners = np.array([[*c, 1.0] for c in itertools.product(*ends)])
    in_src = (corners @ ref_to_src.T)[:, :3]
    lo, hi = in_src.min(axis=0), in_src.max(axis=0)
    extent = np.array(src_shape[::-1], dtype=float) - 0.5
    if np.any(hi < -0.5) or np.any(lo > extent):
        raise SegmentationError(
            f"{what}: does not overlap the reference volume at all in patient space "
            "(was it made on another scan or patient?)"
        )


# --- DICOM SEG ----------------------------------------------------------------------
def read_dicom_seg(path: Path | str, reference: Volume) -> Segmentation:
    """Read a DICOM SEG (highdicom) and place its frames on ``reference``'s grid.

    Frames lying on reference slices are copied exactly; otherwise the SEG is assembled as
    a volume and resampled (nearest neighbour), which is recorded in the provenance.
    Label values are the SEG's segment numbers.
    """
    import highdicom as hd

    path = Path(path)
    if not path.is_file():
        raise SegmentationError(f"DICOM SEG {path} not found")
    transfer_syntax = _transfer_syntax(path)
    try:
        dataset = pydicom.dcmread(path)
        problem = _not_a_seg(dataset)
        if problem:
            raise SegmentationError(f"{path}: cannot be read as a DICOM SEG ({problem})")
        seg = hd.seg.Segmentation.from_dataset(dataset, copy=False)
    except _DECODE_ERRORS as exc:
        raise SegmentationError(f"{path}: cannot be read as a DICOM SEG ({exc})") from exc
    numbers = [int(item.SegmentNumber) for item in seg.SegmentSequence]
    if not numbers or max(numbers) > MAX_LABEL or min(numbers) < 1 or len(set(numbers)) != len(numbers):
        raise SegmentationError(f"{path}: segment numbers {numbers} are not usable as labels")
    try:
        frames = np.asarray(seg.pixel_array).reshape(int(seg.get("NumberOfFrames", 1)), seg.Rows, seg.Columns)
    except _DECODE_ERRORS as exc:
        raise SegmentationError(
            f"{path}: its pixel data cannot be decoded (transfer syntax {transfer_syntax.name}: "
            f"{_last_line(exc)}); convert it to an uncompressed transfer syntax, e.g. "
            "`gdcmconv --raw IN OUT`, and import it again"
        ) from exc
    decisions: list[str] = []
    _check_references(seg, reference, decisions)
    seg_type = str(seg.SegmentationType)
    dtype = np.uint8 if max(numbers) <= 255 else np.uint16
    labels: np.ndarray | None = _place_frames_exactly(seg, frames, seg_type, reference, dtype)
    if labels is None:
        labels = _place_by_resampling(seg, reference, decisions, str(path)).astype(dtype)
    else:
        decisions.append("every SEG frame lies on a reference slice: copied without resampling")

    segmentation = Segmentation(
        labels,
        reference.ijk_to_lps.copy(),
        name=str(seg.get("SeriesDescription") or seg.get("ContentLabel") or path.stem),
        provenance={
            "source": "dicom_seg",
            "path": str(path),
            "sop_instance_uid": str(seg.SOPInstanceUID),
            "series_instance_uid": str(seg.SeriesInstanceUID),
            "frame_of_reference_uid": str(seg.get("FrameOfReferenceUID", "")),
            "segmentation_type": seg_type,
            "decisions": decisions,
        },
    )
    wanted = []
    for item in seg.SegmentSequence:
        number = int(item.SegmentNumber)
        label = str(item.get("SegmentLabel") or "").strip()
        if not label:
            decisions.append(f"SEG segment {number} has no label; called segment_{number}")
        wanted.append((number, label or f"segment_{number}"))
    names = _unique_names(wanted, decisions)
    for item in seg.SegmentSequence:
        number = int(item.SegmentNumber)
        segmentation.segments[number] = _segment_from_item(item, names[number])
    return segmentation


def _not_a_seg(dataset: Any) -> str | None:
    """Why ``dataset`` is no usable SEG, or None."""
    if str(dataset.get("SOPClassUID", "")) != _SEG_SOP_CLASS:
        return f"SOP class {dataset.get('SOPClassUID', 'none')} is not Segmentation Storage"
    missing = [keyword for keyword in _REQUIRED if keyword not in dataset]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if not all("SegmentNumber" in item for item in dataset.SegmentSequence):
        return "a segment has no SegmentNumber"
    return None


def _transfer_syntax(path: Path) -> UID:
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise SegmentationError(f"{path}: is not a DICOM file ({exc})") from exc
    uid = UID(meta.get("TransferSyntaxUID", ""))
    if not uid.is_transfer_syntax:
        raise SegmentationError(
            f"{path}: uses transfer syntax {uid or 'none'} ({_UNKNOWN_SYNTAXES.get(uid, 'unknown')}), "
            "which this installation cannot decode; convert it to an uncompressed one and import it again"
        )
    return uid


def _segment_from_item(item: Any, name: str) -> Segment:
    import highdicom as hd

    color: Color = default_color(name)
    if "RecommendedDisplayCIELabValue" in item:
        rgb = hd.color.CIELabColor.from_dicom_value([int(v) for v in item.RecommendedDisplayCIELabValue])
        r, g, b = rgb.to_rgb(clip=True)
        color = (r / 255.0, g / 255.0, b / 255.0)
    terminology: dict[str, str] | None = None
    if "SegmentedPropertyTypeCodeSequence" in item:
        terminology = _code(item.SegmentedPropertyTypeCodeSequence[0], "")
        if "SegmentedPropertyCategoryCodeSequence" in item:
            terminology |= _code(item.SegmentedPropertyCategoryCodeSequence[0], "category_")
    algorithm = {"algorithm_type": str(item.get("SegmentAlgorithmType", ""))}
    if item.get("SegmentAlgorithmName"):
        algorithm["algorithm_name"] = str(item.SegmentAlgorithmName)
    return Segment(
        name=name, color=color, terminology=terminology, provenance={"source": "dicom_seg"} | algorithm
    )


def _code(code: Any, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}scheme": str(code.CodingSchemeDesignator),
        f"{prefix}code": str(code.CodeValue),
        f"{prefix}meaning": str(code.CodeMeaning),
    }


def _check_references(seg: Any, reference: Volume, decisions: list[str]) -> None:
    """Other UIDs are reported, not refused: some series (e.g. LIDC) vary their FoR per slice."""
    ref_for = (reference.provenance.get("dicom") or {}).get("frame_of_reference_uid")
    ref_series = reference.provenance.get("series_instance_uid")
    seg_series = {str(s.SeriesInstanceUID) for s in seg.get("ReferencedSeriesSequence", [])}
    if (ref_for and ref_for != seg.get("FrameOfReferenceUID", ref_for)) or (
        ref_series and seg_series and ref_series not in seg_series
    ):
        decisions.append("the SEG refers to another series or frame of reference; placed by position")


def _frame_item(seg: Any, f: int, keyword: str) -> Any:
    """A functional group item: per-frame when present, else shared."""
    per_frame = seg.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and keyword in per_frame[f]:
        return per_frame[f][keyword][0]
    shared = seg.get("SharedFunctionalGroupsSequence")
    if shared is not None and keyword in shared[0]:
        return shared[0][keyword][0]
    raise SegmentationError(f"SEG frame {f + 1} has no {keyword}: its position cannot be known")


def _place_frames_exactly(
    seg: Any, frames: np.ndarray, seg_type: str, reference: Volume, dtype: type
) -> np.ndarray | None:
    """Copy frames onto reference slices, or None when any frame is off the reference grid."""
    inv = np.linalg.inv(reference.ijk_to_lps)
    shape = reference.voxels.shape
    labels: np.ndarray = np.zeros(shape, dtype=dtype)
    rows, cols = frames.shape[1:]
    # FRACTIONAL frames hold probabilities/occupancies: a voxel belongs when at least half.
    threshold = (int(seg.MaximumFractionalValue) + 1) // 2 if seg_type == "FRACTIONAL" else 1
    for f in range(frames.shape[0]):
        position = np.array(_frame_item(seg, f, "PlanePositionSequence").ImagePositionPatient, dtype=float)
        iop = np.array(_frame_item(seg, f, "PlaneOrientationSequence").ImageOrientationPatient, dtype=float)
        spacing = np.array(_frame_item(seg, f, "PixelMeasuresSequence").PixelSpacing, dtype=float)
        origin = inv[:3, :3] @ position + inv[:3, 3]
        step_col = inv[:3, :3] @ (iop[:3] * spacing[1])  # one column to the right
        step_row = inv[:3, :3] @ (iop[3:] * spacing[0])  # one row down
        tol = ON_GRID_TOLERANCE_VOXELS
        if not (
            np.allclose(step_col, [1, 0, 0], atol=tol / max(cols, 1))
            and np.allclose(step_row, [0, 1, 0], atol=tol / max(rows, 1))
            and np.allclose(origin, np.round(origin), atol=tol)
        ):
            return None
        i0, j0, k = (int(v) for v in np.round(origin))
        if not 0 <= k < shape[0]:
            continue  # a frame outside the reference's slices: nothing of it lands on the grid
        mask = frames[f] >= threshold
        i_lo, j_lo = max(i0, 0), max(j0, 0)
        i_hi, j_hi = min(i0 + cols, shape[2]), min(j0 + rows, shape[1])
        if i_lo >= i_hi or j_lo >= j_hi:
            continue
        window = mask[j_lo - j0 : j_hi - j0, i_lo - i0 : i_hi - i0]
        target = labels[k, j_lo:j_hi, i_lo:i_hi]
        if seg_type == "LABELMAP":
            target[window] = frames[f][j_lo - j0 : j_hi - j0, i_lo - i0 : i_hi - i0][window]
        else:
            number = int(
                seg.PerFrameFunctionalGroupsSequence[f]
                .SegmentIdentificationSequence[0]
                .ReferencedSegmentNumber
            )
            target[window] = number  # overlapping segments: the higher number wins (frames are in order)
    return labels


def _place_by_resampling(seg: Any, reference: Volume, decisions: list[str], what: str) -> np.ndarray:
    try:
        volume = seg.get_volume(combine_segments=True, skip_overlap_checks=True)
    except _DECODE_ERRORS as exc:
        raise SegmentationError(
            f"{what}: its frames neither lie on the reference grid nor form a regular volume ({exc})"
        ) from exc
    array = np.asarray(volume.array)  # (frame, row, column) = (k, j, i)
    decisions.append("SEG frames are not on the reference grid")
    # highdicom's affine maps array indices (k, j, i); surgtwin's maps (i, j, k).
    ijk_to_lps = np.asarray(volume.affine, dtype=float) @ _KJI
    return _onto_grid(array.astype(np.uint16), ijk_to_lps, reference, decisions, what)
