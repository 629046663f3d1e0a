"""Simulation meshes of segments, the surface embedding and the tissue materials."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from surgtwin.core.deform.embedding import Embedding
from surgtwin.core.deform.errors import SimulationError
from surgtwin.core.deform.materials import (
    PRESETS,
    Material,
    custom_material,
    material,
    material_for_segment,
)
from surgtwin.core.deform.mesh import (
    HEX_CORNERS,
    RATE_TABLE,
    HexMesh,
    boundary_faces,
    box_mesh,
    cell_size_for_budget,
    elements_for_rate,
    hex_mesh_from_mask,
    nodes_touching,
    surface_nodes,
)
from surgtwin.core.errors import SurgTwinError
from surgtwin.core.mesh import mesh_label_map
from surgtwin.core.segmentation.io import read_label_map
from surgtwin.core.volume_files import read_volume_file

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_dicom" / "ground_truth"

RADIUS_MM = 20.0
CENTRE_LPS = np.array([12.0, -30.0, 45.0])


def oblique_flipped_affine() -> np.ndarray:
    """Anisotropic voxels, rotated about an oblique axis, with the j axis flipped."""
    axis = np.array([1.0, 2.0, 3.0]) / math.sqrt(14.0)
    angle = math.radians(35.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.9, -1.1, 1.3])
    affine[:3, 3] = CENTRE_LPS - affine[:3, :3] @ np.array([30.0, 30.0, 25.0])
    return affine


def sphere_mask(affine: np.ndarray, shape: tuple[int, int, int] = (50, 60, 60)) -> np.ndarray:
    k, j, i = np.indices(shape)
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(float)
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    return (np.linalg.norm(lps - CENTRE_LPS, axis=1) <= RADIUS_MM).reshape(shape)


@pytest.fixture(scope="module")
def sphere() -> tuple[np.ndarray, np.ndarray]:
    affine = oblique_flipped_affine()
    return sphere_mask(affine), affine


@pytest.fixture(scope="module")
def sphere_mesh(sphere: tuple[np.ndarray, np.ndarray]) -> HexMesh:
    mask, affine = sphere
    return hex_mesh_from_mask(mask, affine, 2.0)


def centre_jacobians(mesh: HexMesh) -> np.ndarray:
    """det(dX/dξ) of the trilinear map at each element's centre."""
    corners = mesh.nodes[mesh.elements]  # (E, 8, 3)
    columns = []
    for axis in range(3):
        plus = corners[:, HEX_CORNERS[:, axis] == 1].mean(axis=1)
        minus = corners[:, HEX_CORNERS[:, axis] == 0].mean(axis=1)
        columns.append(plus - minus)
    return np.linalg.det(np.stack(columns, axis=-1))


# --- the mesh of a segment -----------------------------------------------------------------------
def test_sphere_on_oblique_flipped_grid_has_the_sphere_volume(sphere_mesh: HexMesh) -> None:
    sphere_volume_m3 = 4.0 / 3.0 * math.pi * (RADIUS_MM * 1e-3) ** 3
    assert sphere_mesh.volume_m3() == pytest.approx(sphere_volume_m3, rel=0.03)
    assert sphere_mesh.cell_m == pytest.approx(2e-3)
    assert sphere_mesh.element_count == pytest.approx(sphere_volume_m3 / 2e-3**3, rel=0.03)


def test_sphere_nodes_lie_in_the_sphere_bounding_box_in_lps(sphere_mesh: HexMesh) -> None:
    nodes_mm = sphere_mesh.nodes * 1e3
    # cells at least half inside reach at most one cell beyond the sphere
    assert np.all(np.abs(nodes_mm - CENTRE_LPS) <= RADIUS_MM + 2.0 + 1e-9)
    # ... and the body spans the sphere, not a shifted or flipped copy of it
    assert np.allclose(nodes_mm.mean(axis=0), CENTRE_LPS, atol=1.0)
    assert np.all(nodes_mm.max(axis=0) - nodes_mm.min(axis=0) >= 2 * RADIUS_MM - 2.0)


def test_elements_are_positively_oriented_cubes_sharing_nodes(sphere_mesh: HexMesh) -> None:
    assert np.all(centre_jacobians(sphere_mesh) > 0)
    assert np.allclose(sphere_mesh.cell_extents_m(), 2e-3)
    assert sphere_mesh.node_count < 2 * sphere_mesh.element_count  # far below 8E: nodes are shared
    assert len(np.unique(np.round(sphere_mesh.nodes * 1e6), axis=0)) == sphere_mesh.node_count
    assert np.array_equal(np.unique(sphere_mesh.elements), np.arange(sphere_mesh.node_count))


def test_only_the_largest_face_connected_piece_is_kept() -> None:
    mask = np.zeros((30, 30, 30), dtype=bool)
    mask[2:12, 2:12, 2:12] = True  # 1000 mm³
    mask[20:24, 20:24, 20:24] = True  # 64 mm³, apart
    affine = np.eye(4)
    affine[:3, 3] = 0.5  # voxel i spans i..i+1 mm: the cubes fill whole cells
    mesh = hex_mesh_from_mask(mask, affine, 1.0)
    assert mesh.element_count == 1000
    assert np.all((mesh.nodes * 1e3 >= 2.0 - 1e-9) & (mesh.nodes * 1e3 <= 12.0 + 1e-9))


def test_bad_mesh_inputs_are_refused_with_reasons() -> None:
    mask = np.zeros((10, 10, 10), dtype=bool)
    with pytest.raises(SimulationError, match="empty"):
        hex_mesh_from_mask(mask, np.eye(4), 2.0)
    mask[4, 4, 4] = True
    with pytest.raises(SimulationError, match="too thin or small"):
        hex_mesh_from_mask(mask, np.eye(4), 5.0)
    with pytest.raises(SimulationError, match="cell size"):
        hex_mesh_from_mask(mask, np.eye(4), 0.0)
    with pytest.raises(SimulationError, match="invertible"):
        hex_mesh_from_mask(mask, np.zeros((4, 4)), 1.0)


def test_box_mesh_rectangular_cells_and_faces() -> None:
    mesh = box_mesh((0.3, 0.2, 0.05), (3, 2, 1), origin_m=(1.0, 0.0, -0.5))
    assert (mesh.element_count, mesh.node_count) == (6, 4 * 3 * 2)
    assert mesh.cell_m == pytest.approx(0.05)
    assert mesh.volume_m3() == pytest.approx(0.3 * 0.2 * 0.05)
    assert np.allclose(mesh.nodes.min(axis=0), [1.0, 0.0, -0.5])
    assert np.all(centre_jacobians(mesh) > 0)
    faces = boundary_faces(mesh)
    assert len(faces) == 2 * (3 * 2 + 3 * 1 + 2 * 1)
    quads = mesh.nodes[faces]
    normals = np.cross(quads[:, 2] - quads[:, 0], quads[:, 3] - quads[:, 1])
    outward = quads.mean(axis=1) - mesh.nodes.mean(axis=0)
    assert np.all(np.einsum("ij,ij->i", normals, outward) > 0)
    with pytest.raises(SimulationError):
        box_mesh((1.0, 1.0, 0.0), (1, 1, 1))


def test_surface_nodes_are_all_but_the_interior_ones() -> None:
    mesh = box_mesh((3.0, 3.0, 3.0), (3, 3, 3))
    on_surface = surface_nodes(mesh)
    interior = np.all((mesh.nodes > 0.5) & (mesh.nodes < 2.5), axis=1)
    assert interior.sum() == 8
    assert np.array_equal(on_surface, ~interior)


def test_nodes_touching_a_neighbouring_block() -> None:
    labels = np.zeros((20, 20, 40), dtype=np.uint8)
    labels[2:18, 2:18, 0:20] = 1  # the organ: x in -0.5..19.5 mm
    labels[:, :, 20:30] = 2  # the anchor right next to it: voxel centres x = 20..29 mm
    mesh = hex_mesh_from_mask(labels == 1, np.eye(4), 2.0)
    x_mm = mesh.nodes[:, 0] * 1e3
    assert x_mm.max() == pytest.approx(20.0)  # the last cell (18..20) is 3/4 inside
    touching = nodes_touching(mesh, labels == 2, np.eye(4), 1.0)
    assert np.array_equal(touching, np.isclose(x_mm, 20.0))
    wider = nodes_touching(mesh, labels == 2, np.eye(4), 2.0)
    assert np.array_equal(wider, x_mm >= 18.0 - 1e-9)
    assert not nodes_touching(mesh, np.zeros_like(labels, dtype=bool), np.eye(4), 5.0).any()


def test_cell_size_for_budget_honours_the_element_budget(sphere: tuple[np.ndarray, np.ndarray]) -> None:
    mask, affine = sphere
    for budget in (300, 1500):
        cell_mm = cell_size_for_budget(mask, affine, budget)
        count = hex_mesh_from_mask(mask, affine, cell_mm).element_count
        assert count <= budget
        assert count >= 0.85 * budget  # the smallest size that fits: close to the budget
    with pytest.raises(SimulationError, match="at least 1"):
        cell_size_for_budget(mask, affine, 0)
    with pytest.raises(SimulationError, match="whole number"):
        cell_size_for_budget(mask, affine, 2.5)  # type: ignore[arg-type]


def test_elements_for_rate_follows_the_rate_table() -> None:
    for elements, rate in RATE_TABLE:
        assert elements_for_rate(rate) == elements
    counts = [elements_for_rate(r) for r in (2000.0, 500.0, 120.0, 60.0, 30.0, 10.0)]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)  # slower rate, more elements
    measured = ((1_000, 600.0), (10_000, 60.0))
    assert elements_for_rate(60.0, measured) == 10_000
    assert elements_for_rate(190.0, measured) == pytest.approx(3160, rel=0.01)  # log-log midpoint
    with pytest.raises(SimulationError, match="above 0"):
        elements_for_rate(0.0)


def test_sample_liver_mesh_at_5mm_and_at_a_budget() -> None:
    labels_path = SAMPLE / "labels.nii.gz"
    reference = read_volume_file(labels_path)  # the label map's own grid
    names = {int(k): v for k, v in json.loads((SAMPLE / "labels.json").read_text()).items()}
    segmentation = read_label_map(labels_path, names, reference)
    liver = segmentation.mask(segmentation.label_of("liver"))
    mesh = hex_mesh_from_mask(liver, segmentation.ijk_to_lps, 5.0)
    liver_ml = segmentation.volume_ml(segmentation.label_of("liver"))
    assert mesh.volume_m3() * 1e6 == pytest.approx(liver_ml, rel=0.10)
    assert np.all(centre_jacobians(mesh) > 0)
    cell_mm = cell_size_for_budget(liver, segmentation.ijk_to_lps, 5000)
    budgeted = hex_mesh_from_mask(liver, segmentation.ijk_to_lps, cell_mm)
    assert 0.85 * 5000 <= budgeted.element_count <= 5000
    # the spine and ribs hold the liver where they touch it, not everywhere
    bone = segmentation.mask(segmentation.label_of("bone"))
    fixed = nodes_touching(budgeted, bone, segmentation.ijk_to_lps, cell_mm)
    assert 0 < fixed.sum() < 0.5 * budgeted.node_count


# --- the embedding -------------------------------------------------------------------------------
def points_inside(mesh: HexMesh, count: int, rng: np.random.Generator) -> np.ndarray:
    element = rng.integers(0, mesh.element_count, count)
    local = rng.random((count, 3))
    low = mesh.nodes[mesh.elements[element, 0]]
    return low + local * mesh.cell_extents_m()[element]


def test_embedding_reproduces_points_at_rest_and_under_affine_maps(sphere_mesh: HexMesh) -> None:
    rng = np.random.default_rng(5)
    points = points_inside(sphere_mesh, 5000, rng)
    embedding = Embedding.build(sphere_mesh, points)
    assert np.all(embedding.outside_m == 0.0)
    assert np.allclose(embedding.weights.sum(axis=1), 1.0)
    assert np.all(embedding.weights >= -1e-12)
    assert np.allclose(embedding.apply(sphere_mesh.nodes), points, rtol=0, atol=1e-12)
    linear = np.array([[1.2, 0.3, -0.1], [0.0, 0.8, 0.25], [0.1, -0.2, 1.1]])
    shift = np.array([0.01, -0.02, 0.03])
    moved = sphere_mesh.nodes @ linear.T + shift
    assert np.allclose(embedding.apply(moved), points @ linear.T + shift, rtol=0, atol=1e-12)


def test_surface_vertices_outside_the_body_snap_and_extrapolate(
    sphere: tuple[np.ndarray, np.ndarray], sphere_mesh: HexMesh
) -> None:
    mask, affine = sphere
    surface = mesh_label_map(mask.astype(np.uint8), affine)[1]
    points = surface.vertices * 1e-3
    embedding = Embedding.build(sphere_mesh, points)
    assert embedding.point_count == len(points)
    assert np.any(embedding.outside_m > 0)  # some vertices lie outside the voxelised body ...
    assert embedding.outside_m.max() <= sphere_mesh.cell_m  # ... but never more than a cell
    assert np.allclose(embedding.apply(sphere_mesh.nodes), points, rtol=0, atol=1e-12)
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert np.allclose(embedding.apply(sphere_mesh.nodes @ rotation.T), points @ rotation.T, atol=1e-12)
    # a smooth non-affine push moves outside vertices by about as much as the nodes near them
    push = 1e-3 * np.sin(sphere_mesh.nodes / 0.01)
    moved = embedding.apply(sphere_mesh.nodes + push) - points
    assert np.abs(moved).max() <= 1.5 * np.abs(push).max()


def test_embedding_far_points_and_bad_inputs() -> None:
    mesh = box_mesh((0.04, 0.04, 0.04), (4, 4, 4))
    far = np.array([[0.05, 0.02, 0.02], [-0.005, -0.005, 0.02]])
    embedding = Embedding.build(mesh, far)
    assert embedding.outside_m == pytest.approx([0.01, math.sqrt(2) * 0.005])
    assert np.allclose(embedding.apply(mesh.nodes + [0.1, 0.0, 0.0]), far + [0.1, 0.0, 0.0])
    with pytest.raises(SimulationError, match=r"\(P, 3\)"):
        Embedding.build(mesh, np.zeros((3, 2)))
    with pytest.raises(SimulationError, match=r"node positions must be \(125, 3\)"):
        embedding.apply(mesh.nodes[:10])


# --- materials -----------------------------------------------------------------------------------
TYPICAL_YOUNGS_PA = {  # ../shared/REFERENCE.md, "Solid mechanics"
    "brain": (1e3, 3e3),
    "liver": (2e3, 10e3),
    "kidney": (5e3, 15e3),
    "spleen": (2e3, 10e3),
    "fat": (1e3, 4e3),
    "muscle": (10e3, 100e3),
    "skin": (0.1e6, 1e6),
}


def test_presets_lie_in_the_typical_ranges_and_cite_a_source() -> None:
    assert set(PRESETS) == set(TYPICAL_YOUNGS_PA)
    for name, (low, high) in TYPICAL_YOUNGS_PA.items():
        preset = material(name)
        assert low <= preset.youngs_pa <= high, name
        assert 0.45 <= preset.poisson < 0.5
        assert 900 <= preset.density_kg_m3 <= 1100
        assert any(str(year) in preset.source for year in range(1950, 2030)), name
    assert material(" Liver ") is PRESETS["liver"]


def test_material_lookup_and_custom_values() -> None:
    with pytest.raises(SimulationError, match="liver, kidney, spleen, brain, muscle, fat, skin"):
        material("lung")
    custom = custom_material(2e4, 0.45, 1000)
    assert material(custom) is custom
    assert custom.shear_modulus_pa == pytest.approx(2e4 / 2.9)
    assert custom.lame_lambda_pa + 2 / 3 * custom.shear_modulus_pa == pytest.approx(custom.bulk_modulus_pa)
    assert material_for_segment("kidney_left") is PRESETS["kidney"]
    assert material_for_segment("aorta") is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((0.0, 0.45, 1000.0), "Young's modulus must be above 0 Pa, got 0 Pa"),
        ((-5.0, 0.45, 1000.0), "got -5 Pa"),
        ((1e3, 0.5, 1000.0), "Poisson's ratio must be in 0 to below 0.5, got 0.5"),
        ((1e3, -0.1, 1000.0), "got -0.1"),
        ((1e3, 0.45, 0.0), "density must be above 0 kg/m³, got 0"),
        ((float("nan"), 0.45, 1000.0), "Young's modulus \\(Pa\\) must be a finite number, got nan"),
        ((1e3, True, 1000.0), "Poisson's ratio must be a finite number, got True"),
    ],
)
def test_bad_material_values_are_named(values: tuple[float, float, float], message: str) -> None:
    with pytest.raises(SimulationError, match=message) as caught:
        custom_material(*values)
    assert isinstance(caught.value, SurgTwinError) and caught.value.code == "simulation_error"


def test_material_is_frozen() -> None:
    preset = material("brain")
    with pytest.raises(AttributeError):
        preset.youngs_pa = 1.0  # type: ignore[misc]
    assert isinstance(preset, Material)
