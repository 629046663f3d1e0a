"""Case files (.stwin): round trip, refusal of damaged files, migration, atomic save."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from surgtwin.core import case as case_module
from surgtwin.core.case import FORMAT_VERSION, MIGRATIONS, load_case, remove_stale_temps, save_case
from surgtwin.core.case import format as case_format
from surgtwin.core.errors import CancelledError, CaseFileError
from surgtwin.core.findings import Finding
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.progress import Progress
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.volume import Volume

REPO_ROOT = Path(__file__).resolve().parents[2]


def oblique_affine() -> np.ndarray:
    """Spacing 0.7/0.7/2.5 mm, rotated about two axes, plus a gantry-tilt-like shear."""
    a, b = np.deg2rad(17.0), np.deg2rad(-8.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    shear = np.array([[1, 0, 0], [0, 1, 0.13], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ shear @ np.diag([0.7, 0.7, 2.5])
    affine[:3, 3] = [-120.25, 98.1, -301.7]
    return affine


def make_scene() -> Scene:
    rng = np.random.default_rng(7)
    ct = rng.normal(0, 400, (6, 7, 8)).astype(np.float32)
    ct[0, 0, :3] = [np.nan, -0.0, np.inf]  # bit-exact means these survive too
    mr = rng.integers(-32768, 32767, (5, 4, 3), dtype=np.int16)
    scene = Scene("Liver resection, patient 17")
    scene.record("import_dicom", folder="/data/ct", series_uid="1.2.3")
    scene.add(
        Volume(
            ct,
            oblique_affine(),
            modality="CT",
            units="HU",
            name="arterial",
            provenance={"series_uid": "1.2.3", "slices": np.int64(6), "spacing": np.array([0.7, 2.5])},
            findings=[Finding("gantry_tilt", "The slices are tilted by 8°.", "/data/ct/1.dcm")],
            decisions=["kept the tilted grid as acquired"],
        ),
        "vol-ct",
    )
    scene.add(Volume(mr, np.diag([1.1, 0.9, 3.0, 1.0]), modality="MR", name="T1"), "vol-mr")
    labels = np.zeros((6, 7, 8), dtype=np.uint16)
    labels[1:4, 2:5, 3:7] = 3
    labels[4, 0, 0] = 300
    seg = Segmentation(labels, oblique_affine(), name="organs", reference_volume_id="vol-ct")
    seg.segments[300] = Segment("liver", (0.86, 0.55, 0.4), {"scheme": "SCT", "code": "10200004"})
    seg.segments[3] = Segment("aorta", (0.9, 0.2, 0.2), visible=False, provenance={"tool": "paint"})
    seg.provenance = {"tool": "one_click", "threshold": np.float32(150.0)}
    scene.add(seg, "seg-1")
    vertices = rng.normal(0, 50, (5, 3))
    vertices[0] = [-0.0, 1e-300, 123.456789012345]
    faces = np.array([[0, 1, 2], [0, 2, 3], [1, 3, 4]], dtype=np.int64)
    scene.add(
        SurfaceMesh(vertices, faces, "aorta", (0.9, 0.2, 0.2), 3, "seg-1", {"smoothing": 0.5}), "mesh-1"
    )
    return scene


def assert_same_scene(loaded: Scene, original: Scene) -> None:
    assert loaded.title == original.title and loaded.created == original.created
    assert loaded.ids() == original.ids()
    assert loaded.provenance == json.loads(json.dumps(original.provenance, default=case_format._json_default))
    for oid in original.ids():
        a, b = loaded.get(oid), original.get(oid)
        assert type(a) is type(b)
        if isinstance(b, Segmentation):
            assert a.labels.dtype == b.labels.dtype and a.labels.tobytes() == b.labels.tobytes()
            assert np.array_equal(a.ijk_to_lps, b.ijk_to_lps) and a.segments == b.segments
            assert list(a.segments) == list(b.segments)  # display order too
            assert (a.name, a.reference_volume_id) == (b.name, b.reference_volume_id)
            assert a.provenance == json.loads(json.dumps(b.provenance, default=case_format._json_default))
            continue
        if isinstance(b, SurfaceMesh):
            assert a.vertices.tobytes() == b.vertices.tobytes() and a.faces.tobytes() == b.faces.tobytes()
            assert (a.name, a.color, a.segment_label, a.segmentation_id, a.provenance) == (
                b.name,
                b.color,
                b.segment_label,
                b.segmentation_id,
                b.provenance,
            )
            continue
        assert a.voxels.dtype == b.voxels.dtype and a.voxels.shape == b.voxels.shape
        assert a.voxels.tobytes() == b.voxels.tobytes()
        assert np.array_equal(a.ijk_to_lps, b.ijk_to_lps)  # exact, not approximate
        assert (a.name, a.modality, a.units) == (b.name, b.modality, b.units)
        assert a.findings == b.findings and a.decisions == b.decisions
        assert a.provenance == json.loads(json.dumps(b.provenance, default=case_format._json_default))


def strays(directory: Path, target: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p != target)


# --- round trip ---------------------------------------------------------------------
def test_round_trip_preserves_everything_bit_exactly(tmp_path: Path) -> None:
    scene = make_scene()
    target = tmp_path / "case.stwin"
    save_case(scene, target)
    assert scene.provenance[-1]["action"] == "save_case"
    assert scene.provenance[-1]["parameters"] == {"file": "case.stwin"}
    loaded = load_case(target)
    assert_same_scene(loaded, scene)
    assert np.isnan(loaded.get("vol-ct").voxels[0, 0, 0])
    assert strays(tmp_path, target) == []
    assert (target.stat().st_mode & 0o777) == 0o600  # new case files hold patient data


def test_layout_manifest_first_deflated_and_arrays_stored(tmp_path: Path) -> None:
    target = tmp_path / "case.stwin"
    save_case(make_scene(), target)
    with zipfile.ZipFile(target) as archive:
        infos = archive.infolist()
        manifest = json.loads(archive.read("manifest.json"))
    assert infos[0].filename == "manifest.json" and infos[0].compress_type == zipfile.ZIP_DEFLATED
    assert [i.filename for i in infos[1:]] == [
        "volumes/vol-ct.npy",
        "volumes/vol-mr.npy",
        "segmentations/seg-1.npy",
        "meshes/mesh-1/vertices.npy",
        "meshes/mesh-1/faces.npy",
    ]
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos[1:])
    assert manifest["format"] == "surgtwin-case" and manifest["format_version"] == FORMAT_VERSION == 2
    assert {"software_version", "created", "saved", "title", "objects", "provenance"} <= set(manifest)
    ct = manifest["objects"][0]
    voxels = ct["arrays"]["voxels"]
    assert ct["kind"] == "volume" and voxels["dtype"] == "<f4" and voxels["shape"] == [6, 7, 8]
    seg, mesh = manifest["objects"][2:]
    assert seg["kind"] == "segmentation" and seg["reference_volume_id"] == "vol-ct"
    assert seg["arrays"]["labels"]["dtype"] == "<u2" and [x["label"] for x in seg["segments"]] == [300, 3]
    assert mesh["kind"] == "mesh" and mesh["segmentation_id"] == "seg-1" and mesh["segment_label"] == 3
    assert mesh["arrays"]["faces"]["shape"] == [3, 3] and mesh["arrays"]["vertices"]["dtype"] == "<f8"
    assert ct["provenance"]["slices"] == 6 and ct["provenance"]["spacing"] == [0.7, 2.5]


def test_saving_again_keeps_permissions_and_appends_provenance(tmp_path: Path) -> None:
    target = tmp_path / "case.stwin"
    scene = make_scene()
    save_case(scene, target)
    target.chmod(0o640)
    scene.title = "renamed"
    save_case(scene, target)
    loaded = load_case(target)
    assert loaded.title == "renamed" and (target.stat().st_mode & 0o777) == 0o640
    assert [p["action"] for p in loaded.provenance] == ["import_dicom", "save_case", "save_case"]


def test_saving_through_a_symlink_replaces_the_real_file(tmp_path: Path) -> None:
    real = tmp_path / "real.stwin"
    link = tmp_path / "link.stwin"
    save_case(Scene("old"), real)
    link.symlink_to(real)
    save_case(Scene("new"), link)
    assert link.is_symlink() and load_case(real).title == "new"


_DTYPES = st.sampled_from(["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(voxels=_DTYPES.flatmap(lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=3, max_dims=3, max_side=5))))
def test_any_supported_voxel_type_round_trips(voxels: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as directory:
        scene = Scene()
        scene.add(Volume(voxels, oblique_affine()), "vol-x")
        save_case(scene, Path(directory) / "c.stwin")
        loaded = load_case(Path(directory) / "c.stwin").get("vol-x").voxels
    assert loaded.dtype == voxels.dtype and loaded.tobytes() == voxels.tobytes()


def test_big_endian_and_fortran_order_voxels_are_stored_faithfully(tmp_path: Path) -> None:
    values = np.arange(60, dtype=">i4").reshape(3, 4, 5)
    scene = Scene()
    scene.add(Volume(values, np.eye(4)), "vol-be")
    scene.add(Volume(np.asfortranarray(values.astype("<f8")), np.eye(4)), "vol-f")
    save_case(scene, tmp_path / "c.stwin")
    loaded = load_case(tmp_path / "c.stwin")
    assert np.array_equal(loaded.get("vol-be").voxels, values)
    assert np.array_equal(loaded.get("vol-f").voxels, values)


# --- damaged files --------------------------------------------------------------------
def rewrite(
    source: Path,
    target: Path,
    manifest: Callable[[dict], dict] | None = None,
    members: Callable[[dict[str, bytes]], dict[str, bytes]] | None = None,
) -> Path:
    """Copy a case file, editing its manifest and/or member bytes (CRCs stay valid)."""
    with zipfile.ZipFile(source) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(content["manifest.json"])
    if manifest is not None:
        content["manifest.json"] = json.dumps(manifest(data)).encode()
    if members is not None:
        content = members(content)
    with zipfile.ZipFile(target, "w") as archive:
        for name, blob in content.items():
            archive.writestr(name, blob)
    return target


def _flip_last_byte(content: dict[str, bytes]) -> dict[str, bytes]:
    blob = bytearray(content["volumes/vol-mr.npy"])
    blob[-1] ^= 0x01
    return {**content, "volumes/vol-mr.npy": bytes(blob)}


def _set(obj: dict, key: str, value: object) -> dict:
    obj[key] = value
    return obj


def _set_mr(key: str, value: object) -> Callable[[dict], dict]:
    def edit(manifest: dict) -> dict:
        manifest["objects"][1][key] = value
        return manifest

    return edit


def _set_array(index: int, role: str, key: str, value: object) -> Callable[[dict], dict]:
    def edit(manifest: dict) -> dict:
        manifest["objects"][index]["arrays"][role][key] = value
        return manifest

    return edit


def _set_mr_array(key: str, value: object) -> Callable[[dict], dict]:
    return _set_array(1, "voxels", key, value)


def _set_obj(index: int, key: str, value: object) -> Callable[[dict], dict]:
    def edit(manifest: dict) -> dict:
        manifest["objects"][index][key] = value
        return manifest

    return edit


def _set_segment(key: str, value: object) -> Callable[[dict], dict]:
    def edit(manifest: dict) -> dict:
        manifest["objects"][2]["segments"][0][key] = value
        return manifest

    return edit


def _npy_replaced(member: str, array: np.ndarray) -> Callable[[dict], dict]:
    """Swap a member for a valid .npy of ``array`` and fix the manifest's checksum."""
    from surgtwin.core.case.arrays import npy_digest

    def edit(manifest: dict) -> dict:
        for entry in manifest["objects"]:
            for descriptor in entry["arrays"].values():
                if descriptor["file"] == member:
                    descriptor["sha256"] = npy_digest(array)[0]
        return manifest

    return edit


def _members_replaced(member: str, array: np.ndarray) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    import io

    def edit(content: dict[str, bytes]) -> dict[str, bytes]:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return {**content, member: buffer.getvalue()}

    return edit


_BAD_LABELS = np.zeros((6, 7, 8), dtype="<u2")
_BAD_LABELS[0, 0, 0] = 7
_BAD_FACES = np.array([[0, 1, 2], [0, 2, 3], [1, 3, 9]], dtype="<i8")
_NAN_VERTICES = np.zeros((5, 3))
_NAN_VERTICES[2, 1] = np.nan


DAMAGE = {
    "missing manifest": (
        None,
        lambda c: {k: v for k, v in c.items() if k != "manifest.json"},
        "no manifest.json",
    ),
    "manifest not json": (None, lambda c: {**c, "manifest.json": b"{oops"}, "not valid JSON"),
    "manifest not object": (None, lambda c: {**c, "manifest.json": b"[1, 2]"}, "not a JSON object"),
    "wrong format": (lambda m: _set(m, "format", "other-app"), None, "not a surgtwin case file"),
    "no version": (lambda m: _set(m, "format_version", "1"), None, "no valid format_version"),
    "newer version": (
        lambda m: _set(m, "format_version", FORMAT_VERSION + 4),
        None,
        f"made by a newer surgtwin, version {FORMAT_VERSION + 4}; this one reads up to {FORMAT_VERSION}",
    ),
    "member missing": (None, lambda c: {k: v for k, v in c.items() if k != "volumes/vol-mr.npy"}, "missing"),
    "checksum": (None, _flip_last_byte, "damaged: volumes/vol-mr.npy does not match its checksum"),
    "shape mismatch": (
        _set_mr_array("shape", [3, 4, 5]),
        None,
        "holds int16 (5, 4, 3) but the manifest says",
    ),
    "dtype mismatch": (
        _set_mr_array("dtype", "<u2"),
        None,
        "holds int16 (5, 4, 3) but the manifest says uint16",
    ),
    "size mismatch": (_set_mr_array("shape", [50, 4, 3]), None, "does not fit"),
    "bad dtype": (_set_mr_array("dtype", "|O"), None, "voxel type '|O'"),
    "absurd total": (_set_mr_array("shape", [10**6, 10**6, 10**6]), None, "absurd total size"),
    "absurd volume": (_set_mr_array("shape", [4096, 4096, 4096]), None, "vol-mr.npy claims an absurd size"),
    "bad sha": (_set_mr_array("sha256", "abc"), None, "invalid sha256"),
    "bad affine": (_set_mr("ijk_to_lps", [[1, 0], [0, 1]]), None, "invalid ijk_to_lps"),
    "singular affine": (_set_mr("ijk_to_lps", np.zeros((4, 4)).tolist()), None, "singular"),
    "bad findings": (_set_mr("findings", [{"nope": 1}]), None, "invalid findings"),
    "bad decisions": (_set_mr("decisions", [{"x": 1}]), None, "invalid decisions"),
    "bad title": (lambda m: _set(m, "title", 5), None, "invalid title"),
    "unknown kind": (_set_mr("kind", "hologram"), None, "'hologram' object this surgtwin cannot read"),
    "repeated id": (_set_mr("id", "vol-ct"), None, "repeated object id"),
    "unsafe id": (_set_mr("id", "../x"), None, "invalid or repeated object id"),
    "manifest points outside": (_set_mr_array("file", "../../etc/passwd"), None, "unsafe member name"),
    "no arrays": (_set_mr("arrays", None), None, "invalid array list for vol-mr"),
    # segmentations
    "labels checksum": (
        None,
        lambda c: {**c, "segmentations/seg-1.npy": c["segmentations/seg-1.npy"][:-1] + b"\x09"},
        "damaged: segmentations/seg-1.npy does not match its checksum",
    ),
    "labels missing": (
        None,
        lambda c: {k: v for k, v in c.items() if k != "segmentations/seg-1.npy"},
        "member segmentations/seg-1.npy is missing",
    ),
    "labels float": (_set_array(2, "labels", "dtype", "<f4"), None, "seg-1.npy has voxel type '<f4'"),
    "labels not named": (
        _npy_replaced("segmentations/seg-1.npy", _BAD_LABELS),
        _members_replaced("segmentations/seg-1.npy", _BAD_LABELS),
        "holds label 7, which its segment table does not name",
    ),
    "segment table": (_set_obj(2, "segments", {"1": "liver"}), None, "invalid segment table"),
    "segment label": (_set_segment("label", 70000), None, "invalid segment label 70000"),
    "segment colour": (_set_segment("color", [1, 2]), None, "invalid colour of segment 'liver'"),
    "segment visible": (_set_segment("visible", "yes"), None, "invalid visibility of segment 'liver'"),
    "segment repeated": (_set_segment("name", "aorta"), None, "repeats segment label 3 or name 'aorta'"),
    "reference volume": (_set_obj(2, "reference_volume_id", "vol-zz"), None, "refers to volume 'vol-zz'"),
    "seg singular": (_set_obj(2, "ijk_to_lps", np.zeros((4, 4)).tolist()), None, "singular ijk_to_lps"),
    # meshes
    "faces missing": (
        None,
        lambda c: {k: v for k, v in c.items() if k != "meshes/mesh-1/faces.npy"},
        "member meshes/mesh-1/faces.npy is missing",
    ),
    "faces out of range": (
        _npy_replaced("meshes/mesh-1/faces.npy", _BAD_FACES),
        _members_replaced("meshes/mesh-1/faces.npy", _BAD_FACES),
        "mesh mesh-1 is not valid (faces refer to vertices that do not exist)",
    ),
    "vertices nan": (
        _npy_replaced("meshes/mesh-1/vertices.npy", _NAN_VERTICES),
        _members_replaced("meshes/mesh-1/vertices.npy", _NAN_VERTICES),
        "vertices.npy holds vertices that are not finite numbers",
    ),
    "vertices 2d": (_set_array(3, "vertices", "shape", [5, 3, 1]), None, "invalid shape for meshes/mesh-1"),
    "vertices f4": (_set_array(3, "vertices", "dtype", "<f4"), None, "vertices.npy has voxel type '<f4'"),
    "mesh segmentation": (_set_obj(3, "segmentation_id", "vol-ct"), None, "refers to segmentation 'vol-ct'"),
    "mesh colour": (_set_obj(3, "color", "red"), None, "invalid colour of mesh mesh-1"),
    "mesh label": (_set_obj(3, "segment_label", "3"), None, "invalid segment label of mesh mesh-1"),
    "dotdot member": (None, lambda c: {**c, "../evil.npy": b"x"}, "unsafe name '../evil.npy'"),
    "absolute member": (None, lambda c: {**c, "/etc/cron.d/x": b"x"}, "unsafe name '/etc/cron.d/x'"),
    "npy header garbage": (
        None,
        lambda c: {**c, "volumes/vol-mr.npy": b"NOTNUMPY" + c["volumes/vol-mr.npy"][8:]},
        "not a NumPy array file",
    ),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_files_are_refused_with_the_file_named(tmp_path: Path, kind: str) -> None:
    good = tmp_path / "good.stwin"
    save_case(make_scene(), good)
    edit_manifest, edit_members, expected = DAMAGE[kind]
    bad = rewrite(good, tmp_path / "bad.stwin", edit_manifest, edit_members)
    with pytest.raises(CaseFileError) as info:
        load_case(bad)
    message = str(info.value)
    assert str(bad) in message and expected in message, message


@pytest.mark.parametrize("keep", [0, 10, 1000, 0.5, 0.999])
def test_truncated_or_non_zip_files_are_refused(tmp_path: Path, keep: float) -> None:
    good = tmp_path / "good.stwin"
    save_case(make_scene(), good)
    blob = good.read_bytes()
    bad = tmp_path / "bad.stwin"
    bad.write_bytes(blob[: int(keep * len(blob)) if isinstance(keep, float) else keep])
    with pytest.raises(CaseFileError, match=r"not a ZIP container.*truncated") as info:
        load_case(bad)
    assert str(bad) in str(info.value)


def test_corrupted_stored_bytes_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "case.stwin"
    save_case(make_scene(), target)
    blob = bytearray(target.read_bytes())
    blob[blob.index(b"NUMPY", 200) + 200] ^= 0xFF  # inside the first array's voxels
    target.write_bytes(bytes(blob))
    with pytest.raises(CaseFileError, match=r"damaged: volumes/vol-ct\.npy") as info:
        load_case(target)
    assert str(target) in str(info.value)


def test_a_member_flagged_encrypted_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "case.stwin"
    save_case(make_scene(), target)
    blob = bytearray(target.read_bytes())
    # Set the "encrypted" bit in the central directory entry of the first member.
    central = blob.index(b"PK\x01\x02")
    blob[central + 8] |= 0x01
    target.write_bytes(bytes(blob))
    with pytest.raises(CaseFileError, match="encrypted") as info:
        load_case(target)
    assert str(target) in str(info.value)


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError, match="no such file"):
        load_case(tmp_path / "absent.stwin")
    with pytest.raises(CaseFileError, match="not a file"):
        load_case(tmp_path)


# --- migration ------------------------------------------------------------------------
def write_v0_case(target: Path) -> np.ndarray:
    """A case as development builds wrote it (format version 0)."""
    voxels = np.arange(24, dtype="<i2").reshape(2, 3, 4)
    scratch = Scene()
    scratch.add(Volume(voxels, oblique_affine()), "vol-old")
    save_case(scratch, target)
    with zipfile.ZipFile(target) as archive:
        npy = archive.read("volumes/vol-old.npy")
        v2 = json.loads(archive.read("manifest.json"))["objects"][0]
    v1 = v2 | v2["arrays"]["voxels"]
    manifest = {
        "format": "surgtwin-case",
        "format_version": 0,
        "software_version": "0.0.1",
        "created": "2025-01-02T03:04:05+00:00",
        "title": "old case",
        "volumes": [
            {k: v1[k] for k in ("id", "name", "file", "sha256", "dtype", "shape", "modality", "units")}
            | {"affine": v1["ijk_to_lps"]}
        ],
    }
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        archive.writestr("volumes/vol-old.npy", npy)
    return voxels


def test_version_0_case_is_migrated_on_load(tmp_path: Path) -> None:
    voxels = write_v0_case(tmp_path / "old.stwin")
    scene = load_case(tmp_path / "old.stwin")
    assert scene.title == "old case" and scene.created == "2025-01-02T03:04:05+00:00"
    volume = scene.get("vol-old")
    assert np.array_equal(volume.voxels, voxels) and np.array_equal(volume.ijk_to_lps, oblique_affine())
    assert [p["action"] for p in scene.provenance] == ["migrate_case"]
    assert scene.provenance[0]["parameters"] == {"from_version": 0, "to_version": FORMAT_VERSION}
    save_case(scene, tmp_path / "new.stwin")  # and it saves in the current format
    with zipfile.ZipFile(tmp_path / "new.stwin") as archive:
        assert json.loads(archive.read("manifest.json"))["format_version"] == FORMAT_VERSION


def test_migrations_run_in_order_up_to_the_current_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pretend the current format is 3, to see the chain 0 -> 1 -> 2 -> 3 applied in order."""
    calls: list[int] = []
    originals = dict(MIGRATIONS)

    def spy(version: int) -> Callable[[dict], dict]:
        def step(manifest: dict) -> dict:
            calls.append(version)
            return originals[version](manifest)

        return step

    def v2(manifest: dict) -> dict:
        calls.append(2)
        assert "arrays" in manifest["objects"][0]  # sees the output of step 1
        return manifest | {"format_version": 3}

    monkeypatch.setitem(MIGRATIONS, 0, spy(0))
    monkeypatch.setitem(MIGRATIONS, 1, spy(1))
    monkeypatch.setitem(MIGRATIONS, 2, v2)
    monkeypatch.setattr(case_format, "FORMAT_VERSION", 3)
    write_v0_case(tmp_path / "old.stwin")
    assert load_case(tmp_path / "old.stwin").provenance[-1]["parameters"]["to_version"] == 3
    assert calls == [0, 1, 2]


def write_v1_case(target: Path) -> Scene:
    """A case as surgtwin format 1 wrote it: volumes only, array fields at the top level."""
    scene = make_scene()
    for oid in ("seg-1", "mesh-1"):
        scene.remove(oid)
    save_case(scene, target)
    with zipfile.ZipFile(target) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(content["manifest.json"])
    manifest["format_version"] = 1
    for entry in manifest["objects"]:
        entry.update(entry.pop("arrays")["voxels"])
    content["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, blob in content.items():
            archive.writestr(name, blob)
    scene.provenance.pop()  # the scratch save
    return scene


def test_version_1_case_is_migrated_to_version_2(tmp_path: Path) -> None:
    original = write_v1_case(tmp_path / "v1.stwin")
    with zipfile.ZipFile(tmp_path / "v1.stwin") as archive:
        v1 = json.loads(archive.read("manifest.json"))
    assert "arrays" not in v1["objects"][0] and "sha256" in v1["objects"][0]
    migrated, passed = case_module.migrations.migrate(v1, 2)
    assert passed == [1] and migrated["format_version"] == 2
    assert migrated["objects"][0]["arrays"]["voxels"] == {
        k: v1["objects"][0][k] for k in ("file", "sha256", "dtype", "shape")
    }
    assert "sha256" not in migrated["objects"][0] and "sha256" in v1["objects"][0]  # input untouched
    loaded = load_case(tmp_path / "v1.stwin")
    assert loaded.provenance[-1]["action"] == "migrate_case"
    assert loaded.provenance[-1]["parameters"] == {"from_version": 1, "to_version": 2}
    loaded.provenance.pop()
    loaded.provenance = [p for p in loaded.provenance if p["action"] != "save_case"]
    assert_same_scene(loaded, original)


def test_a_version_without_migration_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_v0_case(tmp_path / "old.stwin")
    monkeypatch.delitem(MIGRATIONS, 0)
    with pytest.raises(CaseFileError, match="can no longer read case format version 0"):
        load_case(tmp_path / "old.stwin")


# --- failed and cancelled saves --------------------------------------------------------
def test_failed_or_cancelled_save_leaves_previous_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "case.stwin"
    save_case(Scene("previous"), target)
    before = target.read_bytes()

    progress = Progress(listener=lambda stage, done, total: progress.cancel() if done else None)
    with pytest.raises(CancelledError):
        save_case(make_scene(), target, progress=progress)
    unserialisable = make_scene()
    unserialisable.get("vol-ct").provenance["thing"] = object()
    with pytest.raises(CaseFileError, match=r"cannot save .*JSON"):
        save_case(unserialisable, target)
    assert target.read_bytes() == before and strays(tmp_path, target) == []
    with pytest.raises(CaseFileError, match=r"cannot save .*previous file"):
        save_case(make_scene(), tmp_path / "no-such-dir" / "case.stwin")


def test_stale_temps_are_removed_but_live_ones_kept(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    target = tmp_path / "case.stwin"
    stale = tmp_path / ".case.stwin.tmp-999999-dead"
    live = tmp_path / ".case.stwin.tmp-1-alive"
    other = tmp_path / ".other.stwin.tmp-1-x"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    with open(live, "rb") as held:  # another writer still holds its lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        save_case(Scene("x"), target)
        assert not stale.exists() and live.exists() and other.exists()
    assert remove_stale_temps(target) == [live]
    assert load_case(target).title == "x"


# --- a save killed at random moments -----------------------------------------------------
KILL_SCRIPT = """
import sys, time
import numpy as np
from surgtwin.core.case import save_case
from surgtwin.core.scene import Scene
from surgtwin.core.volume import Volume
fill = float(sys.argv[2])
scene = Scene(f"generation {fill:g}")
scene.add(Volume(np.full((256, 256, 256), fill, np.float32), np.eye(4)), "vol-big")  # 64 MiB
print("ready", flush=True)
start = time.perf_counter()
save_case(scene, sys.argv[1])
print("done", time.perf_counter() - start, flush=True)
"""


def _start_save(target: Path, fill: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(target), str(fill)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def _generation(target: Path) -> float:
    scene = load_case(target)  # also verifies every checksum
    voxels = scene.get("vol-big").voxels
    assert voxels.shape == (256, 256, 256) and np.all(voxels == voxels.flat[0])
    assert scene.title == f"generation {voxels.flat[0]:g}"
    return float(voxels.flat[0])


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX-only")
def test_save_killed_at_any_moment_leaves_previous_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "case.stwin"
    first = _start_save(target, 1.0)
    out, _ = first.communicate(timeout=30)
    duration = float(out.split()[-1])  # the save alone, without interpreter start-up
    assert _generation(target) == 1.0

    current = 1.0
    outcomes = []
    delays = [duration * f for f in (0.0, 0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0, 1.1, 1.5)]
    for n, delay in enumerate(delays, start=2):
        process = _start_save(target, float(n))
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        found = _generation(target)
        assert found in (current, float(n)), f"after a kill at {delay:.3f}s the file holds generation {found}"
        outcomes.append("new" if found == n else "old")
        current = found
        leftovers = strays(tmp_path, target)
        assert all(name.startswith(".case.stwin.tmp-") for name in leftovers), leftovers
    assert "old" in outcomes, f"no kill landed inside a save ({duration=:.3f}s, {outcomes})"

    save_case(load_case(target), target)  # the next save cleans up what killed saves left
    assert strays(tmp_path, target) == [] and _generation(target) == current


def test_case_package_exports() -> None:
    assert case_module.save_case is save_case and case_module.load_case is load_case
    assert 0 in MIGRATIONS and 1 in MIGRATIONS
