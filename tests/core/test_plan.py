"""Planning objects: geometry against analytic answers, validation, the sample case."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import trimesh

from surgtwin.core.errors import SurgTwinError
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.plan import PLAN_TYPES, Angle, CutPlane, PlanError, Ruler, Trajectory, plan_from_dict
from surgtwin.core.plan.geometry import cut_volumes, mesh_clearance, split_mask, trajectory_clearances
from surgtwin.core.segmentation.model import Segment, Segmentation

ROOT = Path(__file__).resolve().parents[2]
CENTRE = np.array([5.0, -3.0, 7.0])  # LPS mm
RADIUS = 10.0


def sphere_segmentation(radius: float = RADIUS, spacing: float = 1.0, size: int = 41) -> Segmentation:
    """A ball of ``radius`` mm at CENTRE on an isotropic grid (voxel centres inside are labelled)."""
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = CENTRE - spacing * (size - 1) / 2  # CENTRE is a voxel centre
    k, j, i = np.indices((size, size, size))
    ijk = np.stack([i, j, k], axis=-1).astype(float)
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    labels = (np.linalg.norm(lps - CENTRE, axis=-1) <= radius).astype(np.uint8)
    labels[0, 0, 0] = 2  # a second, far-away segment
    return Segmentation(
        labels, affine, {1: Segment("ball", (1.0, 0.0, 0.0)), 2: Segment("speck", (0.0, 1.0, 0.0))}
    )


def sphere_mesh() -> SurfaceMesh:
    ball = trimesh.creation.icosphere(subdivisions=5, radius=RADIUS)
    return SurfaceMesh(
        np.asarray(ball.vertices) + CENTRE, np.asarray(ball.faces), name="ball", segment_label=1
    )


# --- objects on their own ---------------------------------------------------------------
def test_ruler_3_4_5() -> None:
    ruler = Ruler(start=(1.0, 2.0, 3.0), end=(4.0, 6.0, 3.0))
    assert ruler.length_mm == 5.0 and ruler.measurements() == {"length_mm": 5.0}
    assert ruler.name == "Ruler" and ruler.points == {"start": (1.0, 2.0, 3.0), "end": (4.0, 6.0, 3.0)}


@pytest.mark.parametrize(
    ("second", "degrees"),
    [
        ((0, 5, 0), 90.0),
        ((3, 3, 0), 45.0),
        ((7, 0, 0), 0.0),
        ((-2, 0, 0), 180.0),
        ((1, 0, math.sqrt(3)), 60.0),
    ],
)
def test_angle_against_analytic_values(second: tuple[float, float, float], degrees: float) -> None:
    vertex = np.array([10.0, -4.0, 2.0])
    angle = Angle(first=tuple(vertex + [2, 0, 0]), vertex=tuple(vertex), second=tuple(vertex + second))
    assert angle.degrees == pytest.approx(degrees, abs=1e-9)


def test_trajectory_length_and_reslice_frame_is_orthonormal_along_the_path() -> None:
    trajectory = Trajectory(entry=(0.0, 0.0, 0.0), target=(30.0, 40.0, 120.0))
    assert trajectory.length_mm == pytest.approx(130.0)
    frame = trajectory.reslice_frame(65.0)
    basis = frame.matrix[:3, :3]
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    assert np.linalg.det(basis) == pytest.approx(1.0)  # right-handed
    np.testing.assert_allclose(frame.axis, np.array([30, 40, 120]) / 130)
    np.testing.assert_allclose(frame.origin, [15.0, 20.0, 60.0])
    # "across" is patient Left (+x) made perpendicular to the path: in their plane, towards +x
    assert np.dot(frame.across, np.cross([1, 0, 0], frame.axis)) == pytest.approx(0, abs=1e-12)
    assert frame.across[0] > 0
    # a frame point 10 mm along z (the path axis) is 10 mm further along the path
    np.testing.assert_allclose((frame.matrix @ [0, 0, 10, 1])[:3], trajectory.point_at(75.0))
    along_x = Trajectory(entry=(0.0, 0.0, 0.0), target=(-50.0, 0.0, 0.0)).reslice_frame()
    np.testing.assert_allclose(along_x.matrix[:3, :3].T @ along_x.matrix[:3, :3], np.eye(3), atol=1e-12)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Trajectory(entry=(1, 2, 3), target=(1, 2, 3)), "has zero length"),
        (lambda: CutPlane(point=(0, 0, 0), normal=(0, 0, 0)), "zero normal"),
        (lambda: Ruler(start=(0, float("nan"), 0), end=(1, 1, 1)), "not a finite number"),
        (lambda: Ruler(start=(0, 0, float("inf")), end=(1, 1, 1)), "not a finite number"),
        (lambda: Ruler(start=(0, 0), end=(1, 1, 1)), "three LPS coordinates"),
        (lambda: Ruler(start="abc", end=(1, 1, 1)), "three LPS coordinates"),
        (lambda: Angle(first=(1, 0, 0), vertex=(0, 0, 0), second=(0, 0, 0)), "lies on the vertex"),
        (lambda: Ruler(start=(0, 0, 0), end=(1, 1, 1), name="  "), "needs a name"),
        (lambda: Ruler(start=(0, 0, 0), end=(1, 1, 1), color=(2, 0, 0)), "must be RGB"),
        (lambda: CutPlane(point=(0, 0, 0), normal=(0, 0, 1), segment_label=0), "segment_label"),
        (lambda: plan_from_dict({"type": "hologram"}), "unknown planning object type"),
        (lambda: plan_from_dict({"type": "ruler", "start": [0, 0, 0]}), "needs the points ['end']"),
        (
            lambda: plan_from_dict({"type": "ruler", "start": [0, 0, 0], "end": [1, 0, 0], "x": 1}),
            "no fields",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(make, message: str) -> None:
    with pytest.raises(PlanError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        make()
    assert isinstance(info.value, SurgTwinError) and info.value.code == "plan_error"


@pytest.mark.parametrize(
    "obj",
    [
        Ruler(start=(0.1, 0.2, 0.30000000000000004), end=(1e-300, -7.5, 1e6), name="AP diameter"),
        Angle(first=(1, 0, 0), vertex=(0, 0, 0), second=(0, 1, 0), color=(0.1, 0.2, 0.3), visible=False),
        Trajectory(entry=(1, 2, 3), target=(4, 5, 6.123456789), provenance={"by": "dr who"}),
        CutPlane(point=(0, 0, 0), normal=(0, 0.3, 1), segmentation_id="seg-1", segment_label=5),
    ],
)
def test_to_dict_round_trips_exactly(obj) -> None:
    import json

    again = plan_from_dict(json.loads(json.dumps(obj.to_dict())))
    assert again == obj and type(again) is type(obj) and again.to_dict() == obj.to_dict()
    assert set(PLAN_TYPES) == {"ruler", "angle", "trajectory", "cut_plane"}


# --- trajectories against a ball ----------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "target", "distance", "along"),
    [
        # passes beside the ball: closest at its middle, 20 mm from the centre
        ((20.0, -30.0, 0.0), (20.0, 30.0, 0.0), 20.0, 30.0),
        # stops short of the ball: closest at the target, 25 mm from the centre
        ((0.0, 0.0, -60.0), (0.0, 0.0, -25.0), 25.0, 35.0),
        # oblique
        ((-14.0, 14.0, -30.0), (-14.0, 14.0, 30.0), math.hypot(14, 14), 30.0),
    ],
)
def test_closest_distance_to_a_ball_is_centre_distance_minus_radius(entry, target, distance, along) -> None:
    trajectory = Trajectory(entry=tuple(CENTRE + entry), target=tuple(CENTRE + target))
    seg = sphere_segmentation()
    result = trajectory_clearances(trajectory, seg, [sphere_mesh()], segments=["ball"])
    voxels, mesh = sorted(result["clearances"], key=lambda c: c["source"])[::-1]
    assert voxels["source"] == "voxels" and mesh["source"] == "mesh"
    assert voxels["distance_mm"] == pytest.approx(distance - RADIUS, abs=0.5)  # half a voxel
    assert mesh["distance_mm"] == pytest.approx(distance - RADIUS, abs=0.2)  # facets + path step
    for clearance in (voxels, mesh):
        assert not clearance["crosses"]
        assert clearance["along_path_mm"] == pytest.approx(along, abs=1.0)
        gap = np.linalg.norm(np.subtract(clearance["closest_point_lps_mm"], clearance["path_point_lps_mm"]))
        assert gap == pytest.approx(distance - RADIUS, abs=1.0)
    assert result["length_mm"] == pytest.approx(trajectory.length_mm)


def test_a_path_through_the_ball_crosses_it_where_it_enters() -> None:
    trajectory = Trajectory(entry=tuple(CENTRE + [0, -30, 0]), target=tuple(CENTRE))
    seg = sphere_segmentation()
    result = trajectory_clearances(trajectory, seg, [sphere_mesh()])
    ball = [c for c in result["clearances"] if c["segment"] == "ball"]
    assert len(ball) == 2
    for clearance in ball:
        assert clearance["crosses"] and clearance["distance_mm"] == 0.0
        assert clearance["along_path_mm"] == pytest.approx(30.0 - RADIUS, abs=0.5)
    speck = next(c for c in result["clearances"] if c["segment"] == "speck")
    assert speck["distance_mm"] > 20 and not speck["crosses"]
    assert result["clearances"][-1] is speck  # nearest first


def test_empty_segments_and_empty_meshes() -> None:
    seg = sphere_segmentation()
    seg.add_segment("nothing")
    trajectory = Trajectory(entry=(0, 0, 100), target=(0, 0, 90))
    nothing = next(
        c for c in trajectory_clearances(trajectory, seg)["clearances"] if c["segment"] == "nothing"
    )
    assert nothing["distance_mm"] is None and not nothing["crosses"]
    with pytest.raises(PlanError, match="no triangles"):
        mesh_clearance(trajectory, SurfaceMesh(np.zeros((0, 3)), np.zeros((0, 3)), name="empty"))


# --- cut planes -----------------------------------------------------------------------------
@pytest.mark.parametrize("normal", [(0, 0, 1), (1, 1, 0.3), (-0.2, 0.9, -0.4)])
def test_cut_through_the_middle_splits_a_ball_in_half(normal) -> None:
    seg = sphere_segmentation(radius=15.0, size=35)
    plane = CutPlane(point=tuple(CENTRE), normal=normal, segment_label=1)
    result = cut_volumes(plane, seg)
    assert result["total_ml"] == pytest.approx(4 / 3 * math.pi * 15**3 / 1000, rel=0.02)
    assert result["positive_ml"] == pytest.approx(result["total_ml"] / 2, rel=0.01)
    assert result["positive_ml"] + result["negative_ml"] == pytest.approx(result["total_ml"])
    assert result["segment"] == "ball" and result["positive_fraction"] == pytest.approx(0.5, abs=0.005)


def test_cut_off_cap_matches_the_spherical_cap_volume() -> None:
    seg = sphere_segmentation(radius=15.0, size=35)
    height = 6.4  # cap on the +y side (posterior); the plane lies between voxel centres
    plane = CutPlane(point=tuple(CENTRE + [0, 15 - height, 0]), normal=(0, 2, 0), segment_label=1)
    cap_ml = math.pi * height**2 * (3 * 15 - height) / 3 / 1000
    assert cut_volumes(plane, seg)["positive_ml"] == pytest.approx(cap_ml, rel=0.04)
    mask = split_mask(plane, seg)
    assert mask.sum() * seg.voxel_volume_mm3 / 1000 == pytest.approx(cap_ml, rel=0.06)
    assert not np.any(mask & (seg.labels != 1))


def test_cut_plane_needs_a_segment_that_exists() -> None:
    seg = sphere_segmentation()
    with pytest.raises(PlanError, match="not applied to a segment"):
        cut_volumes(CutPlane(point=(0, 0, 0), normal=(1, 0, 0)), seg)
    with pytest.raises(PlanError, match=r"no segment with label 9 \(segments: 1 \(ball\), 2 \(speck\)\)"):
        cut_volumes(CutPlane(point=(0, 0, 0), normal=(1, 0, 0), segment_label=9), seg)


# --- the sample case ------------------------------------------------------------------------
def test_needle_from_the_skin_to_the_liver_tumour_on_the_sample_case() -> None:
    from surgtwin.core.importer import load_volume
    from surgtwin.core.segmentation.io import read_label_map

    truth = ROOT / "sample_dicom" / "ground_truth"
    if not (truth / "labels.nii.gz").is_file():
        pytest.skip("sample_dicom/ is not in this checkout")
    volume, _ = load_volume(ROOT / "sample_dicom" / "dicom")
    seg = read_label_map(truth / "labels.nii.gz", truth / "labels.json", volume)

    def lps(kji: np.ndarray) -> np.ndarray:
        return seg.ijk_to_lps[:3, :3] @ np.asarray(kji, dtype=float)[::-1] + seg.ijk_to_lps[:3, 3]

    tumour = np.argwhere(seg.labels == seg.label_of("liver_tumour"))
    k, j, i = np.rint(tumour.mean(axis=0)).astype(int)
    assert seg.labels[k, j, i] == seg.label_of("liver_tumour")
    # Enter from the patient's right side (smallest L) on the tumour centre's row.
    skin_i = np.flatnonzero(seg.labels[k, j] == seg.label_of("skin"))
    trajectory = Trajectory(
        entry=tuple(lps((k, j, skin_i.min()))), target=tuple(lps((k, j, i))), name="biopsy"
    )

    result = trajectory_clearances(trajectory, seg)
    by_name = {c["segment"]: c for c in result["clearances"]}
    assert result["length_mm"] == pytest.approx(2.0 * (i - skin_i.min()))
    assert by_name["skin"]["crosses"] and by_name["skin"]["along_path_mm"] == 0.0
    assert by_name["liver_tumour"]["crosses"] and by_name["liver"]["crosses"]
    assert by_name["liver"]["along_path_mm"] < by_name["liver_tumour"]["along_path_mm"] < result["length_mm"]
    a, d = np.asarray(trajectory.entry), np.asarray(trajectory.target) - np.asarray(trajectory.entry)
    for name in ("aorta", "kidney_left", "kidney_right"):
        clearance = by_name[name]
        assert not clearance["crosses"] and clearance["distance_mm"] > 5.0
        # brute force over every voxel of the structure, less half a voxel (1 mm)
        points = np.array([lps(v) for v in np.argwhere(seg.labels == seg.label_of(name))])
        t = np.clip((points - a) @ d / (d @ d), 0, 1)
        brute = np.linalg.norm(points - (a + t[:, None] * d), axis=1).min() - 1.0
        assert clearance["distance_mm"] == pytest.approx(brute, abs=1e-9)
    # the target lies medial of the right kidney and lateral of the aorta: both are clear
    assert by_name["kidney_right"]["distance_mm"] < by_name["kidney_left"]["distance_mm"]
