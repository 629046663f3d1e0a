"""What a slice-view tool is, and what it may ask of the window.

A tool (paint brush, region-growing seed, ruler, trajectory, ...) receives the left mouse
button in a slice view as points in patient LPS millimetres, draws its own overlay while it
works, and changes the case only by handing core commands to ``context.execute``. The
window (``MainWindow``) is the :class:`ToolContext`; navigation (slice scrolling, zoom, pan,
window/level, crosshair) stays with the view whatever the tool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PySide6.QtCore import QPointF, Qt

if TYPE_CHECKING:
    from PySide6.QtGui import QPainter

    from surgtwin.core.commands import Command
    from surgtwin.core.scene import Scene
    from surgtwin.core.segmentation.model import Segmentation
    from surgtwin.core.volume import Volume


@dataclass(frozen=True)
class SlicePoint:
    """Where the mouse is: LPS millimetres on the slice's plane, plus the view it is in."""

    lps: np.ndarray  # (3,) float64
    axis: str  # "axial", "coronal", "sagittal" or "reslice"
    normal: np.ndarray  # (3,) the view plane's normal in LPS (unit)
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier


class ToolContext(Protocol):
    """What a tool may use; the main window provides it."""

    scene: Scene

    def execute(self, command: Command) -> bool:
        """Run a command through the case's history (one undo step); False if it failed."""
        ...

    def current_volume(self) -> tuple[str, Volume] | None: ...

    def current_segmentation(self) -> tuple[str, Segmentation] | None: ...

    def selected_segment(self) -> tuple[str, int] | None:
        """(segmentation id, label) of the segment chosen in the segments panel."""
        ...

    def report_error(self, action: str, exc: BaseException) -> None: ...

    def set_status(self, text: str) -> None: ...


ToWidget = Callable[[np.ndarray], QPointF]  # LPS point -> widget pixel in the view


class SliceTool:
    """Base class: every hook does nothing. A hook returns True when it used the event."""

    name = "navigate"
    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, context: ToolContext) -> None:
        self.context = context

    def press(self, at: SlicePoint) -> bool:
        return False

    def move(self, at: SlicePoint, buttons_down: bool) -> bool:
        return False

    def release(self, at: SlicePoint) -> bool:
        return False

    def cancel(self) -> None:
        """Drop any unfinished gesture (Escape, tool switched, case replaced)."""

    def paint(self, painter: QPainter, axis: str, to_widget: ToWidget, slice_lps: np.ndarray) -> None:
        """Draw this tool's overlay on a view; ``slice_lps`` is a point on its plane."""
