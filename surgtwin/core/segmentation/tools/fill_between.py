"""Fill between slices: a segment drawn on some axial slices (k) is interpolated on the
slices in between by shape-based interpolation (linear blend of 2D signed distances).

SimpleITK's MorphologicalContourInterpolator is not in the SimpleITK wheels, so this
is the distance-based equivalent; it interpolates along k only and does not extrapolate
beyond the first and last drawn slice.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from surgtwin.core.errors import SegmentationError
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.segmentation.tools.grid import bounding_box, spacing_kji


def _signed_distance(slice_mask: np.ndarray, sampling: np.ndarray) -> np.ndarray:
    """Negative inside, positive outside, in mm, from voxel centres."""
    outside = ndimage.distance_transform_edt(~slice_mask, sampling=sampling)
    inside = ndimage.distance_transform_edt(slice_mask, sampling=sampling)
    return np.asarray(outside - inside)


def fill_between_slices(segmentation: Segmentation, label: int) -> np.ndarray:
    """The segment with every gap between two drawn slices filled in (a mask)."""
    segment = segmentation.check_label(label)
    mask = segmentation.labels == label
    drawn = np.flatnonzero(mask.any(axis=(1, 2)))
    if len(drawn) < 2:
        raise SegmentationError(
            f"segment {segment.name!r} is drawn on {len(drawn)} slice(s): draw it on at least two slices"
        )
    sampling = spacing_kji(segmentation)[1:]
    result = mask.copy()
    for k0, k1 in zip(drawn[:-1], drawn[1:], strict=True):
        if k1 - k0 < 2:
            continue
        both = mask[k0] | mask[k1]
        box = bounding_box(both[None])
        assert box is not None
        # The blend of two shapes stays within their joint bounding rectangle (plus a rim).
        j = slice(max(0, box[1].start - 1), min(both.shape[0], box[1].stop + 1))
        i = slice(max(0, box[2].start - 1), min(both.shape[1], box[2].stop + 1))
        d0 = _signed_distance(mask[k0, j, i], sampling)
        d1 = _signed_distance(mask[k1, j, i], sampling)
        for k in range(k0 + 1, k1):
            t = (k - k0) / (k1 - k0)
            result[k, j, i] = (1 - t) * d0 + t * d1 < 0
    return result
