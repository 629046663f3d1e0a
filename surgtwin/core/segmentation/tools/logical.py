"""Logical operations between segments (or any masks on the same grid).

In one label map segments never overlap, so ``intersect`` of two of its segments is
empty; it is meant for a segment and a tool's mask (e.g. "liver AND above 100 HU").
"""

from __future__ import annotations

import numpy as np

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools.grid import check_mask

MaskOrLabel = np.ndarray | int


def as_mask(segmentation: Segmentation, operand: MaskOrLabel) -> np.ndarray:
    """A segment label's mask, or a mask checked against the segmentation's grid."""
    if isinstance(operand, np.ndarray):
        return check_mask(operand, segmentation.labels.shape)
    segmentation.check_label(operand)
    return segmentation.labels == int(operand)


def union(segmentation: Segmentation, *operands: MaskOrLabel) -> np.ndarray:
    if not operands:
        raise SegmentationError("union needs at least one segment or mask")
    result = as_mask(segmentation, operands[0]).copy()
    for operand in operands[1:]:
        result |= as_mask(segmentation, operand)
    return result


def intersect(segmentation: Segmentation, *operands: MaskOrLabel) -> np.ndarray:
    if not operands:
        raise SegmentationError("intersect needs at least one segment or mask")
    result = as_mask(segmentation, operands[0]).copy()
    for operand in operands[1:]:
        result &= as_mask(segmentation, operand)
    return result


def subtract(segmentation: Segmentation, a: MaskOrLabel, *others: MaskOrLabel) -> np.ndarray:
    """``a`` without any of ``others``."""
    result = as_mask(segmentation, a).copy()
    for operand in others:
        result &= ~as_mask(segmentation, operand)
    return result


def invert(segmentation: Segmentation, a: MaskOrLabel, *, within: MaskOrLabel | None = None) -> np.ndarray:
    """Everything that is not ``a``, limited to ``within`` (e.g. the body; see :func:`body_mask`)."""
    result = ~as_mask(segmentation, a)
    if within is not None:
        result &= as_mask(segmentation, within)
    return result
