"""Headless segmentation tools: the same calls serve scripts, the command line and the UI.

Mask tools return a boolean array on the segmentation's grid; :func:`apply_mask` turns
it into one undoable :class:`~surgtwin.core.segmentation.commands.EditLabels`. Tools
that edit directly (paint, scissors, split islands) return the command. Nothing changes
until the command is applied (``History(scene).execute(command)``).
"""

from surgtwin.core.segmentation.tools.body import body_mask
from surgtwin.core.segmentation.tools.edit import MODES, apply_mask, edit_from_labels
from surgtwin.core.segmentation.tools.fill_between import fill_between_slices
from surgtwin.core.segmentation.tools.grid import bounding_box
from surgtwin.core.segmentation.tools.islands import (
    keep_largest_island,
    label_islands,
    remove_small_islands,
    split_islands,
)
from surgtwin.core.segmentation.tools.logical import intersect, invert, subtract, union
from surgtwin.core.segmentation.tools.morphology import close_mask, fill_holes, grow, open_mask, shrink
from surgtwin.core.segmentation.tools.paint import paint, stroke_mask
from surgtwin.core.segmentation.tools.region_growing import confidence_connected, connected_threshold
from surgtwin.core.segmentation.tools.scissors import prism_mask, scissors
from surgtwin.core.segmentation.tools.smoothing import smooth_gaussian, smooth_median
from surgtwin.core.segmentation.tools.threshold import (
    normalise_intensity,
    otsu,
    otsu_threshold_value,
    threshold,
)

__all__ = [
    "MODES",
    "apply_mask",
    "body_mask",
    "bounding_box",
    "close_mask",
    "confidence_connected",
    "connected_threshold",
    "edit_from_labels",
    "fill_between_slices",
    "fill_holes",
    "grow",
    "intersect",
    "invert",
    "keep_largest_island",
    "label_islands",
    "normalise_intensity",
    "open_mask",
    "otsu",
    "otsu_threshold_value",
    "paint",
    "prism_mask",
    "remove_small_islands",
    "scissors",
    "shrink",
    "smooth_gaussian",
    "smooth_median",
    "split_islands",
    "stroke_mask",
    "subtract",
    "threshold",
    "union",
]
