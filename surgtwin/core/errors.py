"""One error hierarchy; messages are written for a radiologist, not a programmer."""

from __future__ import annotations


class SurgTwinError(Exception):
    """Base of every error surgtwin raises on purpose.

    ``code`` is a stable machine-readable identifier (used in ``--json`` output).
    """

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class DicomError(SurgTwinError):
    """A DICOM file or series cannot be read as asked."""

    code = "dicom_error"


class VolumeError(SurgTwinError):
    """A volume file (NIfTI, NRRD, MetaImage) cannot be read or written."""

    code = "volume_error"


class CaseFileError(SurgTwinError):
    """A case file (.stwin) is damaged, of an unknown version, or cannot be written."""

    code = "case_file_error"


class CommandError(SurgTwinError):
    """A scene command cannot be applied (e.g. it names an object that is not there)."""

    code = "command_error"


class CancelledError(SurgTwinError):
    """Long work was cancelled by the user; nothing partial was kept."""

    code = "cancelled"


class SegmentationError(SurgTwinError):
    """A segmentation or a segmentation tool cannot do what was asked (wrong parameters, no segment)."""

    code = "segmentation_error"


class MeshError(SurgTwinError):
    """A surface mesh cannot be built, repaired or exported as asked."""

    code = "mesh_error"
