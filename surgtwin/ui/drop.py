"""Drag and drop of files and folders onto a widget (local files only).

``enable_drop(widget, on_paths)`` installs an event filter: a drag is accepted only when
it carries at least one local file URL, and a drop calls ``on_paths`` with those paths
(remote URLs and plain text are refused, so nothing is downloaded behind the user's back).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QWidget


def local_paths(mime: QMimeData | None) -> list[Path]:
    """The local files and folders a drag carries, in its order (empty for anything else)."""
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


class DropFilter(QObject):
    """Accepts drags of local files over its widget and hands the dropped paths on."""

    def __init__(self, widget: QWidget, on_paths: Callable[[list[Path]], None]) -> None:
        super().__init__(widget)  # lives as long as the widget
        self._on_paths = on_paths

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, (QDragEnterEvent, QDragMoveEvent))
            if local_paths(event.mimeData()):
                event.acceptProposedAction()
            else:
                event.ignore()
            return True
        if kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            paths = local_paths(event.mimeData())
            if not paths:
                event.ignore()
                return True
            event.acceptProposedAction()
            self._on_paths(paths)
            return True
        return super().eventFilter(watched, event)


def enable_drop(widget: QWidget, on_paths: Callable[[list[Path]], None]) -> DropFilter:
    """Make ``widget`` accept dropped local files/folders; ``on_paths`` gets them on drop."""
    widget.setAcceptDrops(True)
    drop_filter = DropFilter(widget, on_paths)
    widget.installEventFilter(drop_filter)
    return drop_filter
