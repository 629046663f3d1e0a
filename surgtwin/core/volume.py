"""Volume: voxels that always travel with their geometry (ijk -> LPS millimetres).

Array layout follows SimpleITK/numpy: ``voxels[k, j, i]`` where ``i`` runs along a
row (DICOM column index), ``j`` down the rows, ``k`` across slices. ``ijk_to_lps``
maps the homogeneous index ``(i, j, k, 1)`` to patient LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from surgtwin.core.errors import VolumeError
from surgtwin.core.findings import Finding

# Tolerance for "the axes are perpendicular" (cosine of the angle between axes).
ORTHOGONALITY_TOLERANCE = 1e-4


@dataclass
class Volume:
    voxels: np.ndarray
    ijk_to_lps: np.ndarray
    modality: str = ""
    units: str = ""  # "HU" for CT in Hounsfield units; "" when the scanner's units are arbitrary
    name: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)  # e.g. resampling done on import

    def __post_init__(self) -> None:
        self.ijk_to_lps = np.asarray(self.ijk_to_lps, dtype=np.float64)
        if self.voxels.ndim != 3:
            raise VolumeError(f"a volume needs 3 dimensions, got shape {self.voxels.shape}")
        if self.ijk_to_lps.shape != (4, 4):
            raise VolumeError("ijk_to_lps must be a 4x4 matrix")
        if abs(np.linalg.det(self.ijk_to_lps[:3, :3])) < 1e-12:
            raise VolumeError("ijk_to_lps is singular: the voxel axes do not span 3D space")

    # --- geometry -------------------------------------------------------------
    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        k, j, i = self.voxels.shape
        return (i, j, k)

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k in millimetres."""
        return np.linalg.norm(self.ijk_to_lps[:3, :3], axis=0)

    @property
    def origin(self) -> np.ndarray:
        """LPS position (mm) of the centre of voxel (0, 0, 0)."""
        return self.ijk_to_lps[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """Unit axis vectors as columns (i, j, k), in LPS."""
        return self.ijk_to_lps[:3, :3] / self.spacing

    @property
    def is_orthogonal(self) -> bool:
        d = self.direction
        gram = d.T @ d
        return bool(np.all(np.abs(gram - np.eye(3)) < ORTHOGONALITY_TOLERANCE))

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Map (N, 3) voxel indices (i, j, k) to (N, 3) LPS millimetres."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return ijk @ self.ijk_to_lps[:3, :3].T + self.ijk_to_lps[:3, 3]

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        lps = np.atleast_2d(np.asarray(lps, dtype=np.float64))
        inv = np.linalg.inv(self.ijk_to_lps)
        return lps @ inv[:3, :3].T + inv[:3, 3]

    @property
    def nbytes(self) -> int:
        return int(self.voxels.nbytes)

    # --- SimpleITK adapters ---------------------------------------------------
    def to_sitk(self) -> sitk.Image:
        if not self.is_orthogonal:
            raise VolumeError(
                "this volume's voxel grid is sheared (e.g. gantry tilt kept as acquired); "
                "resample it onto a regular grid before writing it as an image file"
            )
        image = sitk.GetImageFromArray(np.ascontiguousarray(self.voxels))
        image.SetSpacing([float(s) for s in self.spacing])
        image.SetOrigin([float(o) for o in self.origin])
        image.SetDirection([float(x) for x in self.direction.flatten()])
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image, **kwargs: Any) -> Volume:
        if image.GetDimension() != 3:
            raise VolumeError(f"expected a 3D image, got {image.GetDimension()}D")
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise VolumeError("colour/vector images are not volumes surgtwin can plan on")
        spacing = np.array(image.GetSpacing())
        direction = np.array(image.GetDirection()).reshape(3, 3)
        affine = np.eye(4)
        affine[:3, :3] = direction * spacing
        affine[:3, 3] = image.GetOrigin()
        return cls(voxels=sitk.GetArrayFromImage(image), ijk_to_lps=affine, **kwargs)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (no voxels)."""
        finite = self.voxels[np.isfinite(self.voxels)] if self.voxels.dtype.kind == "f" else self.voxels
        return {
            "name": self.name,
            "modality": self.modality,
            "units": self.units,
            "dimensions": list(self.shape_ijk),
            "spacing_mm": [round(float(s), 6) for s in self.spacing],
            "origin_lps_mm": [round(float(o), 4) for o in self.origin],
            "direction": [[round(float(x), 6) for x in row] for row in self.direction],
            "dtype": str(self.voxels.dtype),
            "value_range": [float(finite.min()), float(finite.max())] if finite.size else None,
            "findings": [f.to_dict() for f in self.findings],
            "decisions": list(self.decisions),
        }
