"""Parameters of the segment-to-surface pipeline (recorded in every mesh's provenance)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from surgtwin.core.errors import MeshError

SmoothingMethod = Literal["windowed_sinc", "surface_nets", "none"]


@dataclass(frozen=True)
class MeshOptions:
    """How label maps become surfaces.

    ``smoothing="windowed_sinc"`` (default) keeps volumes within ~0.1 % on organs and
    2-4 mm vessels at their radius; ``"surface_nets"`` is VTK's constrained Laplacian
    smoothing (faster, shrinks thin vessels); ``"none"`` gives the voxel-face surface.
    A lower ``smoothing_passband`` smooths more (0.01-0.1 is useful).
    Decimation aims at ``triangle_budget`` faces per segment and/or removes
    ``reduction`` of them (the larger cut wins); None for both keeps every face.
    With a ``triangle_budget``, a segment whose full-grid surface would have many times
    more triangles than the budget is meshed on a grid up to ``max_coarsening`` times
    coarser (never a segment only a few voxels thick; see resolution.py); 1 keeps the
    full grid for every segment.
    """

    smoothing: SmoothingMethod = "windowed_sinc"
    smoothing_iterations: int = 20
    smoothing_passband: float = 0.1
    triangle_budget: int | None = 100_000
    reduction: float | None = None
    decimation_aggressiveness: float = 7.0
    max_decimation_volume_change_percent: float = 1.0
    min_component_mm3: float = 0.0
    keep_largest_component: bool = False
    fix_topology: bool = True  # make label voxel sets well-composed so surfaces are manifold
    max_coarsening: int = 4

    def __post_init__(self) -> None:
        if self.smoothing not in ("windowed_sinc", "surface_nets", "none"):
            raise MeshError(f"unknown smoothing {self.smoothing!r}: use windowed_sinc, surface_nets or none")
        if self.smoothing_iterations < 0:
            raise MeshError("smoothing iterations cannot be negative")
        if not 0.0 < self.smoothing_passband <= 2.0:
            raise MeshError("the smoothing pass band must lie in (0, 2]; 0.1 is a good start")
        if self.triangle_budget is not None and self.triangle_budget < 100:
            raise MeshError("a triangle budget under 100 per segment cannot keep a closed surface")
        if self.reduction is not None and not 0.0 <= self.reduction < 1.0:
            raise MeshError("the reduction is the fraction of faces to remove, from 0 up to (not incl.) 1")
        if self.max_coarsening < 1:
            raise MeshError("max_coarsening is a grid factor: 1 (full grid) or more")
        if self.min_component_mm3 < 0:
            raise MeshError("the minimum piece volume cannot be negative")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
