"""How the desktop app words a failure: what happened and what to do, never a traceback."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from surgtwin.core.errors import CancelledError, CaseFileError, DicomError, SurgTwinError, VolumeError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorReport:
    title: str
    what: str  # what happened, in the user's words
    todo: str  # what to do next

    @property
    def text(self) -> str:
        return f"{self.what}\n\nWhat to do: {self.todo}"


_ADVICE: list[tuple[type[SurgTwinError], str]] = [
    (DicomError, "check that the folder or file holds a complete DICOM series, or open another one."),
    (VolumeError, "check that the file is a complete NIfTI/NRRD/MetaImage volume, or open another one."),
    (CaseFileError, "open another copy of the case (a backup), or rebuild it from the DICOM images."),
]


def describe_error(action: str, exc: BaseException) -> ErrorReport:
    """An :class:`ErrorReport` for ``exc`` raised while doing ``action`` ("Open", "Save", ...)."""
    if isinstance(exc, CancelledError):
        return ErrorReport(
            f"{action} cancelled", f"{action} was cancelled; nothing was changed.", "carry on."
        )
    if isinstance(exc, SurgTwinError):
        todo = next(
            (advice for cls, advice in _ADVICE if isinstance(exc, cls)),
            "check the input named above and try again.",
        )
        return ErrorReport(f"{action} failed", str(exc), todo)
    if isinstance(exc, OSError):
        return ErrorReport(
            f"{action} failed",
            f"the file system refused: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else ""),
            "check that the path exists, that you may read/write it and that the disk is not full.",
        )
    logger.error("unexpected error during %s", action, exc_info=exc)
    return ErrorReport(
        f"{action} failed",
        f"an unexpected problem stopped {action.lower()} ({type(exc).__name__}: {exc}).",
        "try again; if it keeps happening, report it with the application log. Your case is unchanged.",
    )
