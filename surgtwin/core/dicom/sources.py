"""Find candidate files in a folder, a zip, a DICOMDIR or a list of files.

Never follows a link or a reference out of its root and never loops on symlink
cycles; everything passed over is reported as a :class:`SkippedFile`.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import pydicom

from surgtwin.core.dicom.inventory import SkippedFile

# A zip member larger than this is not read into memory (zip bombs, video files).
MAX_ZIP_MEMBER_BYTES = 2 * 1024**3
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class SourceFile:
    """One candidate file: a path on disk, or a member of a zip archive."""

    display: str  # what a user sees in messages
    path: Path  # file on disk (the archive itself for zip members)
    member: str | None = None  # zip member name
    size: int = 0

    def open(self) -> BinaryIO:
        if self.member is None:
            return open(self.path, "rb")
        st = self.path.stat()
        return io.BytesIO(_archive(str(self.path), st.st_mtime_ns, st.st_size).read(self.member))


@functools.lru_cache(maxsize=2)
def _archive(path: str, mtime_ns: int, size: int) -> zipfile.ZipFile:
    """One open archive per zip (re-parsing its directory per member would be quadratic);
    keyed by modification time and size so a replaced zip is read afresh."""
    return zipfile.ZipFile(path)


def _unsafe_relative(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts


def iter_zip(archive_path: Path, skipped: list[SkippedFile]) -> Iterator[SourceFile]:
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        skipped.append(SkippedFile(str(archive_path), f"not a readable zip archive ({exc})"))
        return
    with archive:
        for info in archive.infolist():
            display = f"{archive_path}!{info.filename}"
            if info.is_dir():
                continue
            if _unsafe_relative(info.filename):
                skipped.append(SkippedFile(display, "zip entry points outside the archive; not followed"))
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped.append(SkippedFile(display, "zip entry is a symbolic link; not followed"))
                continue
            if info.file_size > MAX_ZIP_MEMBER_BYTES:
                skipped.append(SkippedFile(display, "zip entry is too large to be a DICOM image"))
                continue
            yield SourceFile(display, archive_path, info.filename, info.file_size)


def iter_folder(root: Path, skipped: list[SkippedFile]) -> Iterator[SourceFile]:
    """Walk ``root`` in sorted order; follow directory symlinks inside root, once."""
    root_real = root.resolve()
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError as exc:
            skipped.append(SkippedFile(str(folder), f"folder cannot be read ({exc.strerror})"))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            skipped.append(SkippedFile(str(folder), "symbolic link loop; folder already visited"))
            continue
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(SkippedFile(str(folder), f"folder cannot be listed ({exc.strerror})"))
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append(SkippedFile(str(path), "broken symbolic link or link loop"))
                    continue
                if not target.is_relative_to(root_real):
                    skipped.append(
                        SkippedFile(str(path), "symbolic link points outside the folder; not followed")
                    )
                    continue
            try:
                if entry.is_dir():
                    subfolders.append(path)
                elif entry.is_file():
                    yield SourceFile(str(path), path, None, entry.stat().st_size)
                else:
                    skipped.append(SkippedFile(str(path), "not a regular file"))
            except OSError as exc:
                skipped.append(SkippedFile(str(path), f"cannot be read ({exc.strerror})"))
        stack.extend(reversed(subfolders))


def iter_dicomdir(dicomdir: Path, skipped: list[SkippedFile]) -> Iterator[SourceFile]:
    """The image files a DICOMDIR lists, never outside the DICOMDIR's own folder."""
    try:
        ds = pydicom.dcmread(dicomdir)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not usable"
        skipped.append(SkippedFile(str(dicomdir), f"DICOMDIR cannot be read ({exc})"))
        return
    root = dicomdir.parent.resolve()
    seen: set[Path] = set()
    for record in ds.get("DirectoryRecordSequence", []):
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        display = f"{dicomdir}: {'/'.join(parts)}"
        if any(p in ("..", "") or "/" in p or "\\" in p for p in parts):
            skipped.append(SkippedFile(display, "DICOMDIR entry points outside its folder; not followed"))
            continue
        target = root.joinpath(*parts)
        try:
            resolved = target.resolve(strict=True)
        except (OSError, RuntimeError):
            skipped.append(SkippedFile(display, "DICOMDIR entry names a file that is not there"))
            continue
        if not resolved.is_relative_to(root):
            skipped.append(SkippedFile(display, "DICOMDIR entry points outside its folder; not followed"))
            continue
        if resolved not in seen and resolved.is_file():
            seen.add(resolved)
            yield SourceFile(str(target), target, None, resolved.stat().st_size)


def _is_dicomdir(path: Path) -> bool:
    if path.name.upper() == "DICOMDIR":
        return True
    try:
        with open(path, "rb") as fp:
            head = fp.read(512)
    except OSError:
        return False
    return head[128:132] == b"DICM" and DICOMDIR_SOP_CLASS.encode() in head


def iter_sources(paths: list[Path], skipped: list[SkippedFile]) -> Iterator[SourceFile]:
    """Expand folders, zips, DICOMDIRs and single files into candidate files."""
    for path in paths:
        if not path.exists():
            skipped.append(SkippedFile(str(path), "does not exist"))
        elif path.is_dir():
            yield from iter_folder(path, skipped)
        elif zipfile.is_zipfile(path):
            yield from iter_zip(path, skipped)
        elif _is_dicomdir(path):
            yield from iter_dicomdir(path, skipped)
        else:
            yield SourceFile(str(path), path, None, path.stat().st_size)
