"""apply_mask: the one way a tool's mask becomes an undoable label edit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.commands import EditLabels
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools.grid import Box, bounding_box, check_mask

Mode = Literal["add", "remove", "replace"]
MODES = ("add", "remove", "replace")


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    k, j, i = (slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True))
    return (k, j, i)


def apply_mask(
    segmentation: Segmentation,
    label: int,
    mask: np.ndarray,
    mode: Mode = "add",
    *,
    start: Sequence[int] | None = None,
    overwrite: bool = True,
    tool: str = "",
    parameters: Mapping[str, Any] | None = None,
) -> EditLabels:
    """The edit that makes segment ``label`` take ``mask`` (nothing changes until it is applied).

    ``add``: mask voxels become ``label`` (other segments' voxels too, unless
    ``overwrite=False``); ``remove``: this segment's voxels inside the mask become
    background; ``replace``: the segment becomes exactly the mask. ``mask`` covers the
    whole grid, or a sub-box whose first voxel is ``start`` (k, j, i).
    The edit keeps only the bounding box of the voxels that actually change.
    """
    segmentation.check_label(label)
    if mode not in MODES:
        raise SegmentationError(f"mode must be one of {MODES}, got {mode!r}")
    labels = segmentation.labels
    origin = np.zeros(3, dtype=np.int64) if start is None else np.asarray(start, dtype=np.int64)
    if start is None:
        mask = check_mask(mask, labels.shape)
    else:
        mask = check_mask(mask)
        if origin.shape != (3,) or np.any(origin < 0) or np.any(origin + mask.shape > labels.shape):
            raise SegmentationError(
                f"a mask of shape {mask.shape} at {tuple(origin)} does not fit {labels.shape}"
            )
    local = bounding_box(mask)
    region = (
        None
        if local is None
        else tuple(slice(s.start + o, s.stop + o) for s, o in zip(local, origin, strict=True))
    )
    if mode == "replace":
        region = _union(region, bounding_box(labels == label))  # type: ignore[arg-type]
    if region is None:
        return _empty_edit(segmentation, tool, parameters)

    old = labels[region]
    sub = np.zeros(old.shape, dtype=bool)
    m_box = tuple(slice(s.start - o, s.stop - o) for s, o in zip(region, origin, strict=True))
    clipped = tuple(slice(max(0, s.start), min(n, s.stop)) for s, n in zip(m_box, mask.shape, strict=True))
    target = tuple(slice(c.start - s.start, c.stop - s.start) for c, s in zip(clipped, m_box, strict=True))
    sub[target] = mask[clipped]

    dtype = np.uint16 if label > 255 else labels.dtype
    new = old.astype(dtype, copy=True)
    if mode == "remove":
        new[sub & (old == label)] = 0
    else:
        if mode == "replace":
            new[(old == label) & ~sub] = 0
        paint = sub if overwrite else sub & ((old == 0) | (old == label))
        new[paint] = label
    return _shrunk_edit(segmentation, region, old, new, tool, parameters)  # type: ignore[arg-type]


def _shrunk_edit(
    segmentation: Segmentation,
    region: Box,
    old: np.ndarray,
    new: np.ndarray,
    tool: str,
    parameters: Mapping[str, Any] | None,
) -> EditLabels:
    changed = bounding_box(old != new)
    if changed is None:
        return _empty_edit(segmentation, tool, parameters)
    start = tuple(r.start + c.start for r, c in zip(region, changed, strict=True))
    return EditLabels(
        segmentation,
        (start[0], start[1], start[2]),
        old[changed].copy(),
        new[changed].copy(),
        tool=tool,
        parameters=parameters,
    )


def _empty_edit(segmentation: Segmentation, tool: str, parameters: Mapping[str, Any] | None) -> EditLabels:
    none = np.zeros((0, 0, 0), dtype=segmentation.labels.dtype)
    return EditLabels(segmentation, (0, 0, 0), none, none.copy(), tool=tool, parameters=parameters)


def edit_from_labels(
    segmentation: Segmentation,
    new_labels: np.ndarray,
    *,
    tool: str = "",
    parameters: Mapping[str, Any] | None = None,
) -> EditLabels:
    """The edit turning the whole label map into ``new_labels`` (for multi-segment tools)."""
    if new_labels.shape != segmentation.labels.shape:
        raise SegmentationError(
            f"new labels have shape {new_labels.shape}, the segmentation {segmentation.labels.shape}"
        )
    full = (slice(0, new_labels.shape[0]), slice(0, new_labels.shape[1]), slice(0, new_labels.shape[2]))
    return _shrunk_edit(segmentation, full, segmentation.labels, new_labels, tool, parameters)
