"""Measurements against analytic values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import trimesh

from surgtwin.core.errors import SegmentationError
from surgtwin.core.measure import (
    distance_between_points,
    distance_to_surface,
    intensity_statistics,
    is_closed,
    measure_case,
    segment_measurements,
)
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

RADIUS = 20.0
CENTRE = np.array([10.0, -20.0, 30.0])


@pytest.fixture(scope="module")
def sphere_mesh() -> SurfaceMesh:
    ball = trimesh.creation.icosphere(subdivisions=5, radius=RADIUS)
    return SurfaceMesh(ball.vertices + CENTRE, ball.faces, name="tumour", segment_label=1)


@pytest.fixture(scope="module")
def case() -> tuple[Volume, Segmentation]:
    """A 0.5 mm grid with a voxel ball of radius 20 mm (label 1, 40 HU) and a ramp cube (label 2)."""
    spacing = 0.5
    n = 100
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = CENTRE - spacing * (n - 1) / 2  # ball centred on CENTRE
    k, j, i = np.indices((n, n, n))
    lps = np.stack([i, j, k], axis=-1) * spacing + affine[:3, 3]
    inside = np.linalg.norm(lps - CENTRE, axis=-1) <= RADIUS
    labels = np.zeros((n, n, n), np.uint8)
    labels[inside] = 1
    voxels = np.full((n, n, n), -1000, np.int16)
    voxels[inside] = 40
    labels[:10, :10, :10] = 2  # 1000 voxels, values 0..999
    voxels[:10, :10, :10] = np.arange(1000).reshape(10, 10, 10)
    volume = Volume(voxels, affine, modality="CT", units="HU", name="phantom")
    segmentation = Segmentation(labels, affine.copy())
    segmentation.add_segment("tumour")
    segmentation.add_segment("ramp")
    return volume, segmentation


def test_voxel_volume_and_hu_of_a_constant_region(case: tuple[Volume, Segmentation]) -> None:
    volume, segmentation = case
    (tumour,) = segment_measurements(segmentation, volume, segments=["tumour"])
    assert tumour["volume_ml"] == pytest.approx(4 / 3 * math.pi * RADIUS**3 / 1000, rel=0.01)
    stats = tumour["intensity"]
    assert stats["units"] == "HU"
    assert (
        stats["mean"] == stats["median"] == stats["min"] == stats["max"] == stats["p5"] == stats["p95"] == 40
    )
    assert stats["std"] == 0
    assert tumour["mesh"] is None


def test_intensity_statistics_of_a_ramp(case: tuple[Volume, Segmentation]) -> None:
    volume, segmentation = case
    stats = intensity_statistics(volume, segmentation.mask(2))
    assert stats["voxel_count"] == 1000
    assert (stats["min"], stats["max"], stats["mean"], stats["median"]) == (0, 999, 499.5, 499.5)
    assert stats["p5"] == pytest.approx(49.95) and stats["p95"] == pytest.approx(949.05)
    assert stats["std"] == pytest.approx(math.sqrt((1000**2 - 1) / 12))
    empty = intensity_statistics(volume, np.zeros_like(segmentation.labels, dtype=bool))
    assert empty["voxel_count"] == 0 and empty["mean"] is None


def test_mesh_volume_and_area_of_a_sphere(
    sphere_mesh: SurfaceMesh, case: tuple[Volume, Segmentation]
) -> None:
    volume, segmentation = case
    (tumour,) = segment_measurements(segmentation, volume, [sphere_mesh], segments=["tumour"])
    mesh = tumour["mesh"]
    assert mesh["closed"] is True
    assert mesh["volume_ml"] == pytest.approx(4 / 3 * math.pi * RADIUS**3 / 1000, rel=0.002)
    assert mesh["surface_area_mm2"] == pytest.approx(4 * math.pi * RADIUS**2, rel=0.002)
    assert mesh["volume_ml"] == pytest.approx(tumour["volume_ml"], rel=0.01)


def test_open_mesh_has_no_volume(sphere_mesh: SurfaceMesh) -> None:
    opened = SurfaceMesh(sphere_mesh.vertices, sphere_mesh.faces[1:], name="open")
    assert not is_closed(opened)
    flipped = SurfaceMesh(
        sphere_mesh.vertices, np.vstack([sphere_mesh.faces[:1, ::-1], sphere_mesh.faces[1:]])
    )
    assert not is_closed(flipped)  # inconsistently oriented


def test_distance_between_points() -> None:
    result = distance_between_points([1, 2, 3], [4, 6, 15])
    assert result["distance_mm"] == 13.0
    with pytest.raises(SegmentationError, match="three finite"):
        distance_between_points([1, 2], [0, 0, 0])
    with pytest.raises(SegmentationError, match="three finite"):
        distance_between_points([1, 2, float("nan")], [0, 0, 0])


@pytest.mark.parametrize("offset", [0.0, 5.0, 19.0, 21.0, 35.0, 100.0])
def test_signed_distance_to_a_sphere(sphere_mesh: SurfaceMesh, offset: float) -> None:
    direction = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    result = distance_to_surface(CENTRE + offset * direction, sphere_mesh)
    assert result["distance_mm"] == pytest.approx(
        offset - RADIUS, abs=0.05
    )  # icosphere sits inside by < 0.05
    assert result["inside"] == (offset < RADIUS)
    closest = np.array(result["closest_point_lps_mm"])
    assert np.linalg.norm(closest - CENTRE) == pytest.approx(RADIUS, abs=0.05)


def test_signed_distance_random_points(sphere_mesh: SurfaceMesh) -> None:
    points = np.random.default_rng(3).normal(size=(30, 3)) * 25 + CENTRE
    got = [distance_to_surface(p, sphere_mesh)["distance_mm"] for p in points]
    expected = np.linalg.norm(points - CENTRE, axis=1) - RADIUS
    assert np.allclose(got, expected, atol=0.05)


def test_measure_case_is_json_ready(case: tuple[Volume, Segmentation], sphere_mesh: SurfaceMesh) -> None:
    volume, segmentation = case
    report = json.loads(json.dumps(measure_case(segmentation, volume, [sphere_mesh])))
    assert report["frame"] == "LPS" and report["units"]["intensity"] == "HU"
    assert [s["name"] for s in report["segments"]] == ["tumour", "ramp"]
    assert report["segments"][0]["mesh"]["triangles"] == sphere_mesh.triangle_count
    assert report["segments"][1]["voxel_count"] == 1000


def test_volume_on_another_grid_is_refused(case: tuple[Volume, Segmentation]) -> None:
    volume, segmentation = case
    shifted = volume.ijk_to_lps.copy()
    shifted[0, 3] += 1.0
    with pytest.raises(SegmentationError, match="not on the volume's grid"):
        segment_measurements(segmentation, Volume(volume.voxels, shifted))
