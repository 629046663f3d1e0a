"""Islands: connected pieces of a mask (keep the largest, drop small ones, split into segments)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from surgtwin.core.commands import Command, CommandGroup
from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.colors import default_color
from surgtwin.core.segmentation.commands import AddSegment
from surgtwin.core.segmentation.model import MAX_LABEL, Segmentation
from surgtwin.core.segmentation.tools.edit import edit_from_labels
from surgtwin.core.segmentation.tools.grid import (
    Grid,
    bounding_box,
    check_mask,
    positive_mm,
    spacing_kji,
    to_sitk,
)


def label_islands(mask: np.ndarray, *, fully_connected: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(island ids, voxel count per id) with ids 1.. sorted by size, largest first.

    Face-connected (6 neighbours) by default; ``fully_connected`` also joins voxels that
    touch at an edge or corner (26 neighbours).
    """
    mask = check_mask(mask)
    ids = np.zeros(mask.shape, dtype=np.uint32)
    box = bounding_box(mask)
    if box is None:
        return ids, np.zeros(1, dtype=np.int64)
    image = to_sitk(mask[box].astype(np.uint8), np.ones(3))
    components = sitk.RelabelComponent(sitk.ConnectedComponent(image, fully_connected), sortByObjectSize=True)
    ids[box] = sitk.GetArrayViewFromImage(components)
    return ids, np.bincount(ids.ravel())


def keep_largest_island(mask: np.ndarray, *, fully_connected: bool = False) -> np.ndarray:
    ids, _ = label_islands(mask, fully_connected=fully_connected)
    result: np.ndarray = ids == 1
    return result


def remove_small_islands(
    mask: np.ndarray, min_volume_mm3: float, grid: Grid, *, fully_connected: bool = False
) -> np.ndarray:
    """Drop islands smaller than ``min_volume_mm3``."""
    minimum = positive_mm(min_volume_mm3, "minimum island volume (mm³)", allow_zero=True)
    ids, counts = label_islands(mask, fully_connected=fully_connected)
    voxel_mm3 = float(np.prod(spacing_kji(grid)))
    keep = counts * voxel_mm3 >= minimum
    keep[0] = False
    result: np.ndarray = keep[ids]
    return result


def split_islands(
    segmentation: Segmentation,
    label: int,
    *,
    min_volume_mm3: float = 0.0,
    max_segments: int = 100,
    fully_connected: bool = False,
) -> Command:
    """One undo step that moves every island of ``label`` but the largest into a new
    segment of its own ("<name>_2", "<name>_3", … by decreasing size). Islands smaller
    than ``min_volume_mm3`` are removed instead."""
    segment = segmentation.check_label(label)
    minimum = positive_mm(min_volume_mm3, "minimum island volume (mm³)", allow_zero=True)
    if isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < 1:
        raise SegmentationError(f"max_segments must be a positive integer, got {max_segments!r}")
    ids, counts = label_islands(segmentation.labels == label, fully_connected=fully_connected)
    voxel_mm3 = segmentation.voxel_volume_mm3
    big = [n for n in range(1, len(counts)) if counts[n] * voxel_mm3 >= minimum]
    if len(big) > max_segments:
        raise SegmentationError(
            f"segment {segment.name!r} has {len(big)} islands above {minimum} mm³, more than "
            f"max_segments={max_segments}: raise min_volume_mm3 or max_segments"
        )
    first = segmentation.next_label()
    if big and first + len(big) - 2 > MAX_LABEL:
        raise SegmentationError("splitting would need more than 65535 segments")
    taken = {s.name for s in segmentation.segments.values()}
    commands: list[Command] = []
    lookup = np.zeros(len(counts), dtype=np.uint16)
    lookup[big[:1]] = label
    for n, island in enumerate(big[1:]):
        new_label = first + n
        name, suffix = f"{segment.name}_{n + 2}", n + 2
        while name in taken:
            suffix += 1
            name = f"{segment.name}_{suffix}"
        taken.add(name)
        lookup[island] = new_label
        commands.append(
            AddSegment(segmentation, name, default_color(name), segment.terminology, label=new_label)
        )
    inside = ids > 0
    new = segmentation.labels.astype(np.uint16 if first + len(big) > 256 else segmentation.labels.dtype)
    new[inside] = lookup[ids[inside]]
    parameters = {"label": label, "min_volume_mm3": minimum, "fully_connected": fully_connected}
    commands.append(edit_from_labels(segmentation, new, tool="split_islands", parameters=parameters))
    return CommandGroup(commands, label=f"split islands of {segment.name!r}")
