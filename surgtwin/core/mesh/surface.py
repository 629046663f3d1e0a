"""SurfaceMesh: a triangle surface in patient LPS millimetres."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgtwin.core.errors import MeshError
from surgtwin.core.segmentation.colors import Color


@dataclass
class SurfaceMesh:
    """``vertices`` (N, 3) float64 in LPS mm; ``faces`` (M, 3) int64, counter-clockwise seen
    from outside (normals point out of the structure)."""

    vertices: np.ndarray
    faces: np.ndarray
    name: str = ""
    color: Color = (0.8, 0.8, 0.8)
    segment_label: int | None = None  # the label it was made from, in its segmentation
    segmentation_id: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise MeshError("vertices must be an (N, 3) array")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise MeshError("faces must be an (M, 3) array of vertex indices")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise MeshError("faces refer to vertices that do not exist")

    @property
    def triangle_count(self) -> int:
        return int(len(self.faces))

    def area_mm2(self) -> float:
        tri = self.vertices[self.faces]
        return float(
            0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
        )

    def volume_ml(self) -> float:
        """Enclosed volume (divergence theorem); meaningful for closed, outward-oriented meshes."""
        tri = self.vertices[self.faces]
        signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
        return float(signed / 1000.0)
