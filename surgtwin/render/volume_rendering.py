"""Direct volume rendering of a core ``Volume`` in patient LPS, with named transfer functions.

The voxels go to VTK as a ``vtkImageData`` with the voxel spacing and no origin; the
volume's direction and origin become the ``vtkVolume``'s user matrix, which every VTK volume
mapper honours (GPU ray casting, and the CPU ray caster ``vtkSmartVolumeMapper`` falls back to
under software OpenGL). A mirrored grid (negative determinant) is flipped along k first, so the
matrix is a proper rotation and the ray caster's box faces keep their winding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL implementations)
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (registers the GPU volume mapper)
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction, vtkPlane
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkRenderingCore import (
    vtkColorTransferFunction,
    vtkRenderer,
    vtkVolume,
    vtkVolumeProperty,
)
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

from surgtwin.core.volume import Volume
from surgtwin.render.errors import RenderError
from surgtwin.render.scene_view import set_mapper_clipping

# (value, red, green, blue, opacity); value in HU, or a 0..1 fraction of the volume's
# 1st..99th percentile range when the preset is ``relative`` (MR has no absolute units).
Point = tuple[float, float, float, float, float]


@dataclass(frozen=True)
class VolumePreset:
    title: str
    points: tuple[Point, ...]
    relative: bool = False
    shade: bool = True


VOLUME_PRESETS: dict[str, VolumePreset] = {
    "ct_bone": VolumePreset(
        "CT bone",
        (
            (-1000.0, 0.0, 0.0, 0.0, 0.0),
            (150.0, 0.55, 0.25, 0.15, 0.0),
            (300.0, 0.90, 0.80, 0.55, 0.35),
            (700.0, 0.95, 0.92, 0.80, 0.75),
            (3000.0, 1.0, 1.0, 1.0, 0.85),
        ),
    ),
    "ct_soft_tissue": VolumePreset(
        "CT soft tissue",
        (
            (-1000.0, 0.0, 0.0, 0.0, 0.0),
            (-300.0, 0.0, 0.0, 0.0, 0.0),
            (-100.0, 0.85, 0.70, 0.40, 0.03),  # fat, faint
            (20.0, 0.75, 0.30, 0.25, 0.08),
            (60.0, 0.85, 0.40, 0.35, 0.25),  # muscle and organs
            (200.0, 0.95, 0.85, 0.75, 0.45),
            (1000.0, 1.0, 1.0, 0.95, 0.75),
        ),
    ),
    "ct_angio": VolumePreset(
        "CT angio (contrast vessels)",
        (
            (-1000.0, 0.0, 0.0, 0.0, 0.0),
            (120.0, 0.50, 0.0, 0.0, 0.0),
            (180.0, 0.85, 0.10, 0.08, 0.40),  # contrast-filled lumen
            (400.0, 1.0, 0.55, 0.45, 0.70),
            (800.0, 1.0, 0.95, 0.90, 0.80),  # bone stays visible, whiter
            (3000.0, 1.0, 1.0, 1.0, 0.85),
        ),
    ),
    "ct_lung": VolumePreset(
        "CT lung",
        (
            (-1024.0, 0.0, 0.0, 0.0, 0.0),
            (-950.0, 0.30, 0.50, 0.80, 0.0),
            (-800.0, 0.55, 0.70, 0.95, 0.05),  # parenchyma, faint
            (-500.0, 0.95, 0.75, 0.70, 0.25),  # vessels and airway walls in the lung
            (-350.0, 0.95, 0.80, 0.75, 0.0),  # nothing denser: the body wall would hide the lungs
            (3000.0, 0.0, 0.0, 0.0, 0.0),
        ),
    ),
    "mr_default": VolumePreset(
        "MR default",
        (
            (0.0, 0.0, 0.0, 0.0, 0.0),
            (0.15, 0.30, 0.25, 0.20, 0.0),
            (0.45, 0.75, 0.65, 0.55, 0.15),
            (1.0, 1.0, 1.0, 1.0, 0.60),
        ),
        relative=True,
    ),
}


def _preset(name: str) -> VolumePreset:
    try:
        return VOLUME_PRESETS[name]
    except KeyError:
        known = ", ".join(VOLUME_PRESETS)
        raise RenderError(f"unknown volume rendering preset {name!r} (presets: {known})") from None


def volume_to_image(volume: Volume) -> tuple[vtkImageData, vtkMatrix4x4]:
    """The voxels as image data (spacing only) and the user matrix placing it in LPS."""
    voxels = volume.voxels
    matrix = np.array(volume.ijk_to_lps, dtype=np.float64)
    spacing = volume.spacing
    if np.linalg.det(matrix[:3, :3]) < 0:  # mirrored: flip k so the placement is a rotation
        voxels = voxels[::-1]
        matrix[:3, 3] += matrix[:3, 2] * (voxels.shape[0] - 1)
        matrix[:3, 2] *= -1.0
    if voxels.dtype not in (np.int16, np.uint16, np.uint8, np.int8, np.float32):
        voxels = voxels.astype(np.float32)
    nk, nj, ni = voxels.shape
    image = vtkImageData()
    image.SetDimensions(ni, nj, nk)
    image.SetSpacing(*spacing)
    image.SetOrigin(0.0, 0.0, 0.0)
    # shared, not copied: numpy_to_vtk keeps a reference to the array (a CT can be 200 MB)
    scalars = numpy_to_vtk(np.ascontiguousarray(voxels).reshape(-1), deep=False)
    image.GetPointData().SetScalars(scalars)
    placement = np.eye(4)
    placement[:3, :3] = matrix[:3, :3] / spacing  # unit direction columns (i, j, k)
    placement[:3, 3] = matrix[:3, 3]
    user = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            user.SetElement(r, c, float(placement[r, c]))
    return image, user


def transfer_functions(
    preset: VolumePreset, value_range: tuple[float, float] = (0.0, 1.0)
) -> tuple[vtkColorTransferFunction, vtkPiecewiseFunction]:
    """Colour and opacity functions of a preset; ``value_range`` scales a relative preset."""
    low, high = value_range
    colors, opacity = vtkColorTransferFunction(), vtkPiecewiseFunction()
    for value, r, g, b, a in preset.points:
        x = low + value * (high - low) if preset.relative else value
        colors.AddRGBPoint(x, r, g, b)
        opacity.AddPoint(x, a)
    return colors, opacity


class VolumeRendering:
    """One ``vtkVolume`` of ``volume`` in ``renderer``; call :meth:`close` to take it out."""

    def __init__(self, volume: Volume, renderer: vtkRenderer, preset: str = "ct_bone") -> None:
        self.volume = volume
        self.renderer = renderer
        image, user = volume_to_image(volume)
        self._image = image
        sample = np.asarray(volume.voxels[::4, ::4, ::4], dtype=np.float64)
        self.value_range = (float(np.percentile(sample, 1)), float(np.percentile(sample, 99)))
        self.mapper = vtkSmartVolumeMapper()
        self.mapper.SetInputData(image)
        self.mapper.SetBlendModeToComposite()
        self.property = vtkVolumeProperty()
        self.property.SetInterpolationTypeToLinear()
        self.property.SetAmbient(0.25)
        self.property.SetDiffuse(0.75)
        self.property.SetSpecular(0.2)
        self.actor = vtkVolume()
        self.actor.SetMapper(self.mapper)
        self.actor.SetProperty(self.property)
        self.actor.SetUserMatrix(user)
        self.actor.PickableOff()  # picking is for the surfaces
        self.preset = ""
        self.set_preset(preset)
        renderer.AddVolume(self.actor)

    @property
    def visible(self) -> bool:
        return bool(self.actor.GetVisibility())

    def set_preset(self, name: str) -> None:
        preset = _preset(name)
        colors, opacity = transfer_functions(preset, self.value_range)
        self.property.SetColor(colors)
        self.property.SetScalarOpacity(opacity)
        self.property.SetShade(preset.shade)
        self.preset = name

    def set_visible(self, visible: bool) -> None:
        self.actor.SetVisibility(bool(visible))

    def set_clipping_plane(self, plane: vtkPlane | None) -> None:
        set_mapper_clipping(self.mapper, plane)

    def close(self) -> None:
        self.renderer.RemoveVolume(self.actor)
