"""Shared plumbing for the UI tests: the ToolContext the main window provides, over a real
Scene/History, and the small helpers several test files need (widgets shown under the X
server, mouse drags, synthetic CT volumes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QWidget

from surgtwin.core.commands import Command, History
from surgtwin.core.progress import Progress
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.ui.slice_view import SliceView
from surgtwin.ui.view_tools import Preview
from surgtwin.ui.worker import Task


class ToolHarness:
    """A :class:`surgtwin.ui.view_tools.ToolContext` like the main window's, over a real Scene
    and History, recording what the window would show (error dialogs, status texts, previews,
    repaints) instead of showing it.

    ``run_task`` runs the work on a real :class:`Task` (a worker thread) as the window does;
    with ``synchronous=True`` it runs it at once on the calling thread, for tests that check
    the result right after the gesture. Slice views in ``views`` are repainted on
    ``tool_changed`` and shown the preview, as the window does with its slice views.
    """

    def __init__(
        self,
        scene: Scene | None = None,
        history: History | None = None,
        *,
        parent: QWidget | None = None,
        synchronous: bool = False,
    ) -> None:
        self.scene = scene if scene is not None else Scene("test")
        self.history = history if history is not None else History(self.scene)
        self.parent = parent
        self.synchronous = synchronous
        self.selected: tuple[str, int] | None = None  # what selected_segment answers
        self.views: list[SliceView] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.statuses: list[str] = []
        self.previews: list[Preview | None] = []
        self.repaints = 0
        self.tasks: list[Task] = []
        self.busy_elsewhere = False  # set by a test: the window runs work of its own (a twin, ...)

    @property
    def busy(self) -> bool:
        return self.busy_elsewhere or any(task.running for task in self.tasks)

    def execute(self, command: Command) -> bool:
        try:
            self.history.execute(command)
        except Exception as exc:  # noqa: BLE001 - like the window: reported, scene unchanged
            self.report_error("Edit", exc)
            return False
        return True

    def current_volume(self) -> tuple[str, Volume] | None:
        return next(iter(self.scene.volumes.items()), None)

    def current_segmentation(self) -> tuple[str, Segmentation] | None:
        return next(iter(self.scene.segmentations.items()), None)

    def selected_segment(self) -> tuple[str, int] | None:
        return self.selected

    def report_error(self, action: str, exc: BaseException) -> None:
        self.errors.append((action, exc))

    def set_status(self, text: str) -> None:
        self.statuses.append(text)

    def tool_changed(self) -> None:
        self.repaints += 1
        for view in self.views:
            view.update()

    def set_preview(self, preview: Preview | None) -> None:
        self.previews.append(preview)
        for view in self.views:
            view.set_preview(preview)

    def run_task(self, title: str, work: Callable[..., Any], done: Callable[[Any], None]) -> bool:
        if self.busy:
            return False
        if not self.synchronous:
            self.tasks.append(Task(self.parent, title, work, done, lambda exc: self.report_error(title, exc)))
            return True
        try:
            result = work(Progress())
        except Exception as exc:  # noqa: BLE001 - a failed task becomes a dialog, as in the window
            self.report_error(title, exc)
        else:
            done(result)
        return True


def show_widget(qtbot, widget: QWidget, size: tuple[int, int] | None = None) -> QWidget:
    """Hand ``widget`` to qtbot, size it, show it, and wait until the X server shows it."""
    qtbot.addWidget(widget)
    if size is not None:
        widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def drag(
    qtbot,
    widget: QWidget,
    points: Sequence[QPoint],
    button: Qt.MouseButton = Qt.MouseButton.LeftButton,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """Press ``button`` at the first point, move through the others, release at the last."""
    qtbot.mousePress(widget, button, modifiers, points[0])
    for point in points[1:]:
        qtbot.mouseMove(widget, point)
    qtbot.mouseRelease(widget, button, modifiers, points[-1])


def ct_volume(
    voxels: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    name: str = "",
) -> Volume:
    """A CT volume in HU on an axis-aligned grid: ``spacing`` (i, j, k) mm, voxel (0, 0, 0) at
    LPS ``origin``."""
    affine = np.eye(4)
    affine[:3, :3] = np.diag(np.asarray(spacing, dtype=np.float64))
    affine[:3, 3] = origin
    return Volume(voxels, affine, modality="CT", units="HU", name=name)


def view3d_to_widget(view: Any, lps: Sequence[float]) -> tuple[float, float]:
    """Where an LPS point (mm) appears in a View3D's GL widget, in widget pixels."""
    renderer = view.scene_renderer.renderer
    renderer.SetWorldPoint(*lps, 1.0)
    renderer.WorldToDisplay()
    dx, dy, _ = renderer.GetDisplayPoint()
    widget = view.interactor.interactor
    ratio = widget.devicePixelRatioF()
    return dx / ratio, widget.height() - 1 - dy / ratio
