"""DICOM import: find files, index headers, group series, load volumes."""

from surgtwin.core.dicom.inventory import Inventory, Series, SkippedFile
from surgtwin.core.dicom.scan import scan

__all__ = ["Inventory", "Series", "SkippedFile", "scan"]
