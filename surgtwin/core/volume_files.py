"""NIfTI, NRRD and MetaImage volumes in and out, through SimpleITK (geometry kept, LPS)."""

from __future__ import annotations

import datetime as dt
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


def write_volume_file(volume: Volume, path: Path) -> None:
    """Write with geometry; the format follows the suffix."""
    if not path.name.lower().endswith((".nii.gz", ".nii", ".nrrd", ".mha")):
        raise VolumeError(f"{path}: choose an output ending in .nii.gz, .nii, .nrrd or .mha")
    image = volume.to_sitk()
    try:
        sitk.WriteImage(image, str(path), useCompression=True)
    except RuntimeError as exc:
        raise VolumeError(f"{path}: cannot be written ({str(exc).strip().splitlines()[-1]})") from exc
