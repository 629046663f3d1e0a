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

    def tool_changed(self) -> None:
        """A tool's overlay changed: repaint the views (no re-rendering of the slices)."""
        ...

    def set_preview(self, preview: Preview | None) -> None:
        """Show (or, with None, remove) a live preview in every slice view."""
        ...

    def run_task(self, title: str, work: Callable[..., object], done: Callable[[object], None]) -> bool:
        """Run ``work(progress)`` off the GUI thread with progress and cancel, then
        ``done(result)`` on the GUI thread; errors become a dialog. False if busy."""
        ...


ToWidget = Callable[[np.ndarray], QPointF]  # LPS point -> widget pixel in the view


@dataclass(frozen=True)
class ViewFrame:
    """What an overlay needs to draw on a slice view right now."""

    axis: str
    to_widget: ToWidget
    plane_point: np.ndarray  # (3,) a point on the shown plane, LPS mm
    normal: np.ndarray  # (3,) the plane's unit normal, LPS
    mm_per_pixel: float  # widget pixels -> mm at the current zoom

    def distance_to_plane(self, lps: np.ndarray) -> float:
        return float(abs((np.asarray(lps, dtype=np.float64) - self.plane_point) @ self.normal))


# Draws persistent things (plan objects, ...) on a view; registered with SliceView.add_overlay.
OverlayPainter = Callable[["QPainter", ViewFrame], None]


@dataclass(frozen=True)
class Preview:
    """A live, uncommitted result shown over the slices (e.g. a threshold being tuned).

    Pixels are coloured where the sampled intensity is within ``value_range`` (when given)
    and the volume-grid ``mask[k, j, i]`` is true there (when given).
    """

    color: tuple[float, float, float] = (1.0, 1.0, 0.0)
    value_range: tuple[float, float] | None = None
    mask: np.ndarray | None = None
    opacity: float = 0.5


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

    def paint(self, painter: QPainter, frame: ViewFrame) -> None:
        """Draw this tool's unfinished gesture on a view."""
