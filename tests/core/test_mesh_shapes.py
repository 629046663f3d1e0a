"""Surface meshes of analytic shapes: volume, placement, thin tubes, shared boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from surgtwin.core.errors import MeshError
from surgtwin.core.mesh import MeshOptions, SurfaceMesh, check_mesh, mesh_label_map
from tests.core.mesh_shapes import (
    centred_grid,
    cylinder,
    ellipsoid,
    large_body_phantom,
    radial_distance,
    rotation,
    voxelise,
)

OBLIQUE = rotation((1.0, 2.0, 0.5), 27.0)
MIRROR = np.diag([-1.0, -1.0, 1.0])  # LPS images stored with flipped rows and columns


def assert_clean(mesh: SurfaceMesh) -> None:
    quality = check_mesh(mesh.vertices, mesh.faces)
    assert quality.ok, quality
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert tm.is_watertight and tm.is_winding_consistent and tm.volume > 0
    edges = np.sort(tm.edges, axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # every edge in exactly two faces


@pytest.mark.parametrize(
    ("spacing", "rot", "radii"),
    [
        ((1.0, 1.0, 1.0), None, (10.0, 10.0, 10.0)),
        ((0.7, 0.8, 2.5), None, (12.0, 9.0, 15.0)),
        ((0.9, 0.9, 1.7), OBLIQUE, (11.0, 8.0, 14.0)),
        ((1.1, 0.8, 1.5), MIRROR @ OBLIQUE, (9.0, 12.0, 10.0)),
    ],
    ids=["sphere-iso", "ellipsoid-aniso", "ellipsoid-oblique", "ellipsoid-mirrored-oblique"],
)
def test_ellipsoid_volume_and_placement(spacing, rot, radii) -> None:
    center = np.array([12.3, -45.6, 78.9])
    shape, affine = centred_grid(center, 2 * max(radii) + 8, spacing, rot)
    labels = voxelise(shape, affine, ellipsoid(center, radii))
    mesh = mesh_label_map(labels, affine, options=MeshOptions(triangle_budget=None))[1]
    analytic = 4 / 3 * np.pi * np.prod(radii)
    voxel_volume = labels.sum() * abs(np.linalg.det(affine[:3, :3]))
    volume = mesh.volume_ml() * 1000
    print(f"volume {volume:.0f} mm3, analytic {analytic:.0f}, voxels {voxel_volume:.0f}")
    assert volume == pytest.approx(analytic, rel=0.02)
    assert volume == pytest.approx(voxel_volume, rel=0.02)
    assert_clean(mesh)
    centroid = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).center_mass
    assert np.linalg.norm(centroid - center) < 0.1
    assert (
        mesh.provenance["frame"] == "LPS" and abs(mesh.provenance["volume_change_percent"]["smoothing"]) < 2
    )


def test_cylinder_on_oblique_grid_after_decimation() -> None:
    center, axis = np.array([-20.0, 5.0, 30.0]), np.array([0.3, 1.0, 0.2])
    shape, affine = centred_grid(center, 64, (0.8, 0.8, 2.0), OBLIQUE)
    labels = voxelise(shape, affine, cylinder(center, axis, 8.0, 22.0))
    mesh = mesh_label_map(labels, affine, options=MeshOptions(reduction=0.7))[1]
    analytic = np.pi * 8.0**2 * 44.0
    assert mesh.volume_ml() * 1000 == pytest.approx(analytic, rel=0.03)
    assert mesh.provenance["decimation"]["result"] == "decimated"
    assert mesh.triangle_count < 0.35 * mesh.provenance["triangles"]["extracted"]
    assert mesh.provenance["shared_boundaries"] is False  # decimated: vertices no longer shared
    assert_clean(mesh)


@pytest.mark.parametrize("diameter", [2.0, 3.0, 4.0])
def test_thin_tube_survives_smoothing_and_decimation(diameter: float) -> None:
    center, axis = np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.5, 0.3])
    shape, affine = centred_grid(center, 44, (1.0, 1.0, 1.0))
    labels = voxelise(shape, affine, cylinder(center, axis, diameter / 2, 16.0))
    mesh = mesh_label_map(labels, affine, options=MeshOptions(reduction=0.5))[1]
    assert_clean(mesh)
    r, t = radial_distance(mesh.vertices, center, axis)
    mean_r = r[np.abs(t) < 12].mean()
    print(f"{diameter} mm tube: mean radius {mean_r:.2f} mm (true {diameter / 2})")
    assert mean_r == pytest.approx(diameter / 2, rel=0.15)
    assert mesh.provenance["decimation"]["result"] == "decimated"


def test_touching_labels_share_their_boundary() -> None:
    center = np.array([0.0, 0.0, 0.0])
    shape, affine = centred_grid(center, 40, (1.0, 0.9, 1.3), OBLIQUE)
    ball = voxelise(shape, affine, ellipsoid(center, (14.0, 12.0, 10.0)))
    left = voxelise(shape, affine, lambda p: p[..., 0] < 0.0)
    labels = (ball * np.where(left, 1, 2)).astype(np.uint8)
    meshes = mesh_label_map(labels, affine, options=MeshOptions(triangle_budget=None))
    a, b = meshes[1], meshes[2]
    for mesh in (a, b):
        assert_clean(mesh)
        assert mesh.provenance["shared_boundaries"]
    dist, _ = cKDTree(b.vertices).query(a.vertices)
    shared = a.vertices[dist < 1e-9]
    assert len(shared) > 200
    # the shared vertices are the interface: all near the x = 0 cut (smoothed, so within a voxel)
    assert np.abs(shared[:, 0]).max() < 2.0
    # the interface disc's area, counted on each side, is the same surface
    in_a = (dist < 1e-9)[a.faces].all(axis=1)
    dist_b, _ = cKDTree(a.vertices).query(b.vertices)
    in_b = (dist_b < 1e-9)[b.faces].all(axis=1)
    area = [SurfaceMesh(m.vertices, m.faces[sel]).area_mm2() for m, sel in ((a, in_a), (b, in_b))]
    assert area[0] == pytest.approx(area[1], rel=1e-6)
    assert area[0] == pytest.approx(np.pi * 12.0 * 10.0, rel=0.1)
    # the two halves' volumes add up to the whole ball
    total = (a.volume_ml() + b.volume_ml()) * 1000
    assert total == pytest.approx(4 / 3 * np.pi * 14 * 12 * 10, rel=0.02)


def test_diagonal_voxels_become_one_manifold_surface() -> None:
    labels = np.zeros((6, 6, 6), dtype=np.uint8)
    labels[2, 2, 2] = labels[3, 3, 2] = 1  # touch along an edge only
    labels[2, 2, 4] = 2
    labels[3, 3, 5] = 2  # ... and at a corner only
    meshes = mesh_label_map(labels, np.eye(4), options=MeshOptions(smoothing="none"))
    for mesh in meshes.values():
        assert_clean(mesh)
        assert mesh.provenance["voxels_added_for_manifold"] >= 1


def test_components_below_minimum_volume_are_dropped() -> None:
    labels = np.zeros((30, 30, 30), dtype=np.uint8)
    labels[5:20, 5:20, 5:20] = 1
    labels[25:27, 25:27, 25:27] = 1  # 8 mm3 speck
    options = MeshOptions(min_component_mm3=20.0, triangle_budget=None)
    mesh = mesh_label_map(labels, np.eye(4), options=options)[1]
    assert mesh.provenance["components"]["dropped"] == 1
    assert check_mesh(mesh.vertices, mesh.faces).components == 1
    largest = mesh_label_map(labels, np.eye(4), options=MeshOptions(keep_largest_component=True))[1]
    assert largest.volume_ml() * 1000 == pytest.approx(15**3, rel=0.03)


def test_empty_label_gets_no_mesh_and_bad_input_is_refused() -> None:
    labels = np.zeros((8, 8, 8), dtype=np.uint8)
    labels[2:5, 2:5, 2:5] = 3
    assert set(mesh_label_map(labels, np.eye(4), [3, 4])) == {3}
    with pytest.raises(MeshError):
        mesh_label_map(labels, np.zeros((4, 4)))
    with pytest.raises(MeshError):
        MeshOptions(smoothing_passband=0.0)


def test_large_multi_label_map_meshes_within_budget() -> None:
    """CT-sized: the body is meshed on a coarser grid (its full-grid surface is many times
    the budget), the two-voxel shell on the full grid; every mesh within the budget,
    closed, manifold, outward, and within 2 % of its label's volume."""
    labels, affine = large_body_phantom()
    budget = 30_000
    voxel_mm3 = abs(np.linalg.det(affine[:3, :3]))
    meshes = mesh_label_map(labels, affine, options=MeshOptions(triangle_budget=budget))
    assert set(meshes) == {1, 2, 3, 4}
    for value, mesh in meshes.items():
        assert mesh.triangle_count <= budget, (value, mesh.triangle_count)
        assert mesh.provenance["over_budget"] is False
        assert mesh.provenance["shared_boundaries"] is False  # grid factors differ
        assert_clean(mesh)
        label_mm3 = np.count_nonzero(labels == value) * voxel_mm3
        assert mesh.volume_ml() * 1000 == pytest.approx(label_mm3, rel=0.02), value
    assert meshes[1].provenance["grid_factor"] > 1
    assert meshes[3].provenance["grid_factor"] == 1  # thin: keeps the full grid
    # the shell keeps its shape: its vertices stay near radius 38.4..40 mm around (-45, 0, 0)
    r = np.linalg.norm(meshes[3].vertices - np.array([-45.0, 0.0, 0.0]), axis=1)
    assert 37.5 < r.min() and r.max() < 41.0


def test_one_voxel_thick_shell_keeps_its_volume_through_smoothing() -> None:
    """Sheets one voxel thick (thin bone on a 3 mm CT) must not be smoothed away."""
    center = np.array([1.0, -2.0, 3.0])
    shape, affine = centred_grid(center, 90.0, (3.0, 3.0, 3.0))
    outer, inner = ellipsoid(center, (36.0, 33.0, 30.0)), ellipsoid(center, (33.0, 30.0, 27.0))
    labels = voxelise(shape, affine, lambda p: outer(p) & ~inner(p))
    label_mm3 = labels.sum() * 27.0
    (mesh,) = mesh_label_map(labels, affine).values()
    assert_clean(mesh)
    assert mesh.volume_ml() * 1000 == pytest.approx(label_mm3, rel=0.02)
    assert "volume_restore_offset_mm" in mesh.provenance  # restored, and it says so


def _boxes_touching(shift: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Two unit cubes, the second moved by ``shift`` (touching at a corner or an edge), as
    one mesh with separate vertex indices: manifold as stored, not once a reader merges."""
    a = trimesh.creation.box(bounds=[[0, 0, 0], [10, 10, 10]])
    b = trimesh.creation.box(bounds=[[0, 0, 0], [10, 10, 10]])
    b.apply_translation(shift)
    return np.vstack([a.vertices, b.vertices]), np.vstack([a.faces, b.faces + len(a.vertices)])


def _stl_round_trip(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    import io

    data = trimesh.Trimesh(vertices, faces, process=False).export(file_type="stl")
    return trimesh.load(io.BytesIO(data), file_type="stl")


@pytest.mark.parametrize("shift", [(10.0, 10.0, 10.0), (10.0, 10.0, 0.0)], ids=["corner", "edge"])
def test_split_pinch_points_stay_apart_through_a_file(shift: tuple[float, float, float]) -> None:
    from surgtwin.core.mesh.repair import repair_mesh

    vertices, faces = _boxes_touching(shift)
    assert check_mesh(vertices, faces, merge_digits=None).ok  # as stored
    merged = check_mesh(vertices, faces)  # as a reader sees it: a pinch point or a 4-face edge
    assert not merged.ok and merged.coincident_vertices in (1, 2)
    if shift[2] == 0.0:  # a 4-face edge (trimesh's watertightness looks at edges only)
        assert not _stl_round_trip(vertices, faces).is_watertight
    v, f, actions, quality = repair_mesh(vertices, faces)
    assert quality.ok and quality.coincident_vertices == 0, (actions, quality)
    moved = np.linalg.norm(v[:, None] - vertices[None], axis=2).min(axis=1)
    assert moved.max() >= 1e-3 and moved.max() <= 1e-2  # the copies moved a hair apart
    back = _stl_round_trip(v, f)
    assert back.is_watertight and back.volume == pytest.approx(2000.0, rel=1e-3)


def test_small_holes_are_closed() -> None:
    from surgtwin.core.mesh.repair import fill_holes, quick_repair

    ball = trimesh.creation.icosphere(subdivisions=2, radius=10.0)
    vertices, faces = np.asarray(ball.vertices), np.asarray(ball.faces, dtype=np.int64)
    around = np.flatnonzero((faces == 0).any(axis=1))  # the 5 faces around vertex 0
    keep = np.ones(len(faces), dtype=bool)
    keep[around] = False
    keep[-1] = False  # and one triangle elsewhere
    v, f, n = fill_holes(vertices, faces[keep])
    assert n == 2 and check_mesh(v, f).ok
    assert signed_volume(v, f) == pytest.approx(ball.volume, rel=0.01)
    v, f, actions, quality = quick_repair(vertices, faces[keep])
    assert quality.ok and "closed 2 holes" in actions


def signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    return float(trimesh.Trimesh(v, f, process=False).volume)


def test_decimation_continues_when_the_simplifier_stops_short(monkeypatch: pytest.MonkeyPatch) -> None:
    import fast_simplification

    real = fast_simplification.simplify

    def halfway(points, triangles, target_count, agg):  # removes at most half per call
        return real(points, triangles, target_count=max(target_count, len(triangles) // 2), agg=agg)

    monkeypatch.setattr("surgtwin.core.mesh.decimate._helper", None)  # in this process (the app starts one)
    monkeypatch.setattr("surgtwin.core.mesh.decimate.fast_simplification.simplify", halfway)
    center = np.zeros(3)
    shape, affine = centred_grid(center, 50, (1.0, 1.0, 1.0))
    labels = voxelise(shape, affine, ellipsoid(center, (22.0, 18.0, 15.0)))
    mesh = mesh_label_map(labels, affine, options=MeshOptions(triangle_budget=2_000))[1]
    attempt = mesh.provenance["decimation"]["attempts"][0]
    assert attempt["passes"] >= 3 and mesh.triangle_count <= 2_000
    assert mesh.provenance["over_budget"] is False
    assert mesh.provenance["shared_boundaries"] is False
    assert "decimated" in mesh.provenance["unshared_because"]
    assert_clean(mesh)


def test_a_missed_budget_is_recorded_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("surgtwin.core.mesh.decimate._helper", None)  # in this process (the app starts one)
    monkeypatch.setattr(
        "surgtwin.core.mesh.decimate.fast_simplification.simplify",
        lambda points, triangles, target_count, agg: (points, triangles),  # never simplifies
    )
    center = np.zeros(3)
    shape, affine = centred_grid(center, 50, (1.0, 1.0, 1.0))
    labels = voxelise(shape, affine, ellipsoid(center, (22.0, 18.0, 15.0)))
    with caplog.at_level("WARNING", logger="surgtwin.core.mesh.extract"):
        mesh = mesh_label_map(labels, affine, options=MeshOptions(triangle_budget=2_000))[1]
    assert mesh.provenance["over_budget"] is True and mesh.triangle_count > 2_000
    assert "over the budget" in caplog.text
