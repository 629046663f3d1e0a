"""The long work the desktop app runs off the GUI thread: plain functions over the core.

Each returns data only; the window applies it to its scene on the GUI thread through
commands. No Qt here, so these are easy to test and reuse.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from surgtwin.core.dicom import Inventory
from surgtwin.core.errors import DicomError
from surgtwin.core.findings import Finding
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.progress import Progress
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

CASE_SUFFIX = ".stwin"


@dataclass
class ScanData:
    """What a header scan of a DICOM path found, with a preview per series (no volume yet)."""

    path: Path  # what was opened (for several dropped files: their common folder)
    inventory: Inventory
    findings: list[Finding] = field(default_factory=list)  # the series' findings + preview failures
    thumbnails: dict[str, np.ndarray] = field(default_factory=dict)  # series uid -> (h, w, 3) uint8
    thumbnail_reasons: dict[str, str] = field(default_factory=dict)  # series uid -> why a placeholder


@dataclass
class OpenedData:
    """What an Open produced: either a whole case, or a volume (and its DICOM inventory)."""

    path: Path
    scene: Scene | None = None  # a .stwin case
    volume: Volume | None = None  # a DICOM folder / zip / volume file
    inventory: Inventory | None = None
    findings: list[Finding] = field(default_factory=list)
    scan: ScanData | None = None  # the scan (with previews) the volume was chosen from, when asked for


@dataclass
class TwinData:
    segmentation: Segmentation
    meshes: list[SurfaceMesh]
    skipped: dict[str, str]


def is_case_file(path: Path) -> bool:
    return path.suffix.lower() == CASE_SUFFIX


def is_dicom_source(path: Path) -> bool:
    """Whether ``path`` goes through the DICOM scan (not a case, not a NIfTI/NRRD/MetaImage file)."""
    from surgtwin.core.volume_files import is_volume_file

    path = Path(path)
    return not is_case_file(path) and not (path.is_file() and is_volume_file(path))


def open_path(path: Path, progress: Progress, thumbnails: bool = False) -> OpenedData:
    """Read a .stwin case, or import the largest loadable series of a DICOM folder/zip/file.

    With ``thumbnails`` a DICOM import also keeps its scan with one preview per series in
    ``OpenedData.scan``, so the data browser can offer the other series.
    """
    path = Path(path)
    if is_case_file(path):
        from surgtwin.core.case import load_case

        progress.start("opening case", 1)
        scene = load_case(path)
        progress.advance()
        return OpenedData(path, scene=scene)
    if thumbnails and is_dicom_source(path):
        return load_series(scan_path(path, progress), None, progress)
    from surgtwin.core.importer import load_volume

    volume, inventory = load_volume(path, progress=progress)
    return OpenedData(path, volume=volume, inventory=inventory, findings=_volume_findings(volume, inventory))


def scan_path(path: Path | Sequence[Path], progress: Progress, thumbnails: bool = True) -> ScanData:
    """Index DICOM folders/zips/files (headers only) and make one preview per series.

    ``path`` may be several paths (files dropped together). Each preview decodes the middle
    image of its series only. A preview that cannot be decoded is a grey placeholder plus a
    finding naming the file; it never fails the scan.
    """
    from surgtwin.core.dicom import scan

    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if not paths:
        raise DicomError("nothing to open: no paths were given", code="no_images")
    for one in paths:
        if not is_dicom_source(one):
            raise DicomError(
                f"{one} is not a DICOM folder, zip or file; open it as a case or volume file instead",
                code="not_dicom",
            )
    inventory = scan(paths, progress)
    where = paths[0] if len(paths) == 1 else Path(os.path.commonpath([p.absolute() for p in paths]))
    data = ScanData(where, inventory, findings=_volume_findings(None, inventory))
    if thumbnails:
        _add_thumbnails(data, progress)
    return data


def _add_thumbnails(data: ScanData, progress: Progress) -> None:
    from surgtwin.ui.thumbnails import make_thumbnail

    all_series = data.inventory.series
    progress.start("making previews", len(all_series))
    for series in all_series:
        thumbnail = make_thumbnail(series)
        data.thumbnails[series.uid] = thumbnail.image
        if thumbnail.reason is not None:
            data.thumbnail_reasons[series.uid] = thumbnail.reason
        if thumbnail.failed_file is not None:
            data.findings.append(
                Finding(
                    "preview_not_decoded",
                    f"series '{series.description or series.uid}': {thumbnail.reason}",
                    path=thumbnail.failed_file,
                )
            )
        progress.advance()  # also where a cancel takes effect


def load_series(
    path_or_scan: Path | str | Sequence[Path] | ScanData, series_uid: str | None, progress: Progress
) -> OpenedData:
    """One series of a scanned DICOM path as a volume (the largest loadable one when ``series_uid`` is None).

    Given a :class:`ScanData`, its inventory is reused (no second scan); given a path (or
    several), it is scanned first (without previews).
    """
    from surgtwin.core.dicom.loader import load_series as load_dicom_series
    from surgtwin.core.importer import choose_series

    if isinstance(path_or_scan, ScanData):
        scan_data = path_or_scan
    else:
        scan_data = scan_path(path_or_scan, progress, thumbnails=False)
    series = choose_series(scan_data.inventory, series_uid)
    volume = load_dicom_series(series, progress)
    findings = _volume_findings(volume, scan_data.inventory)
    findings += [f for f in scan_data.findings if f not in findings]
    return OpenedData(
        scan_data.path, volume=volume, inventory=scan_data.inventory, findings=findings, scan=scan_data
    )


def _volume_findings(volume: Volume | None, inventory: Inventory | None) -> list[Finding]:
    """The volume's findings, then every series' findings once each (as the import reports them)."""
    findings = list(volume.findings) if volume is not None else []
    if inventory is not None:
        for series in inventory.series:
            findings += [f for f in series.findings if f not in findings]
    return findings


def build_twin(volume: Volume, volume_id: str, progress: Progress) -> TwinData:
    """One-click twin segments and one surface mesh per segment (the same as ``surgtwin build``)."""
    from surgtwin.core.twin import make_twin

    twin = make_twin(volume, volume_id, progress)
    return TwinData(twin.segmentation, twin.meshes, twin.skipped)


def save(scene: Scene, path: Path, progress: Progress) -> Path:
    from surgtwin.core.case import save_case

    save_case(scene, path, progress=progress)
    return path
