"""Exports of a case's segments: mesh formats for printers, VR and other tools, and label maps.

``export(format, out_dir, segmentation, meshes, volume, segments)`` is the one entry point;
each format lives in its own module. Every file is written atomically (temp + rename),
and all arguments are checked before the first file is written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from surgtwin.core.errors import MeshError, SegmentationError, SurgTwinError
from surgtwin.core.export.common import check_meshes, write_atomic
from surgtwin.core.export.dicom_seg import seg_bytes
from surgtwin.core.export.gltf import write_glb
from surgtwin.core.export.nifti import write_nifti
from surgtwin.core.export.obj import write_obj
from surgtwin.core.export.ply import write_ply
from surgtwin.core.export.stl import write_stl
from surgtwin.core.export.threemf import write_3mf
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

MeshWriter = Callable[[list[SurfaceMesh], Path], list[Path]]
MESH_WRITERS: dict[str, MeshWriter] = {
    "stl": write_stl,
    "obj": write_obj,
    "ply": write_ply,
    "glb": write_glb,
    "3mf": write_3mf,
}
LABEL_FORMATS = ("seg", "nifti")
FORMATS = (*MESH_WRITERS, *LABEL_FORMATS)
_ALIASES = {"gltf": "glb", "dicom-seg": "seg", "dcm": "seg", "nii": "nifti", "nii.gz": "nifti"}

__all__ = ["FORMATS", "export"]


def export(
    format: str,
    out_dir: Path | str,
    segmentation: Segmentation | None,
    meshes: list[SurfaceMesh],
    volume: Volume | None,
    segments: list[str] | None = None,
) -> list[Path]:
    """Write the chosen segments (all when ``segments`` is None) in ``format``; return the files."""
    fmt = _ALIASES.get(format.lower().lstrip("."), format.lower().lstrip("."))
    if fmt not in FORMATS:
        raise SurgTwinError(
            f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}", code="unknown_format"
        )
    wanted = list(dict.fromkeys(segments)) if segments is not None else None
    if wanted is not None and not wanted:
        raise SurgTwinError("no segments were named to export", code="no_segments")
    out = Path(out_dir)
    if fmt in MESH_WRITERS:
        chosen = _choose_meshes(meshes, wanted, segmentation)
        _prepare(out)
        return MESH_WRITERS[fmt](chosen, out)
    labels = _choose_labels(segmentation, wanted)
    assert segmentation is not None
    if fmt == "seg":
        data = seg_bytes(segmentation, volume, labels)  # all checks happen before anything is written
        _prepare(out)
        return [write_atomic(out / "segmentation.dcm", data)]
    _prepare(out)
    return write_nifti(segmentation, labels, out)


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SurgTwinError(f"{out} exists and is not a folder; choose an output folder", code="bad_output")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SurgTwinError(
            f"cannot create the output folder {out} ({exc.strerror})", code="bad_output"
        ) from exc


def _choose_meshes(
    meshes: list[SurfaceMesh], wanted: list[str] | None, segmentation: Segmentation | None
) -> list[SurfaceMesh]:
    by_name: dict[str, SurfaceMesh] = {}
    for mesh in meshes:
        if mesh.name in by_name:
            raise MeshError(f"two meshes are named {mesh.name!r}; mesh names must be unique to export")
        by_name[mesh.name] = mesh
    if wanted is None:
        chosen = list(meshes)
    else:
        missing = [name for name in wanted if name not in by_name]
        if missing:
            known = ", ".join(by_name) or "none"
            hint = ""
            if segmentation is not None and all(
                any(s.name == name for s in segmentation.segments.values()) for name in missing
            ):
                hint = " (the segments exist but have no mesh yet: build the meshes first)"
            raise MeshError(f"no mesh for segment(s) {', '.join(missing)}{hint}; meshes: {known}")
        chosen = [by_name[name] for name in wanted]
    check_meshes(chosen)
    return chosen


def _choose_labels(segmentation: Segmentation | None, wanted: list[str] | None) -> list[int]:
    if segmentation is None:
        raise SegmentationError("nothing to export: the case has no segmentation")
    if not segmentation.segments:
        raise SegmentationError("nothing to export: the segmentation has no segments")
    if wanted is None:
        return sorted(segmentation.segments)
    return [segmentation.label_of(name) for name in wanted]
