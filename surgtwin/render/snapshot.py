"""Off-screen pictures: a 3D view of a scene, or any RGB array, as numpy and PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL implementations)
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkIOImage import vtkPNGWriter
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkWindowToImageFilter

from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.colors import Color
from surgtwin.render.errors import RenderError
from surgtwin.render.scene_view import BACKGROUND, SceneRenderer


def capture_window(window: vtkRenderWindow) -> np.ndarray:
    """The window's current frame as (height, width, 3) uint8, row 0 at the top."""
    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    image = grab.GetOutput()
    width, height, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, 3)
    return np.ascontiguousarray(pixels[::-1])


def write_png(rgb: np.ndarray, path: Path | str) -> Path:
    """Write a (height, width, 3) uint8 array as PNG (folders are created)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise RenderError(f"a PNG needs a (height, width, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = vtkImageData()
    image.SetDimensions(rgb.shape[1], rgb.shape[0], 1)
    scalars = numpy_to_vtk(np.ascontiguousarray(rgb[::-1]).reshape(-1, 3), deep=True)
    image.GetPointData().SetScalars(scalars)
    writer = vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputData(image)
    writer.Write()
    if not path.is_file():
        raise RenderError(f"could not write {path}")
    return path


def snapshot_view(
    view: SceneRenderer,
    size: tuple[int, int] = (800, 600),
    camera: str | None = "anterior",
    path: Path | str | None = None,
    zoom: float = 1.0,
) -> np.ndarray:
    """Render ``view`` (its display settings included) in a temporary off-screen window."""
    width, height = (int(size[0]), int(size[1]))
    if width <= 0 or height <= 0:
        raise RenderError(f"a snapshot needs a positive size, got {size!r}")
    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(width, height)
    window.SetMultiSamples(0)
    window.AddRenderer(view.renderer)
    try:
        if camera is not None:
            view.set_camera(camera, zoom)
        window.Render()
        rgb = capture_window(window)
    finally:
        window.RemoveRenderer(view.renderer)
        window.Finalize()
    if path is not None:
        write_png(rgb, path)
    return rgb


def render_3d_snapshot(
    scene: Scene,
    size: tuple[int, int] = (800, 600),
    camera: str = "anterior",
    path: Path | str | None = None,
    *,
    zoom: float = 1.0,
    background: Color = BACKGROUND,
) -> np.ndarray:
    """The scene's meshes seen from ``camera`` as (height, width, 3) uint8 RGB; PNG at ``path``."""
    view = SceneRenderer(scene, background=background)
    try:
        return snapshot_view(view, size, camera, path, zoom)
    finally:
        view.close()
