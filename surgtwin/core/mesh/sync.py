"""Segment meshes that follow their labels: after a label edit, re-mesh the segments it touched.

Why this is not a command: a segment's mesh is derived data, a deterministic function of
its labels and of the meshing options recorded in its provenance. The user's edit is the
one command (one undo step); undo, redo, a session peer or a replayed rehearsal reproduce
the labels, and each replica re-derives the mesh from them. A re-mesh command would add a
machine-made undo step, clear the redo stack after an undo and ship mesh arrays to peers
that can compute them.

The three steps, so the slow one can run off the GUI thread:

- :meth:`MeshSync.snapshot` (GUI thread) copies the label map, tagged with the
  segmentation's *revision* (a counter of its "changed" events);
- :func:`rebuild_meshes` (any thread, pure: it reads only the snapshot) finds the labels
  whose voxels differ from those the meshes were last made from and re-meshes only those;
- :meth:`MeshSync.apply` (GUI thread) swaps the new geometry into the existing mesh
  objects (same ids: views, selections and plan references keep pointing at them) and
  emits "changed", unless the labels changed again since the snapshot: such a result is
  stale and dropped (the caller snapshots again).

What changed is found by comparing with a reference copy of the labels the meshes were
made from, so it is exact whatever made the change (a tool, undo, redo, a peer, a script),
at the cost of one label-map copy per segmentation followed.

Only segments that already have a mesh are followed: painting a new segment makes no
mesh until the user asks for one. A meshed segment whose voxels are all erased keeps its
mesh object with empty geometry (no vertices); undo brings the surface back.

Speed: each changed segment is meshed on its bounding box plus a margin, not on the whole
label map, so the mesher's whole-map passes (boxes, voxel counts, size estimates) shrink
with the segment. The result is the same surface: the mesher crops to the box itself.
Re-meshing only the edited region and stitching it in would leave seams after smoothing
and decimation, so the whole segment is re-meshed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgtwin.core.errors import SurgTwinError
from surgtwin.core.mesh.extract import mesh_label_map
from surgtwin.core.mesh.options import MeshOptions
from surgtwin.core.mesh.resolution import bounding_boxes
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.progress import Progress, ensure_progress
from surgtwin.core.segmentation.model import Segmentation

log = logging.getLogger(__name__)

# Voxels kept around a segment's box: the mesher pads by one itself; two more keep the
# crop from ever clipping a surface whatever the grid's orientation.
BOX_MARGIN_VOXELS = 2

Box = tuple[slice, slice, slice]


# --- which meshes follow which segment ------------------------------------------
def followed_meshes(scene: Any, segmentation_id: str) -> dict[str, int]:
    """Mesh id -> label of the meshes made from segments of ``segmentation_id``."""
    return {
        mesh_id: int(mesh.segment_label)
        for mesh_id, mesh in scene.meshes.items()
        if mesh.segmentation_id == segmentation_id and mesh.segment_label is not None
    }


def mesh_options_of(mesh: SurfaceMesh) -> MeshOptions:
    """The options the mesh was made with (its provenance), so a rebuild looks the same."""
    recorded = mesh.provenance.get("options")
    if isinstance(recorded, dict):
        try:
            return MeshOptions(**recorded)
        except (TypeError, SurgTwinError):  # written by another version: fall back
            log.info("mesh %r: recorded options not usable; rebuilding with defaults", mesh.name)
    return MeshOptions()


def changed_labels(before: np.ndarray | None, after: np.ndarray) -> set[int] | None:
    """Labels (not 0) that gained or lost voxels between two label maps; None when they
    cannot be compared (no reference, another grid): then every label may have changed."""
    if before is None or before.shape != after.shape:
        return None
    differ = before != after
    if not differ.any():
        return set()
    values = np.union1d(np.unique(before[differ]), np.unique(after[differ]))
    return {int(v) for v in values if v}


def segment_box(labels: np.ndarray, values: Iterable[int], margin: int = BOX_MARGIN_VOXELS) -> Box | None:
    """The (k, j, i) box holding every voxel of ``values``, grown by ``margin``; None if empty."""
    boxes = bounding_boxes(labels)
    found = [box for v in values if 0 < v <= len(boxes) and (box := boxes[v - 1]) is not None]
    if not found:
        return None
    lo = np.min([[s.start for s in box] for box in found], axis=0) - margin
    hi = np.max([[s.stop for s in box] for box in found], axis=0) + margin
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, labels.shape)
    return (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))


def shifted_affine(ijk_to_lps: np.ndarray, box: Box) -> np.ndarray:
    """ijk_to_lps of the sub-grid starting at ``box`` (k, j, i) of the full grid."""
    affine = np.array(ijk_to_lps, dtype=np.float64)
    start_ijk = np.array([box[2].start, box[1].start, box[0].start], dtype=np.float64)
    affine[:3, 3] = affine[:3, :3] @ start_ijk + affine[:3, 3]
    return affine


def empty_mesh() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 3), dtype=np.float64), np.zeros((0, 3), dtype=np.int64)


def mesh_segments(
    labels: np.ndarray,
    ijk_to_lps: np.ndarray,
    values: list[int],
    options: MeshOptions,
    progress: Progress | None = None,
    *,
    whole: bool = False,
) -> tuple[dict[int, SurfaceMesh], Box | None]:
    """Meshes of ``values`` (those with voxels) from the full label map, meshed on their
    bounding box (``whole=True``: on the whole map, for comparison). Also returns the box."""
    if whole:
        return mesh_label_map(labels, ijk_to_lps, values, options, progress), None
    box = segment_box(labels, values)
    if box is None:
        return {}, None
    crop = np.ascontiguousarray(labels[box])
    return mesh_label_map(crop, shifted_affine(ijk_to_lps, box), values, options, progress), box


# --- snapshot -> rebuild -> apply -------------------------------------------------
@dataclass(frozen=True)
class LabelSnapshot:
    """A segmentation's labels at one revision, with what its meshes need to be rebuilt."""

    segmentation_id: str
    revision: int
    labels: np.ndarray  # a private copy: the GUI may go on editing the live one
    ijk_to_lps: np.ndarray
    reference: np.ndarray | None  # the labels the meshes were last made from (None: unknown)
    followed: dict[str, int]  # mesh id -> label
    options: dict[str, MeshOptions]  # mesh id -> the options it was made with
    only: frozenset[int] | None = None  # rebuild just these labels (None: whatever changed)


@dataclass
class RebuiltMeshes:
    """New geometry for some of a segmentation's meshes, made from ``labels`` at ``revision``."""

    segmentation_id: str
    revision: int
    labels: np.ndarray
    meshes: dict[str, SurfaceMesh] = field(default_factory=dict)  # mesh id -> new geometry
    changed: set[int] = field(default_factory=set)  # the labels that were re-meshed
    seconds: float = 0.0


def rebuild_meshes(snapshot: LabelSnapshot, progress: Progress | None = None) -> RebuiltMeshes:
    """Re-mesh the followed segments whose voxels changed since the reference (pure; any thread)."""
    started = time.perf_counter()
    progress = ensure_progress(progress)
    changed = changed_labels(snapshot.reference, snapshot.labels)
    if changed is None:
        changed = set(snapshot.followed.values())
    if snapshot.only is not None:
        changed = set(snapshot.only)
    result = RebuiltMeshes(snapshot.segmentation_id, snapshot.revision, snapshot.labels)
    # Labels with the same options are meshed in one run, so their touching faces stay shared.
    groups: dict[MeshOptions, list[str]] = {}
    for mesh_id, label in snapshot.followed.items():
        if label in changed:
            groups.setdefault(snapshot.options[mesh_id], []).append(mesh_id)
    for options, mesh_ids in groups.items():
        progress.check()
        values = sorted({snapshot.followed[m] for m in mesh_ids})
        made, box = mesh_segments(snapshot.labels, snapshot.ijk_to_lps, values, options, progress)
        for mesh_id in mesh_ids:
            label = snapshot.followed[mesh_id]
            mesh = made.get(label)
            if mesh is None:  # every voxel erased: an empty surface, not an error
                vertices, faces = empty_mesh()
                record = {"empty": True, "options": options.as_dict()}  # kept for the next rebuild
                mesh = SurfaceMesh(vertices, faces, segment_label=label, provenance=record)
            mesh.provenance["rebuilt_after_label_edit"] = {
                "revision": snapshot.revision,
                "box_kji": None if box is None else [[s.start, s.stop] for s in box],
            }
            result.meshes[mesh_id] = mesh
        result.changed.update(values)
    result.seconds = time.perf_counter() - started
    return result


def apply_rebuilt_meshes(scene: Any, meshes: dict[str, SurfaceMesh]) -> list[str]:
    """Put new geometry into the existing mesh objects (ids, names, colours and links kept)
    and emit "changed" for each; meshes no longer in the scene are skipped."""
    replaced: list[str] = []
    for mesh_id, new in meshes.items():
        if mesh_id not in scene or not isinstance(scene.get(mesh_id), SurfaceMesh):
            continue
        mesh: SurfaceMesh = scene.get(mesh_id)
        mesh.vertices, mesh.faces = new.vertices, new.faces
        mesh.provenance = new.provenance
        scene.notify_changed(mesh_id)
        replaced.append(mesh_id)
    return replaced


def rebuild_segment_meshes(
    scene: Any,
    segmentation_id: str,
    labels: Iterable[int] | None = None,
    options: MeshOptions | None = None,
) -> dict[str, SurfaceMesh]:
    """New geometry (not applied) for the meshes of ``labels`` (default: all followed) of a
    segmentation, from its current labels; ``options`` overrides the recorded ones."""
    segmentation: Segmentation = scene.get(segmentation_id)
    followed = followed_meshes(scene, segmentation_id)
    wanted = set(followed.values()) if labels is None else {int(v) for v in labels}
    followed = {m: v for m, v in followed.items() if v in wanted}
    snapshot = LabelSnapshot(
        segmentation_id,
        0,
        segmentation.labels,
        segmentation.ijk_to_lps,
        None,
        followed,
        {m: options or mesh_options_of(scene.get(m)) for m in followed},
        frozenset(wanted),
    )
    return rebuild_meshes(snapshot).meshes


class MeshSync:
    """Follows one scene: counts each segmentation's revisions, keeps the reference labels
    its meshes were made from, takes snapshots and applies results that are still current."""

    def __init__(self, scene: Any) -> None:
        self.scene = scene
        self._revisions: dict[str, int] = {}
        self._references: dict[str, np.ndarray] = {}
        # Meshes present now were made from the labels present now (a twin, a loaded case).
        for segmentation_id in scene.segmentations:
            self._remember(segmentation_id)
        self._unsubscribe: Callable[[], None] | None = scene.subscribe(self._on_event)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def revision(self, segmentation_id: str) -> int:
        return self._revisions.get(segmentation_id, 0)

    def follows(self, segmentation_id: str) -> bool:
        """True when the segmentation is in the scene and has meshes to keep up to date."""
        return segmentation_id in self.scene.segmentations and bool(
            followed_meshes(self.scene, segmentation_id)
        )

    def snapshot(self, segmentation_id: str) -> LabelSnapshot | None:
        """A copy of the labels now (GUI thread), or None when there is nothing to follow."""
        if not self.follows(segmentation_id):
            return None
        segmentation: Segmentation = self.scene.get(segmentation_id)
        followed = followed_meshes(self.scene, segmentation_id)
        return LabelSnapshot(
            segmentation_id,
            self.revision(segmentation_id),
            segmentation.labels.copy(),
            segmentation.ijk_to_lps.copy(),
            self._references.get(segmentation_id),
            followed,
            {m: mesh_options_of(self.scene.get(m)) for m in followed},
        )

    def is_current(self, rebuilt: RebuiltMeshes) -> bool:
        """True when the segmentation's labels are still those the result was made from."""
        segmentation_id = rebuilt.segmentation_id
        if segmentation_id not in self.scene.segmentations:
            return False
        if self.revision(segmentation_id) == rebuilt.revision:
            return True
        # Revisions count every change (names, colours too): compare the voxels themselves.
        labels = self.scene.get(segmentation_id).labels
        return bool(labels.shape == rebuilt.labels.shape and np.array_equal(labels, rebuilt.labels))

    def apply(self, rebuilt: RebuiltMeshes) -> list[str] | None:
        """Apply a still-current result (the mesh ids replaced), or drop a stale one (None)."""
        if not self.is_current(rebuilt):
            log.debug("dropping stale meshes of %s (revision %d)", rebuilt.segmentation_id, rebuilt.revision)
            return None
        self._references[rebuilt.segmentation_id] = rebuilt.labels
        return apply_rebuilt_meshes(self.scene, rebuilt.meshes)

    def _remember(self, segmentation_id: str) -> None:
        self._references[segmentation_id] = self.scene.get(segmentation_id).labels.copy()

    def _on_event(self, event: Any) -> None:
        oid = event.object_id
        if event.kind == "removed":
            self._references.pop(oid, None)  # revisions go on counting: undo may bring it back
        elif oid is not None and oid in self.scene.segmentations:
            self._revisions[oid] = self.revision(oid) + 1
            if event.kind == "added":
                self._remember(oid)
