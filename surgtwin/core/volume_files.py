"""NIfTI, NRRD and MetaImage volumes in and out, through SimpleITK (geometry kept, LPS)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import SimpleITK as sitk

import surgtwin
from surgtwin.core.errors import VolumeError
from surgtwin.core.volume import Volume

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(VOLUME_SUFFIXES)


def read_volume_file(path: Path) -> Volume:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown reason"
        raise VolumeError(f"{path}: cannot be read as a volume ({first_line})") from exc
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    if image.GetDimension() != 3:
        raise VolumeError(f"{path}: a {image.GetDimension()}D image is not a 3D volume")
    volume = Volume.from_sitk(
        image,
        name=path.name.split(".")[0],
        provenance={
            "source": "volume_file",
            "path": str(path),
            "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "software_version": surgtwin.__version__,
        },
    )
    return volume


WRITABLE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def check_output_path(path: Path) -> None:
    """Fail before any work when the output cannot be written."""
    if not path.name.lower().endswith(WRITABLE_SUFFIXES):
        raise VolumeError(f"{path}: choose an output ending in .nii.gz, .nii, .nrrd or .mha")
    if not path.parent.resolve().is_dir():
        raise VolumeError(f"{path}: the folder {path.parent} does not exist")
    if not os.access(path.parent.resolve(), os.W_OK):
        raise VolumeError(f"{path}: the folder {path.parent} is not writable")


def write_volume_file(volume: Volume, path: Path, before_replace: Callable[[], None] | None = None) -> None:
    """Write with geometry, atomically: a temp file beside the target, then a rename.

    ``before_replace`` runs just before the rename (e.g. a cancellation check); if it
    raises, the temp file is removed and an existing target is left untouched.
    """
    check_output_path(path)
    image = volume.to_sitk()
    suffix = next(s for s in WRITABLE_SUFFIXES if path.name.lower().endswith(s))
    temp = path.with_name(f".{path.name[: -len(suffix)]}.tmp-{os.getpid()}{suffix}")
    try:
        try:
            sitk.WriteImage(image, str(temp), useCompression=True)
        except RuntimeError as exc:
            raise VolumeError(f"{path}: cannot be written ({str(exc).strip().splitlines()[-1]})") from exc
        if before_replace is not None:
            before_replace()
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
