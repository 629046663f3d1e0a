"""Every export re-imports elsewhere (trimesh, surgtwin) with its geometry, names and colours."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import trimesh

from surgtwin.core.errors import MeshError, SegmentationError, SurgTwinError
from surgtwin.core.export import export
from surgtwin.core.export.gltf import LPS_MM_TO_GLTF, srgb_to_linear
from surgtwin.core.importer import load_volume
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.segmentation.io import read_dicom_seg, read_label_map
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.core.volume_files import read_volume_file

MESH_FORMATS = ["stl", "obj", "ply", "glb", "3mf"]


@pytest.fixture(scope="module")
def meshes() -> list[SurfaceMesh]:
    ball = trimesh.creation.icosphere(subdivisions=3, radius=20.0)
    ball.apply_translation([-30.0, 60.0, -120.0])
    box = trimesh.creation.box(extents=[10.0, 20.0, 30.0])
    box.apply_translation([40.0, -10.0, 15.0])
    tube = trimesh.creation.cylinder(radius=3.0, height=50.0, sections=24)  # a thin vessel
    return [
        SurfaceMesh(ball.vertices, ball.faces, name="liver", color=(0.86, 0.55, 0.40), segment_label=5),
        SurfaceMesh(box.vertices, box.faces, name="left kidney", color=(0.2, 0.4, 0.9), segment_label=7),
        SurfaceMesh(tube.vertices, tube.faces, name="aorta", color=(0.9, 0.1, 0.1), segment_label=9),
    ]


@pytest.fixture(scope="module")
def sample(sample_dicom: Path) -> tuple[Volume, Segmentation]:
    volume, _ = load_volume(sample_dicom / "dicom")
    truth = sample_dicom / "ground_truth"
    return volume, read_label_map(truth / "labels.nii.gz", truth / "labels.json", volume)


def _loaded(path: Path) -> dict[str, trimesh.Trimesh]:
    scene = trimesh.load(path, force="scene")
    out = {}
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        geometry = scene.geometry[name].copy()
        geometry.apply_transform(transform)
        out[node] = geometry
    return out


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_mesh_exports_reimport_with_same_geometry(
    fmt: str, meshes: list[SurfaceMesh], tmp_path: Path
) -> None:
    paths = export(fmt, tmp_path, None, meshes, None)
    loaded: dict[str, trimesh.Trimesh] = {}
    for path in paths:
        if path.suffix != ".mtl":
            for name, geometry in _loaded(path).items():
                loaded[Path(name).stem if fmt in ("stl", "ply") else name] = geometry
    scale = 1e9 if fmt == "glb" else 1.0  # glTF is in metres
    for mesh in meshes:
        key = mesh.name.replace(" ", "_") if fmt in ("stl", "ply", "obj") else mesh.name
        back = loaded[key]
        assert len(back.vertices) == len(mesh.vertices)
        assert back.volume * scale / 1000.0 == pytest.approx(mesh.volume_ml(), rel=0.005)
        assert back.is_watertight == trimesh.Trimesh(mesh.vertices, mesh.faces).is_watertight
        assert back.is_watertight and back.volume > 0  # closed and still facing outward
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_stl_and_ply_state_the_frame(meshes: list[SurfaceMesh], tmp_path: Path) -> None:
    stl = export("stl", tmp_path, None, meshes, None, segments=["liver"])
    header = stl[0].read_bytes()[:80]
    assert b"LPS mm" in header and not header.startswith(b"solid")
    (count,) = struct.unpack("<I", stl[0].read_bytes()[80:84])
    assert count == meshes[0].triangle_count
    ply = export("ply", tmp_path, None, meshes, None, segments=["aorta"])
    assert b"comment frame LPS" in ply[0].read_bytes()[:600]
    colors = trimesh.load(ply[0]).visual.vertex_colors[:, :3]
    assert np.all(colors == [230, 26, 26])


def test_obj_names_and_colours(meshes: list[SurfaceMesh], tmp_path: Path) -> None:
    obj, mtl = export("obj", tmp_path, None, meshes, None)
    assert obj.read_text().startswith("# surgtwin") and "frame LPS" in obj.read_text()[:200]
    scene = trimesh.load(obj, force="scene")
    for mesh in meshes:
        geometry = scene.geometry[mesh.name.replace(" ", "_")]
        diffuse = np.asarray(geometry.visual.material.diffuse[:3]) / 255.0
        assert np.allclose(diffuse, mesh.color, atol=1 / 255)


def test_glb_names_colours_and_transform(meshes: list[SurfaceMesh], tmp_path: Path) -> None:
    (path,) = export("glb", tmp_path, None, meshes, None)
    scene = trimesh.load(path, force="scene")
    assert set(scene.graph.nodes_geometry) == {m.name for m in meshes}
    for mesh in meshes:
        material = scene.geometry[mesh.name].visual.material
        expected = [srgb_to_linear(c) * 255 for c in mesh.color]
        assert np.allclose(material.baseColorFactor[:3], expected, atol=1.0)
    # the stated transform takes a known LPS point to where the vertex ends up in glTF
    document = _glb_json(path)
    stated = np.array(document["asset"]["extras"]["lps_mm_to_gltf"])
    assert np.allclose(stated, LPS_MM_TO_GLTF)
    assert document["nodes"][0]["extras"]["label"] == 5
    liver = meshes[0]
    top = int(np.argmax(liver.vertices[:, 2]))  # most superior point of the liver ...
    expected = stated @ np.append(liver.vertices[top], 1.0)
    back = _loaded(path)["liver"]
    assert np.allclose(back.vertices[top], expected[:3], atol=1e-6)
    assert back.vertices[top, 1] == pytest.approx(back.vertices[:, 1].max())  # ... is the highest (+Y up)
    inverse = np.array(document["asset"]["extras"]["gltf_to_lps_mm"])
    assert np.allclose((inverse @ np.append(back.vertices[top], 1.0))[:3], liver.vertices[top], atol=1e-3)


def _glb_json(path: Path) -> dict:
    data = path.read_bytes()
    (length,) = struct.unpack("<I", data[12:16])
    return json.loads(data[20 : 20 + length])


def test_3mf_names_colours_and_units(meshes: list[SurfaceMesh], tmp_path: Path) -> None:
    (path,) = export("3mf", tmp_path, None, meshes, None)
    assert set(trimesh.load(path, force="scene").geometry) == {m.name for m in meshes}
    with zipfile.ZipFile(path) as package:
        root = ElementTree.fromstring(package.read("3D/3dmodel.model"))
    ns = {"m": "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"}
    assert root.get("unit") == "millimeter"
    bases = root.findall("m:resources/m:basematerials/m:base", ns)
    for obj in root.findall("m:resources/m:object", ns):
        mesh = next(m for m in meshes if m.name == obj.get("name"))
        color = bases[int(obj.get("pindex", "-1"))].get("displaycolor", "")
        assert np.allclose([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)], mesh.color, atol=1 / 255)


def test_dicom_seg_round_trip_is_exact(sample: tuple[Volume, Segmentation], tmp_path: Path) -> None:
    volume, segmentation = sample
    (path,) = export("seg", tmp_path, segmentation, [], volume)
    back = read_dicom_seg(path, volume)
    assert np.array_equal(back.labels, segmentation.labels)
    assert {k: s.name for k, s in back.segments.items()} == {
        k: s.name for k, s in segmentation.segments.items()
    }
    for label, segment in segmentation.segments.items():
        assert np.allclose(back.segments[label].color, segment.color, atol=2 / 255)
    assert back.segments[segmentation.label_of("liver")].terminology["code"] == "10200004"


def test_dicom_seg_of_chosen_segments_renumbers(sample: tuple[Volume, Segmentation], tmp_path: Path) -> None:
    volume, segmentation = sample
    (path,) = export("seg", tmp_path, segmentation, [], volume, segments=["aorta", "liver"])
    back = read_dicom_seg(path, volume)
    assert [s.name for s in back.segments.values()] == ["aorta", "liver"]
    assert np.array_equal(back.labels == 1, segmentation.labels == segmentation.label_of("aorta"))
    assert np.array_equal(back.labels == 2, segmentation.labels == segmentation.label_of("liver"))


def test_dicom_seg_refused_without_dicom_source(
    sample: tuple[Volume, Segmentation], sample_dicom: Path, tmp_path: Path
) -> None:
    volume, segmentation = sample
    nifti_volume = read_volume_file(sample_dicom / "ground_truth" / "labels.nii.gz")
    with pytest.raises(SegmentationError, match="does not come from DICOM"):
        export("seg", tmp_path / "a", segmentation, [], nifti_volume)
    resampled = Volume(volume.voxels, volume.ijk_to_lps, provenance=json.loads(json.dumps(volume.provenance)))
    resampled.provenance["dicom"]["source_instances"] = None
    with pytest.raises(SegmentationError, match="resampled on import"):
        export("seg", tmp_path / "b", segmentation, [], resampled)
    with pytest.raises(SegmentationError, match="needs the DICOM volume"):
        export("seg", tmp_path / "c", segmentation, [], None)
    assert not (tmp_path / "a").exists()  # refused before anything was written


def test_nifti_round_trip(sample: tuple[Volume, Segmentation], tmp_path: Path) -> None:
    volume, segmentation = sample
    image, names = export("nifti", tmp_path, segmentation, [], volume)
    back = read_label_map(image, names, volume)
    assert np.array_equal(back.labels, segmentation.labels) and back.labels.dtype == segmentation.labels.dtype
    assert np.allclose(back.ijk_to_lps, segmentation.ijk_to_lps, atol=1e-4)
    assert {k: s.name for k, s in back.segments.items()} == {
        k: s.name for k, s in segmentation.segments.items()
    }
    raw = read_volume_file(image)  # the file's own geometry, not the reference's
    assert np.allclose(raw.ijk_to_lps, volume.ijk_to_lps, atol=1e-4)


def test_bad_arguments(
    meshes: list[SurfaceMesh], sample: tuple[Volume, Segmentation], tmp_path: Path
) -> None:
    volume, segmentation = sample
    with pytest.raises(SurgTwinError, match="unknown export format 'fbx'"):
        export("fbx", tmp_path, segmentation, meshes, volume)
    with pytest.raises(MeshError, match="no surface meshes"):
        export("stl", tmp_path, segmentation, [], volume)
    with pytest.raises(MeshError, match="build the meshes first"):
        export("stl", tmp_path, segmentation, meshes, volume, segments=["spleen"])
    with pytest.raises(SegmentationError, match="no segment named 'heart'"):
        export("nifti", tmp_path, segmentation, [], volume, segments=["heart"])
    with pytest.raises(MeshError, match="named 'liver'"):
        export("obj", tmp_path, None, [meshes[0], meshes[0]], None)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SurgTwinError, match="not a folder"):
        export("glb", blocker, None, meshes, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failing_write_leaves_no_half_file(
    meshes: list[SurfaceMesh], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surgtwin.core.export import common

    def failing(handle_target: Path, data: bytes) -> Path:
        with common.atomic_write(handle_target) as handle:
            handle.write(data[: len(data) // 2])
            raise OSError("disk full")

    export("3mf", tmp_path, None, meshes, None)
    before = (tmp_path / "segments.3mf").read_bytes()
    monkeypatch.setattr("surgtwin.core.export.threemf.write_atomic", failing)
    with pytest.raises(OSError, match="disk full"):
        export("3mf", tmp_path, None, meshes[:1], None)
    assert (tmp_path / "segments.3mf").read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["segments.3mf"]


def test_sample_case_meshes_export_watertight(sample: tuple[Volume, Segmentation], tmp_path: Path) -> None:
    """Real meshes of the sample case, from the meshing pipeline."""
    from surgtwin.core.mesh import extract_meshes

    volume, segmentation = sample
    result = extract_meshes(segmentation, labels=[segmentation.label_of(n) for n in ("liver", "aorta")])
    meshes = list(result.values())
    assert {m.name for m in meshes} == {"liver", "aorta"}
    for fmt in ("stl", "3mf", "glb"):
        loaded = {}
        for path in export(fmt, tmp_path / fmt, segmentation, meshes, volume):
            loaded.update({Path(k).stem if fmt == "stl" else k: g for k, g in _loaded(path).items()})
        for mesh in meshes:
            back = loaded[mesh.name]
            assert (
                back.is_watertight == trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).is_watertight
            )
            scale = 1e9 if fmt == "glb" else 1.0
            assert back.volume * scale / 1000.0 == pytest.approx(mesh.volume_ml(), rel=0.005)
