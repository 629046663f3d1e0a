"""The long work the desktop app runs off the GUI thread: plain functions over the core.

Each returns data only; the window applies it to its scene on the GUI thread through
commands. No Qt here, so these are easy to test and reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from surgtwin.core.dicom import Inventory
from surgtwin.core.findings import Finding
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.progress import Progress
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

CASE_SUFFIX = ".stwin"


@dataclass
class OpenedData:
    """What an Open produced: either a whole case, or a volume (and its DICOM inventory)."""

    path: Path
    scene: Scene | None = None  # a .stwin case
    volume: Volume | None = None  # a DICOM folder / zip / volume file
    inventory: Inventory | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass
class TwinData:
    segmentation: Segmentation
    meshes: list[SurfaceMesh]
    skipped: dict[str, str]


def is_case_file(path: Path) -> bool:
    return path.suffix.lower() == CASE_SUFFIX


def open_path(path: Path, progress: Progress) -> OpenedData:
    """Read a .stwin case, or import the largest loadable series of a DICOM folder/zip/file."""
    path = Path(path)
    if is_case_file(path):
        from surgtwin.core.case import load_case

        progress.start("opening case", 1)
        scene = load_case(path)
        progress.advance()
        return OpenedData(path, scene=scene)
    from surgtwin.core.importer import load_volume

    volume, inventory = load_volume(path, progress=progress)
    findings = list(volume.findings)
    if inventory is not None:
        for series in inventory.series:
            findings += [f for f in series.findings if f not in findings]
    return OpenedData(path, volume=volume, inventory=inventory, findings=findings)


def build_twin(volume: Volume, volume_id: str, progress: Progress) -> TwinData:
    """One-click twin segments and one surface mesh per segment (the same as ``surgtwin build``)."""
    from surgtwin.core.twin import make_twin

    twin = make_twin(volume, volume_id, progress)
    return TwinData(twin.segmentation, twin.meshes, twin.skipped)


def save(scene: Scene, path: Path, progress: Progress) -> Path:
    from surgtwin.core.case import save_case

    save_case(scene, path, progress=progress)
    return path
