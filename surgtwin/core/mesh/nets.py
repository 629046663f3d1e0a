"""Multi-label Surface Nets (VTK) on a label map, and the numpy <-> VTK adapters it needs.

One run of ``vtkSurfaceNets3D`` over all labels makes one mesh in which every face
separates two labels (``BoundaryLabels``); a face between two touching segments is
therefore the *same* face, with the same vertices, in both segments' surfaces.
"""

from __future__ import annotations

import logging
from functools import cache

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkPoints, vtkSMPTools
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D

log = logging.getLogger(__name__)


@cache
def use_threads() -> str:
    """The SMP backend VTK's filters run on: STDThread (all cores), chosen once for the process
    by ``VTK_SMP_BACKEND_IN_USE`` in surgtwin/__init__.py. Never switched here: this runs on
    worker threads, and switching the backend under another thread's SMP work corrupts it."""
    backend = str(vtkSMPTools().GetBackend())
    if backend != "STDThread":
        log.info("VTK's SMP backend is %s; meshing may run on one core", backend)
    return backend


def set_sequential(sequential: bool) -> str:
    """Benchmarks only: switch VTK between its sequential and threaded backends."""
    vtkSMPTools().SetBackend("Sequential" if sequential else "STDThread")
    return str(vtkSMPTools().GetBackend())


def image_from_labels(padded: np.ndarray, spacing: np.ndarray) -> vtkImageData:
    """A vtkImageData over ``padded[k, j, i]`` whose point (0, 0, 0) is the *unpadded* voxel
    (-1, -1, -1), so output coordinates are ``ijk * spacing`` of the original grid."""
    image = vtkImageData()
    image.SetDimensions(padded.shape[2], padded.shape[1], padded.shape[0])
    image.SetSpacing(*(float(s) for s in spacing))
    image.SetOrigin(*(-float(s) for s in spacing))
    scalars = numpy_to_vtk(np.ascontiguousarray(padded).ravel(), deep=False)
    scalars.SetName("labels")
    image.GetPointData().SetScalars(scalars)
    image._keep_alive = padded  # type: ignore[attr-defined]  # VTK borrows the buffer
    return image


def surface_nets(
    padded: np.ndarray,
    spacing: np.ndarray,
    values: list[int],
    constrained_iterations: int = 0,
) -> vtkPolyData:
    """Triangles between all ``values`` (and background) of a zero-bordered label map.

    ``constrained_iterations`` > 0 runs Surface Nets' own constrained smoothing
    (kept for comparison: it shrinks 2-4 mm vessels by 20-80 %, see docs/meshes.md).
    """
    use_threads()
    nets = vtkSurfaceNets3D()
    nets.SetInputData(image_from_labels(padded, spacing))
    nets.SetOutputMeshTypeToTriangles()
    nets.SetNumberOfLabels(len(values))
    for n, value in enumerate(values):
        nets.SetLabel(n, float(value))
    nets.SetBackgroundLabel(0)
    nets.SetSmoothing(constrained_iterations > 0)
    if constrained_iterations > 0:
        nets.SetNumberOfIterations(constrained_iterations)
        nets.SetConstraintStrategyToConstraintBox()
        nets.SetConstraintScale(0.5)
    nets.Update()
    return nets.GetOutput()


def polydata_arrays(poly: vtkPolyData) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, triangles) of a triangle-only vtkPolyData, copied into numpy."""
    points = poly.GetPoints()
    vertices = vtk_to_numpy(points.GetData()).astype(np.float64) if points is not None else np.zeros((0, 3))
    connectivity = vtk_to_numpy(poly.GetPolys().GetConnectivityArray())
    return vertices, connectivity.astype(np.int64).reshape(-1, 3)


def boundary_labels(poly: vtkPolyData) -> np.ndarray:
    """(M, 2) labels on either side of each face; the face's normal points out of column 0."""
    array = poly.GetCellData().GetArray("BoundaryLabels")
    return vtk_to_numpy(array).astype(np.int64).reshape(-1, 2)


def polydata_from_arrays(vertices: np.ndarray, faces: np.ndarray) -> vtkPolyData:
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(vertices, dtype=np.float64), deep=True))
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(
        numpy_to_vtkIdTypeArray(offsets, deep=True),
        numpy_to_vtkIdTypeArray(np.ascontiguousarray(faces, dtype=np.int64).ravel(), deep=True),
    )
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    return poly
