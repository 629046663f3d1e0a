"""The anatomy twin of a CT in one call: one-click segments and a surface mesh per segment.

The command line (`surgtwin build`) and the desktop app both call this, so they make the
same twin with the same parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from surgtwin.core.mesh import MeshOptions, extract_meshes
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.progress import Progress, ensure_progress
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.one_click import one_click_twin, to_segmentation
from surgtwin.core.volume import Volume


@dataclass
class Twin:
    segmentation: Segmentation
    meshes: list[SurfaceMesh]
    skipped: dict[str, str] = field(default_factory=dict)  # segment -> why it was not made
    timings_s: dict[str, float] = field(default_factory=dict)


def make_twin(
    volume: Volume,
    reference_volume_id: str | None = None,
    progress: Progress | None = None,
    mesh_options: MeshOptions | None = None,
) -> Twin:
    progress = ensure_progress(progress)
    started = time.perf_counter()
    result = one_click_twin(volume, progress)
    segmentation = to_segmentation(result, volume, reference_volume_id=reference_volume_id)
    segmented = time.perf_counter()
    meshes = mesh_segmentation(segmentation, progress, mesh_options)
    return Twin(
        segmentation,
        meshes,
        dict(result.skipped),
        {"segment": segmented - started, "mesh": time.perf_counter() - segmented},
    )


def mesh_segmentation(
    segmentation: Segmentation, progress: Progress | None = None, options: MeshOptions | None = None
) -> list[SurfaceMesh]:
    """One mesh per non-empty segment, in segment order."""
    progress = ensure_progress(progress)
    meshes = list(extract_meshes(segmentation, options=options, progress=progress).values())
    progress.check()
    return meshes
