"""The one entry point for "give me the volumes in this path".

A path may be a DICOM folder, a zip, a DICOMDIR, single DICOM files, or a
NIfTI/NRRD/MetaImage volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from surgtwin.core.dicom import Inventory, Series, scan
from surgtwin.core.dicom.loader import IrregularPolicy, load_series
from surgtwin.core.errors import DicomError, VolumeError
from surgtwin.core.progress import Progress
from surgtwin.core.volume import Volume
from surgtwin.core.volume_files import is_volume_file, read_volume_file


def _as_paths(paths: Path | str | Sequence[Path | str]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def choose_series(inventory: Inventory, series_uid: str | None) -> Series:
    """The series asked for, or the largest loadable one when none was named."""
    if series_uid:
        series = inventory.find_series(series_uid)
        if series is None:
            known = ", ".join(s.uid for s in inventory.series) or "none"
            raise DicomError(f"no series with UID {series_uid} (found: {known})", code="series_not_found")
        return series
    loadable = [s for s in inventory.series if s.loadable]
    if not loadable:
        if inventory.series:
            reasons = "; ".join(f"{s.uid}: {s.not_loadable_reason}" for s in inventory.series)
            raise DicomError(f"no series can be loaded as a volume ({reasons})", code="no_volume")
        raise DicomError("no DICOM images found", code="no_images")
    return max(loadable, key=lambda s: len(s.geometry.frames) if s.geometry else 0)


def load_volume(
    paths: Path | str | Sequence[Path | str],
    series_uid: str | None = None,
    progress: Progress | None = None,
    irregular: IrregularPolicy = "resample",
) -> tuple[Volume, Inventory | None]:
    """Load one volume; also return the DICOM inventory it came from (None for volume files)."""
    path_list = _as_paths(paths)
    if len(path_list) == 1 and is_volume_file(path_list[0]):
        if series_uid:
            raise VolumeError(f"{path_list[0]} is a single volume file; --series applies to DICOM only")
        return read_volume_file(path_list[0]), None
    inventory = scan(path_list, progress)
    series = choose_series(inventory, series_uid)
    return load_series(series, progress, irregular), inventory
