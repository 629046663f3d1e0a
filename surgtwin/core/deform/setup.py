"""Setting a simulation up from a case: find a segment, mesh it to a budget, fix it where it
touches anchor segments, embed its display surface.

Shared by the command line (``surgtwin simulate deform``) and the desktop app's simulation
panel, so both build the same body from the same case. The masks are taken from the scene
first (:func:`find_segment`, cheap, on the caller's thread); :func:`build_segment_body` then
works on those copies only, so it may run on a worker thread while the scene is edited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from surgtwin.core.deform.embedding import Embedding
from surgtwin.core.deform.mesh import MM, HexMesh, cell_size_for_budget, hex_mesh_from_mask, nodes_touching
from surgtwin.core.deform.solver import DeformableBody, MaterialLike
from surgtwin.core.errors import SurgTwinError
from surgtwin.core.progress import Progress, ensure_progress


@dataclass(frozen=True)
class SegmentRef:
    """A segment of a case: where it lives and a copy of its voxel mask (k, j, i)."""

    name: str
    segmentation_id: str
    label: int
    mask: np.ndarray
    ijk_to_lps: np.ndarray


@dataclass
class SegmentBody:
    """A segment ready to simulate: its mesh, the body and the nodes its anchors hold."""

    mesh: HexMesh
    body: DeformableBody
    cell_mm: float
    fixed: np.ndarray  # (N,) bool
    anchored_by: dict[str, int]  # anchor segment name -> nodes it holds


def segment_names(scene: Any) -> list[str]:
    """Names of every segment in the case, sorted."""
    return sorted({s.name for seg in scene.segmentations.values() for s in seg.segments.values()})


def find_segment(scene: Any, name: str) -> SegmentRef:
    """The segment called ``name`` (its mask copied); SurgTwinError if none or empty."""
    for seg_id, segmentation in scene.segmentations.items():
        for label, segment in segmentation.segments.items():
            if segment.name == name:
                mask = segmentation.labels == label
                if not mask.any():
                    raise SurgTwinError(f"segment {name!r} is empty", code="empty_segment")
                affine = np.array(segmentation.ijk_to_lps, dtype=np.float64)
                return SegmentRef(name, seg_id, int(label), mask, affine)
    names = segment_names(scene)
    raise SurgTwinError(
        f"no segment named {name!r} in this case; segments: {', '.join(names) or 'none'}", code="no_segment"
    )


def surface_mesh_id(scene: Any, segmentation_id: str, label: int) -> str | None:
    """The id of the segment's surface mesh in the case (None if it has none)."""
    for mesh_id, surface in scene.meshes.items():
        if (
            surface.segmentation_id == segmentation_id
            and surface.segment_label == label
            and len(surface.faces)
        ):
            return str(mesh_id)
    return None


def build_segment_body(
    target: SegmentRef,
    tissue: MaterialLike,
    *,
    max_elements: int,
    anchors: Sequence[SegmentRef] = (),
    gravity: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
    progress: Progress | None = None,
    **body_options: Any,
) -> SegmentBody:
    """Mesh ``target`` at the smallest cell with at most ``max_elements`` elements and build the
    body; nodes within one cell of an anchor segment are fixed. An anchor that does not touch
    the target raises SurgTwinError (code ``not_touching``): a silently free organ would
    drift away under the first load."""
    progress = ensure_progress(progress)
    progress.start("sizing the simulation mesh", 3)
    cell_mm = cell_size_for_budget(target.mask, target.ijk_to_lps, max_elements)
    progress.advance()
    mesh = hex_mesh_from_mask(target.mask, target.ijk_to_lps, cell_mm)
    progress.advance()
    fixed = np.zeros(mesh.node_count, dtype=bool)
    held: dict[str, int] = {}
    for anchor in anchors:
        touching = nodes_touching(mesh, anchor.mask, anchor.ijk_to_lps, distance_mm=cell_mm)
        if not touching.any():
            raise SurgTwinError(
                f"segment {anchor.name!r} does not touch {target.name!r} (no node within {cell_mm:.1f} mm)",
                code="not_touching",
            )
        held[anchor.name] = int(touching.sum())
        fixed |= touching
    progress.check()
    body = DeformableBody(
        mesh, tissue, gravity=np.asarray(gravity, dtype=np.float64), fixed=fixed, **body_options
    )
    progress.advance()
    return SegmentBody(mesh, body, float(cell_mm), fixed, held)


def embed_surface(mesh: HexMesh, vertices_mm: np.ndarray) -> Embedding:
    """Tie a display surface (LPS mm) to the simulation mesh."""
    return Embedding.build(mesh, np.asarray(vertices_mm, dtype=np.float64) * MM)
