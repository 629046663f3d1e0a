"""Per-kind manifest entries and array members: volumes, segmentations, surface meshes,
planning objects.

Every object entry lists its arrays under ``"arrays"`` (role -> file, sha256, dtype,
shape); writers return the entry and the (member, array) pairs to store. Planning
objects have no arrays: their whole description is JSON in the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from surgtwin.core.case.arrays import MemberError, npy_digest, storable
from surgtwin.core.case.reader import MANIFEST_NAME, CaseReader
from surgtwin.core.errors import MeshError, SegmentationError, VolumeError
from surgtwin.core.findings import Finding
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.plan.objects import PlanError, PlanObject, plan_from_dict
from surgtwin.core.segmentation.model import MAX_LABEL, Segment, Segmentation
from surgtwin.core.volume import Volume

Members = list[tuple[str, np.ndarray]]
LABEL_DTYPES = frozenset({"|u1", "<u2"})


def _array_entry(member: str, array: np.ndarray) -> dict[str, Any]:
    sha256, _ = npy_digest(array)
    return {"file": member, "sha256": sha256, "dtype": array.dtype.str, "shape": list(array.shape)}


def _arrays(named: dict[str, tuple[str, np.ndarray]], what: str) -> tuple[dict[str, Any], Members]:
    entries: dict[str, Any] = {}
    members: Members = []
    for role, (member, array) in named.items():
        try:
            array = storable(array)
        except MemberError as exc:
            raise MemberError(f"{what} {exc}") from exc
        entries[role] = _array_entry(member, array)
        members.append((member, array))
    return entries, members


# --- writing ---------------------------------------------------------------------
def write_volume(object_id: str, volume: Volume) -> tuple[dict[str, Any], Members]:
    arrays, members = _arrays(
        {"voxels": (f"volumes/{object_id}.npy", volume.voxels)}, f"volume {volume.name!r}"
    )
    entry = {
        "id": object_id,
        "kind": "volume",
        "name": volume.name,
        "ijk_to_lps": volume.ijk_to_lps.tolist(),
        "modality": volume.modality,
        "units": volume.units,
        "provenance": volume.provenance,
        "findings": [f.to_dict() for f in volume.findings],
        "decisions": list(volume.decisions),
        "arrays": arrays,
    }
    return entry, members


def write_segmentation(object_id: str, seg: Segmentation) -> tuple[dict[str, Any], Members]:
    what = f"segmentation {seg.name!r}"
    arrays, members = _arrays({"labels": (f"segmentations/{object_id}.npy", seg.labels)}, what)
    entry = {
        "id": object_id,
        "kind": "segmentation",
        "name": seg.name,
        "ijk_to_lps": seg.ijk_to_lps.tolist(),
        "reference_volume_id": seg.reference_volume_id,
        "segments": [{"label": label, **s.to_dict()} for label, s in seg.segments.items()],
        "provenance": seg.provenance,
        "arrays": arrays,
    }
    return entry, members


def write_mesh(object_id: str, mesh: SurfaceMesh) -> tuple[dict[str, Any], Members]:
    named = {
        "vertices": (f"meshes/{object_id}/vertices.npy", mesh.vertices),
        "faces": (f"meshes/{object_id}/faces.npy", mesh.faces),
    }
    arrays, members = _arrays(named, f"mesh {mesh.name!r}")
    entry = {
        "id": object_id,
        "kind": "mesh",
        "name": mesh.name,
        "color": [float(c) for c in mesh.color],
        "segment_label": mesh.segment_label,
        "segmentation_id": mesh.segmentation_id,
        "provenance": mesh.provenance,
        "arrays": arrays,
    }
    return entry, members


def write_plan(object_id: str, plan: PlanObject) -> tuple[dict[str, Any], Members]:
    """``{id, kind: "plan", type, name, color, visible, provenance, <points>..., arrays: {}}``."""
    return {"id": object_id, "kind": "plan", **plan.to_dict(), "arrays": {}}, []


Writer = Callable[[str, Any], tuple[dict[str, Any], Members]]
Reader = Callable[[CaseReader, dict[str, Any], dict[str, str]], Any]
WRITERS: dict[str, Writer] = {
    "volume": write_volume,
    "segmentation": write_segmentation,
    "mesh": write_mesh,
    "plan": write_plan,
}


# --- reading ---------------------------------------------------------------------
def read_volume(reader: CaseReader, entry: dict[str, Any], kinds: dict[str, str]) -> Volume:
    voxels, member = reader.array(entry, "voxels", 3)
    matrix = reader.matrix(entry.get("ijk_to_lps"), f"ijk_to_lps for {member}")
    try:
        findings = [Finding.from_dict(f) for f in reader.expect(entry.get("findings", []), list, "findings")]
    except (KeyError, TypeError, AttributeError):
        reader.fail(f"damaged: {MANIFEST_NAME} has invalid findings for {member}")
    decisions = reader.expect(entry.get("decisions", []), list, f"decisions for {member}")
    if not all(isinstance(d, str) for d in decisions):
        reader.fail(f"damaged: {MANIFEST_NAME} has invalid decisions for {member}")
    try:
        return Volume(
            voxels=voxels,
            ijk_to_lps=matrix,
            modality=reader.expect(entry.get("modality", ""), str, "modality"),
            units=reader.expect(entry.get("units", ""), str, "units"),
            name=reader.expect(entry.get("name", ""), str, "name"),
            provenance=reader.expect(entry.get("provenance", {}), dict, "volume provenance"),
            findings=findings,
            decisions=list(decisions),
        )
    except VolumeError as exc:
        reader.fail(f"damaged: volume {member} is not valid ({exc})")


def _color(reader: CaseReader, value: Any, what: str) -> tuple[float, float, float]:
    reader.expect(value, list, what)
    if len(value) != 3 or not all(
        isinstance(c, int | float) and not isinstance(c, bool) and 0 <= c <= 1 for c in value
    ):
        reader.fail(f"damaged: {MANIFEST_NAME} has an invalid {what} ({value!r:.80})")
    return (float(value[0]), float(value[1]), float(value[2]))


def _opacity(reader: CaseReader, value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        reader.fail(f"damaged: {MANIFEST_NAME} has an invalid opacity for segment {name!r}")
    return float(value)


def _segment(reader: CaseReader, data: Any, member: str) -> tuple[int, Segment]:
    reader.expect(data, dict, f"segment of {member}")
    label = reader.expect(data.get("label"), int, f"segment label in {member}")
    if not 1 <= label <= MAX_LABEL:
        reader.fail(f"damaged: {MANIFEST_NAME} has an invalid segment label {label} in {member}")
    name = reader.expect(data.get("name"), str, f"segment name in {member}")
    terminology = data.get("terminology")
    if terminology is not None and not (
        isinstance(terminology, dict) and all(isinstance(v, str) for v in terminology.values())
    ):
        reader.fail(f"damaged: {MANIFEST_NAME} has an invalid terminology for segment {name!r}")
    return label, Segment(
        name=name,
        color=_color(reader, data.get("color"), f"colour of segment {name!r}"),
        terminology=terminology,
        visible=reader.expect(data.get("visible", True), bool, f"visibility of segment {name!r}"),
        opacity=_opacity(reader, data.get("opacity", 1.0), name),
        provenance=reader.expect(data.get("provenance", {}), dict, f"provenance of segment {name!r}"),
    )


def read_segmentation(reader: CaseReader, entry: dict[str, Any], kinds: dict[str, str]) -> Segmentation:
    labels, member = reader.array(entry, "labels", 3, LABEL_DTYPES)
    matrix = reader.matrix(entry.get("ijk_to_lps"), f"ijk_to_lps for {member}")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        reader.fail(f"damaged: {MANIFEST_NAME} has a singular ijk_to_lps for {member}")
    reference = entry.get("reference_volume_id")
    if reference is not None and kinds.get(reference) != "volume":
        reader.fail(f"damaged: {member} refers to volume {reference!r:.80}, which is not in the case")
    segments: dict[int, Segment] = {}
    for data in reader.expect(entry.get("segments"), list, f"segment table of {member}"):
        label, segment = _segment(reader, data, member)
        if label in segments or any(s.name == segment.name for s in segments.values()):
            reader.fail(f"damaged: {member} repeats segment label {label} or name {segment.name!r}")
        segments[label] = segment
    present = np.flatnonzero(np.bincount(labels.ravel())) if labels.size else np.array([], dtype=np.int64)
    unnamed = [int(v) for v in present if v and v not in segments]
    if unnamed:
        reader.fail(f"damaged: {member} holds label {unnamed[0]}, which its segment table does not name")
    try:
        return Segmentation(
            labels,
            matrix,
            segments,
            name=reader.expect(entry.get("name", ""), str, "segmentation name"),
            reference_volume_id=reference,
            provenance=reader.expect(entry.get("provenance", {}), dict, "segmentation provenance"),
        )
    except SegmentationError as exc:
        reader.fail(f"damaged: segmentation {member} is not valid ({exc})")


def read_mesh(reader: CaseReader, entry: dict[str, Any], kinds: dict[str, str]) -> SurfaceMesh:
    vertices, member = reader.array(entry, "vertices", 2, frozenset({"<f8"}))
    faces, _ = reader.array(entry, "faces", 2, frozenset({"<i8"}))
    if not np.all(np.isfinite(vertices)):
        reader.fail(f"damaged: {member} holds vertices that are not finite numbers")
    segmentation_id = entry.get("segmentation_id")
    if segmentation_id is not None and kinds.get(segmentation_id) != "segmentation":
        reader.fail(
            f"damaged: mesh {entry['id']} refers to segmentation {segmentation_id!r:.80}, not in the case"
        )
    label = entry.get("segment_label")
    if label is not None:
        reader.expect(label, int, f"segment label of mesh {entry['id']}")
    try:
        return SurfaceMesh(
            vertices,
            faces,
            name=reader.expect(entry.get("name", ""), str, "mesh name"),
            color=_color(reader, entry.get("color"), f"colour of mesh {entry['id']}"),
            segment_label=label,
            segmentation_id=segmentation_id,
            provenance=reader.expect(entry.get("provenance", {}), dict, "mesh provenance"),
        )
    except MeshError as exc:
        reader.fail(f"damaged: mesh {entry['id']} is not valid ({exc})")


def read_plan(reader: CaseReader, entry: dict[str, Any], kinds: dict[str, str]) -> PlanObject:
    # References (a cut plane's segmentation) may dangle: the object stays usable and
    # says so when measured, as it would after the segmentation was removed in the scene.
    arrays = reader.expect(entry.get("arrays", {}), dict, f"array list for {entry['id']}")
    if arrays:
        reader.fail(f"damaged: planning object {entry['id']} lists arrays, which planning objects never have")
    try:
        return plan_from_dict({k: v for k, v in entry.items() if k not in ("id", "kind", "arrays")})
    except PlanError as exc:
        reader.fail(f"damaged: planning object {entry['id']} is not valid ({exc})")


READERS: dict[str, Reader] = {
    "volume": read_volume,
    "segmentation": read_segmentation,
    "mesh": read_mesh,
    "plan": read_plan,
}
