"""The case file (.stwin): one ZIP file holding a whole scene.

Layout: ``manifest.json`` first (deflated), then the objects' arrays as ``.npy`` members
(stored, so a reader could map them): ``volumes/<id>.npy``, ``segmentations/<id>.npy``,
``meshes/<id>/vertices.npy`` and ``faces.npy``. The manifest describes every object,
including each member's sha256, dtype and shape; see docs/case-files.md.

Loading trusts nothing: member names are only looked up (never extracted), sizes are
checked against the manifest before anything is allocated, and every failure becomes
a :class:`CaseFileError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from surgtwin import __version__
from surgtwin.core.case.arrays import MemberError, write_npy
from surgtwin.core.case.atomic import atomic_write
from surgtwin.core.case.migrations import MigrationError, migrate
from surgtwin.core.case.objects import READERS, WRITERS
from surgtwin.core.case.reader import (
    MANIFEST_NAME,
    MAX_ARRAY_BYTES,
    CaseReader,
    declared_bytes,
    is_safe_member_name,
)
from surgtwin.core.case.reader import fail as _fail
from surgtwin.core.errors import CaseFileError
from surgtwin.core.progress import Progress, ensure_progress
from surgtwin.core.scene import Scene, is_valid_object_id, make_provenance_entry, utc_now_iso

FORMAT_NAME = "surgtwin-case"
FORMAT_VERSION = 2

# Limits that no real case reaches; beyond them a file is refused as absurd.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 100_000
MAX_VOLUME_BYTES = MAX_ARRAY_BYTES  # any one array
MAX_CASE_BYTES = 256 * 1024**3
_ZIP64_THRESHOLD = 2**31 - 2**20  # stream members above this with zip64 headers


# --- saving ---------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    """Provenance often carries numpy scalars/arrays and paths from importers."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _zip_info(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = compression
    return info


def save_case(scene: Scene, path: str | Path, *, progress: Progress | None = None) -> None:
    """Write ``scene`` to ``path`` atomically and record the save in its provenance.

    Whatever happens (an error, cancellation, the process being killed, power loss
    after the call returned), ``path`` holds either the previous case or this one.
    """
    path = Path(path)
    progress = ensure_progress(progress)
    entry = make_provenance_entry("save_case", file=path.name)
    objects: list[dict[str, Any]] = []
    members: list[tuple[str, np.ndarray]] = []
    progress.start("checking the case", len(scene))
    for object_id in scene.ids():
        kind = scene.kind_of(object_id)
        writer = WRITERS.get(kind)
        if writer is None:
            raise CaseFileError(
                f"cannot save {path}: case format {FORMAT_VERSION} cannot hold {kind} objects"
            )
        try:
            object_entry, object_members = writer(object_id, scene.get(object_id))
        except MemberError as exc:
            raise CaseFileError(f"cannot save {path}: {exc}") from exc
        objects.append(object_entry)
        members.extend(object_members)
        progress.advance()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "software_version": __version__,
        "created": scene.created,
        "saved": entry["time"],
        "title": scene.title,
        "objects": objects,
        "provenance": [*scene.provenance, entry],
    }
    try:
        text = json.dumps(manifest, indent=1, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise CaseFileError(
            f"cannot save {path}: the case metadata cannot be written as JSON ({exc})"
        ) from exc

    progress.start("saving the case", len(members))
    try:
        with atomic_write(path) as handle, zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
            archive.writestr(_zip_info(MANIFEST_NAME, zipfile.ZIP_DEFLATED), text)
            for member, voxels in members:
                big = voxels.nbytes > _ZIP64_THRESHOLD
                with archive.open(_zip_info(member, zipfile.ZIP_STORED), "w", force_zip64=big) as out:
                    write_npy(out, voxels)
                progress.advance()  # may raise CancelledError: the temp file is removed
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CaseFileError(f"cannot save {path}: {reason}; the previous file, if any, is unchanged") from exc
    scene.provenance.append(entry)


# --- loading --------------------------------------------------------------------
def _index_members(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        _fail(path, f"it has {len(infos)} members, more than any real case (refused as damaged)")
    archive_size = path.stat().st_size
    index: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if not is_safe_member_name(info.filename):
            _fail(path, f"refused: it contains a member with an unsafe name {info.filename!r}")
        if info.filename in index:
            _fail(path, f"damaged: member {info.filename} appears twice")
        if info.flag_bits & 0x1:
            _fail(
                path,
                f"refused: member {info.filename} is encrypted (surgtwin never writes encrypted members)",
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            _fail(path, f"member {info.filename} uses a compression surgtwin does not read")
        if info.compress_size > archive_size:
            _fail(path, f"damaged: member {info.filename} claims to be larger than the file")
        index[info.filename] = info
    return index


def _read_manifest(path: Path, archive: zipfile.ZipFile, index: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
    info = index.get(MANIFEST_NAME)
    if info is None:
        _fail(path, f"damaged or not a surgtwin case file: it has no {MANIFEST_NAME}")
    if info.file_size > MAX_MANIFEST_BYTES:
        _fail(path, f"damaged: {MANIFEST_NAME} claims an absurd size ({info.file_size} bytes)")
    try:
        raw = archive.read(info)
        manifest = json.loads(raw.decode("utf-8"))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        _fail(path, f"damaged: {MANIFEST_NAME} cannot be read ({exc})")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(path, f"damaged: {MANIFEST_NAME} is not valid JSON ({exc})")
    if not isinstance(manifest, dict):
        _fail(path, f"damaged: {MANIFEST_NAME} is not a JSON object")
    return manifest


def _check_version(path: Path, manifest: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """The manifest upgraded to the current version, and the old versions it passed."""
    if manifest.get("format") != FORMAT_NAME:
        _fail(path, f"not a surgtwin case file (its manifest says format {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        _fail(path, f"damaged: {MANIFEST_NAME} has no valid format_version ({version!r})")
    if version > FORMAT_VERSION:
        made_by = manifest.get("software_version", "unknown")
        _fail(
            path,
            f"made by a newer surgtwin, version {version}; this one reads up to {FORMAT_VERSION} "
            f"(saved by surgtwin {made_by}; update surgtwin to open it)",
        )
    try:
        return migrate(manifest, FORMAT_VERSION)
    except MigrationError as exc:
        _fail(path, str(exc))


def _expect(path: Path, value: Any, types: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, types) or isinstance(value, bool):  # JSON true is not a number
        _fail(path, f"damaged: {MANIFEST_NAME} has an invalid {what} ({value!r:.80})")
    return value


def _check_objects(path: Path, objects: list[Any]) -> dict[str, str]:
    """Kind of each object by id, after checking ids, kinds and the claimed total size."""
    kinds: dict[str, str] = {}
    total = 0
    for entry in objects:
        _expect(path, entry, dict, "object entry")
        object_id = entry.get("id")
        if not is_valid_object_id(object_id) or object_id in kinds:
            _fail(path, f"damaged: {MANIFEST_NAME} has an invalid or repeated object id {object_id!r:.80}")
        kind = entry.get("kind")
        if kind not in READERS:
            _fail(path, f"it holds a {kind!r} object this surgtwin cannot read (update surgtwin)")
        kinds[object_id] = kind
        arrays = entry.get("arrays")
        if isinstance(arrays, dict):
            total += sum(declared_bytes(d) for d in arrays.values())
    if total > MAX_CASE_BYTES:
        _fail(path, f"refused: its arrays claim an absurd total size ({total} bytes)")
    return kinds


def load_case(path: str | Path) -> Scene:
    """Read a case file into a new :class:`Scene`, refusing damaged or unknown files."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "there is no such file" if not path.exists() else "it is not a file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError):
        _fail(path, "not a surgtwin case file (not a ZIP container), or the file is truncated")
    except OSError as exc:
        _fail(path, f"it cannot be read ({exc.strerror or exc})")
    with archive:
        index = _index_members(path, archive)
        manifest, migrated = _check_version(path, _read_manifest(path, archive, index))
        objects = _expect(path, manifest.get("objects"), list, "object list")
        provenance = _expect(path, manifest.get("provenance", []), list, "provenance log")
        if not all(isinstance(p, dict) for p in provenance):
            _fail(path, f"damaged: {MANIFEST_NAME} has an invalid provenance log")
        kinds = _check_objects(path, objects)
        scene = Scene(
            _expect(path, manifest.get("title", ""), str, "title"),
            created=_expect(path, manifest.get("created", utc_now_iso()), str, "creation time"),
        )
        scene.provenance = [dict(p) for p in provenance]
        reader = CaseReader(path, archive, index)
        for entry in objects:
            scene.add(READERS[entry["kind"]](reader, entry, kinds), entry["id"])
    if migrated:  # the in-memory case is now the new format; say so in its history
        scene.record("migrate_case", from_version=migrated[0], to_version=FORMAT_VERSION)
    return scene
