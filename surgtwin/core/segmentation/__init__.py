"""Segmentations: named segments on a volume's voxel grid, the tools that edit them,
the one-click twin, and import of segmentations made elsewhere."""

from surgtwin.core.segmentation.model import Segment, Segmentation

__all__ = ["Segment", "Segmentation"]
