"""The patient's body: what "invert within body" and the one-click twin work inside."""

from __future__ import annotations

import numpy as np

from surgtwin.core.segmentation.tools.islands import keep_largest_island
from surgtwin.core.segmentation.tools.morphology import fill_holes
from surgtwin.core.segmentation.tools.threshold import threshold
from surgtwin.core.volume import Volume


def body_mask(volume: Volume, lower_hu: float = -400.0) -> np.ndarray:
    """The largest connected region denser than ``lower_hu`` with its air cavities
    (lungs, bowel gas) filled slice by slice: the body without the table's thin parts."""
    dense = threshold(volume, lower=lower_hu)
    return fill_holes(keep_largest_island(dense), per_slice=True)
