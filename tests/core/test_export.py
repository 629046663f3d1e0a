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

from surgtwin.core.case import load_case, save_case
from surgtwin.core.errors import MeshError, SegmentationError, SurgTwinError
from surgtwin.core.export import export
from surgtwin.core.export.dicom_seg import ONE_CLICK_ALGORITHM, name_codes
from surgtwin.core.export.gltf import LPS_MM_TO_GLTF, srgb_to_linear
from surgtwin.core.importer import load_volume
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.io import read_dicom_seg, read_label_map
from surgtwin.core.segmentation.model import Segment, Segmentation
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


@pytest.mark.parametrize(
    ("name", "category", "kind"),
    [
        ("liver_tumour", "49755003", "108369006"),  # Morphologically abnormal structure / Neoplasm
        ("Liver Tumor", "49755003", "108369006"),
        ("kidney_cyst", "49755003", "367643001"),  # Cyst
        ("bone_metastasis", "49755003", "14799000"),  # Neoplasm, metastatic
        ("lung-nodule", "49755003", "27925004"),  # Nodule
        ("fatty_liver", "91723000", "10200004"),  # Liver, not adipose tissue
        ("liver", "91723000", "10200004"),
        ("fat", "91723000", "55603005"),
        ("vessels", "91723000", "59820001"),  # Blood vessel
        ("airways", "91723000", "89187006"),  # Airway structure
        ("portal_vein", "91723000", "29092000"),  # Vein
        ("spleenic", "85756007", "85756007"),  # no whole word known: Tissue
        ("bones_and_stuff", "91723000", "272673000"),
    ],
)
def test_dicom_seg_codes_match_whole_words(name: str, category: str, kind: str) -> None:
    codes = name_codes(name)
    assert (codes[0].value, codes[1].value) == (category, kind)
    assert all(c.scheme_designator == "SCT" for c in codes)


def test_dicom_seg_codes_and_algorithm_in_the_file(
    sample: tuple[Volume, Segmentation], tmp_path: Path
) -> None:
    import pydicom

    volume, original = sample
    labels = np.zeros_like(original.labels)
    labels[original.labels == original.label_of("liver")] = 1
    labels[original.labels == original.label_of("aorta")] = 2
    segments = {
        1: Segment("liver_tumour", (0.6, 0.85, 0.35), provenance={"tool": "one_click_twin", "version": 1}),
        2: Segment("kidney_cyst", (0.2, 0.4, 0.9), provenance={"tool": "paint"}),
    }
    seg = Segmentation(labels, original.ijk_to_lps.copy(), segments, name="mixed")
    (path,) = export("seg", tmp_path, seg, [], volume)
    items = pydicom.dcmread(path).SegmentSequence
    assert [i.SegmentAlgorithmType for i in items] == ["AUTOMATIC", "SEMIAUTOMATIC"]
    assert items[0].SegmentAlgorithmName == ONE_CLICK_ALGORITHM
    assert [i.SegmentedPropertyTypeCodeSequence[0].CodeValue for i in items] == ["108369006", "367643001"]
    assert {i.SegmentedPropertyCategoryCodeSequence[0].CodeValue for i in items} == {"49755003"}
    back = read_dicom_seg(path, volume)
    assert np.array_equal(back.labels, labels)
    assert back.segments[1].provenance["algorithm_type"] == "AUTOMATIC"


def test_dicom_seg_names_that_collide_when_truncated_import_uniquely(
    sample: tuple[Volume, Segmentation], tmp_path: Path
) -> None:
    volume, original = sample
    labels = np.zeros_like(original.labels)
    labels[original.labels == original.label_of("liver")] = 1
    labels[original.labels == original.label_of("aorta")] = 2
    stem = "x" * 64
    segments = {1: Segment(stem + "_one", (0.1, 0.2, 0.3)), 2: Segment(stem + "_two", (0.3, 0.2, 0.1))}
    seg = Segmentation(labels, original.ijk_to_lps.copy(), segments, name="long names")
    (path,) = export("seg", tmp_path, seg, [], volume)
    back = read_dicom_seg(path, volume)
    assert [s.name for s in back.segments.values()] == [stem, stem + "_2"]
    assert any(f"-> {stem + '_2'!r}" in d for d in back.provenance["decisions"])
    scene = Scene()
    seg_id = scene.add(back)
    save_case(scene, tmp_path / "case.stwin")
    loaded = load_case(tmp_path / "case.stwin").segmentations[seg_id]
    assert [s.name for s in loaded.segments.values()] == [stem, stem + "_2"]
    assert np.array_equal(loaded.labels, labels)


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
            assert back.is_watertight is True
            scale = 1e9 if fmt == "glb" else 1.0
            assert back.volume * scale / 1000.0 == pytest.approx(mesh.volume_ml(), rel=0.005)


def test_lidc_twin_bone_and_skin_export_watertight(shared_data: Path, tmp_path: Path) -> None:
    """The real one-click twin of a chest CT: decimated bone and skin (where repair split
    pinch points) come back closed from STL and 3MF, whose readers merge coincident vertices."""
    from surgtwin.core.mesh import extract_meshes
    from surgtwin.core.segmentation.one_click import one_click_twin, to_segmentation

    volume, _ = load_volume(shared_data / "lidc0314_chest_ct" / "dicom")
    segmentation = to_segmentation(one_click_twin(volume), volume)
    labels = [segmentation.label_of(n) for n in ("bone", "skin")]
    meshes = list(extract_meshes(segmentation, labels=labels).values())
    for mesh in meshes:
        assert mesh.provenance["quality"]["ok"] and not mesh.provenance["over_budget"], mesh.name
    for fmt in ("stl", "3mf"):
        loaded = {}
        for path in export(fmt, tmp_path / fmt, segmentation, meshes, volume):
            loaded.update({Path(k).stem if fmt == "stl" else k: g for k, g in _loaded(path).items()})
        for mesh in meshes:
            back = loaded[mesh.name]
            assert back.is_watertight is True, (fmt, mesh.name)
            assert back.volume / 1000.0 == pytest.approx(mesh.volume_ml(), rel=0.005), (fmt, mesh.name)
