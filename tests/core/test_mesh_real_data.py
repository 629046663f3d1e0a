"""Meshes of real label maps: the sample case's ground truth and the vmtk aorta."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import trimesh
from vtkmodules.vtkFiltersGeneral import vtkDistancePolyDataFilter
from vtkmodules.vtkIOGeometry import vtkSTLReader

from surgtwin.core.errors import CancelledError
from surgtwin.core.mesh import MeshOptions, check_mesh, extract_meshes, mesh_label_map
from surgtwin.core.mesh.nets import polydata_arrays, polydata_from_arrays
from surgtwin.core.progress import Progress
from surgtwin.core.segmentation.colors import default_color
from surgtwin.core.segmentation.model import Segment, Segmentation

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_dicom" / "ground_truth"
AORTA = REPO.parent / "shared" / "data" / "vmtk_aorta"


def affine_of(image: sitk.Image) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return affine


def sample_segmentation() -> Segmentation:
    image = sitk.ReadImage(str(SAMPLE / "labels.nii.gz"))
    names = json.loads((SAMPLE / "labels.json").read_text())
    segments = {int(k): Segment(name=v, color=default_color(v)) for k, v in names.items()}
    return Segmentation(sitk.GetArrayFromImage(image), affine_of(image), segments, name="ground truth")


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample_dicom/ground_truth is missing")
def test_sample_case_every_label_meshes_with_its_volume() -> None:
    seg = sample_segmentation()
    seen: list[tuple[str, int]] = []
    meshes = extract_meshes(seg, progress=Progress(lambda stage, done, total: seen.append((stage, done))))
    assert set(meshes) == set(seg.segments)
    assert seen[-1][1] == len(seg.segments) + 1
    lines = ["label                 label mL   mesh mL   diff %  triangles"]
    for label, mesh in meshes.items():
        quality = check_mesh(mesh.vertices, mesh.faces)
        assert quality.ok, (mesh.name, quality)
        assert trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).is_watertight
        assert mesh.name == seg.segments[label].name and mesh.color == seg.segments[label].color
        truth = seg.volume_ml(label)
        diff = 100 * (mesh.volume_ml() - truth) / truth
        lines.append(
            f"{mesh.name:20s} {truth:9.2f} {mesh.volume_ml():9.2f} {diff:+8.2f} {mesh.triangle_count:10d}"
        )
        # lung reaches the top slice: the cap where it is cut off is rounded by smoothing
        limit = 8.0 if mesh.name == "lung" else 3.0
        assert abs(diff) < limit, mesh.name
    print("\n" + "\n".join(lines))


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample_dicom/ground_truth is missing")
def test_meshing_can_be_cancelled() -> None:
    progress = Progress()
    progress.cancel()
    with pytest.raises(CancelledError):
        extract_meshes(sample_segmentation(), [5], progress=progress)


def read_stl(path: Path):
    reader = vtkSTLReader()
    reader.SetFileName(str(path))
    reader.Update()
    return reader.GetOutput()


@pytest.mark.skipif(not AORTA.is_dir(), reason="../shared/data/vmtk_aorta is missing")
def test_vmtk_aorta_against_its_reference_surface() -> None:
    levelset = sitk.ReadImage(str(AORTA / "aorta-final-levelset.mha"))
    inside = (sitk.GetArrayFromImage(levelset) < 0).astype(np.uint8)  # vmtk: negative inside
    affine = affine_of(levelset)
    mesh = mesh_label_map(inside, affine, options=MeshOptions(keep_largest_component=True))[1]
    assert check_mesh(mesh.vertices, mesh.faces).ok
    # vmtk wrote the reference in RAS (x and y negated from the image's LPS physical space)
    ref_vertices, ref_faces = polydata_arrays(read_stl(AORTA / "aorta-surface.stl"))
    ref_vertices = ref_vertices * np.array([-1.0, -1.0, 1.0])
    overlap = np.minimum(mesh.vertices.max(0), ref_vertices.max(0)) - np.maximum(
        mesh.vertices.min(0), ref_vertices.min(0)
    )
    assert (overlap > 0).all(), "reference surface does not overlap the image: wrong frame"
    distance = vtkDistancePolyDataFilter()
    distance.SetInputData(0, polydata_from_arrays(mesh.vertices, mesh.faces))
    distance.SetInputData(1, polydata_from_arrays(ref_vertices, ref_faces))
    distance.SignedDistanceOff()
    distance.ComputeSecondDistanceOn()
    distance.Update()
    from vtkmodules.util.numpy_support import vtk_to_numpy

    ours_to_ref = vtk_to_numpy(distance.GetOutput(0).GetPointData().GetArray("Distance"))
    ref_to_ours = vtk_to_numpy(distance.GetOutput(1).GetPointData().GetArray("Distance"))
    ref_volume = abs(trimesh.Trimesh(ref_vertices, ref_faces, process=False).volume)
    print(
        f"\naorta: ours->ref mean {ours_to_ref.mean():.3f} mm, p95 {np.percentile(ours_to_ref, 95):.3f} mm; "
        f"ref->ours mean {ref_to_ours.mean():.3f} mm, p95 {np.percentile(ref_to_ours, 95):.3f} mm; "
        f"volume {mesh.volume_ml():.2f} mL vs reference {ref_volume / 1000:.2f} mL"
    )
    assert ours_to_ref.mean() < 0.5 and ref_to_ours.mean() < 0.5
    assert np.percentile(ours_to_ref, 95) < 1.0 and np.percentile(ref_to_ours, 95) < 1.5
    assert mesh.volume_ml() * 1000 == pytest.approx(ref_volume, rel=0.03)


def test_cropped_ct_twin_meets_the_triangle_budget(shared_data: Path) -> None:
    """TotalSegmentator's aorta_report crop: its skin (887k extracted triangles, a thin
    shell on the full grid) reaches the budget and every mesh re-imports closed."""
    import time

    from surgtwin.core.importer import load_volume
    from surgtwin.core.segmentation.one_click import one_click_twin, to_segmentation

    volume, _ = load_volume(shared_data / "totalseg_example" / "aorta_report" / "ct_cropped.nii.gz")
    segmentation = to_segmentation(one_click_twin(volume), volume)
    started = time.perf_counter()
    meshes = extract_meshes(segmentation)
    seconds = time.perf_counter() - started
    budget = MeshOptions().triangle_budget
    assert budget is not None
    for mesh in meshes.values():
        record = mesh.provenance
        assert mesh.triangle_count <= budget and record["over_budget"] is False, mesh.name
        assert record["quality"]["ok"], mesh.name
        merged = trimesh.Trimesh(np.round(mesh.vertices.astype(np.float32), 6), mesh.faces)  # as STL
        assert merged.is_watertight, mesh.name
        assert record["shared_boundaries"] is (not record["unshared_because"])
    print(f"\naorta_report crop: meshes in {seconds:.1f} s")
    assert seconds < 30
