"""Run long core work off the GUI thread, with a progress dialog that cancels it.

The work gets a core :class:`Progress`; its listener (called on the worker thread) emits a
Qt signal, which Qt queues to the GUI thread. Cancel calls ``Progress.cancel()``; the core
then raises ``CancelledError`` at its next step. Results and errors come back on the GUI
thread through ``done(result)`` / ``failed(exception)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from surgtwin.core.progress import Progress


class _Signals(QObject):
    progressed = Signal(str, int, int)
    finished = Signal(object)
    failed = Signal(object)


class _Runnable(QRunnable):
    def __init__(self, work: Callable[[Progress], Any], progress: Progress, signals: _Signals) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._work = work
        self._progress = progress
        self._signals = signals

    def run(self) -> None:
        try:
            result = self._work(self._progress)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the GUI as a dialog
            outcome, value = self._signals.failed, exc
        else:
            outcome, value = self._signals.finished, result
        try:
            outcome.emit(value)
        except RuntimeError:  # the window that asked for it was closed meanwhile
            pass


class Task(QObject):
    """One background job and its progress dialog; ``running`` until done or failed."""

    def __init__(
        self,
        parent: QWidget,
        title: str,
        work: Callable[[Progress], Any],
        done: Callable[[Any], None],
        failed: Callable[[BaseException], None],
        pool: QThreadPool | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.running = True
        self.signals = _Signals(self)  # owned by the task: never freed by the worker thread
        self.progress = Progress(lambda stage, n, total: self.signals.progressed.emit(stage, n, total))
        self.dialog = QProgressDialog(f"{title}…", "Cancel", 0, 0, parent)
        self.dialog.setWindowTitle(title)
        self.dialog.setWindowModality(Qt.WindowModality.NonModal)
        self.dialog.setMinimumDuration(300)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self.cancel)
        self._done, self._failed = done, failed
        self.signals.progressed.connect(self._on_progress)
        self.signals.finished.connect(self._on_finished)
        self.signals.failed.connect(self._on_failed)
        (pool or QThreadPool.globalInstance()).start(_Runnable(work, self.progress, self.signals))

    def cancel(self) -> None:
        self.progress.cancel()
        self.dialog.setLabelText(f"{self.title}: cancelling…")

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if not self.running:
            return
        self.dialog.setLabelText(f"{self.title}: {stage}")
        self.dialog.setMaximum(max(total, 0))
        if total > 0:
            self.dialog.setValue(min(done, total))

    def _close(self) -> None:
        self.running = False
        self.dialog.canceled.disconnect(self.cancel)
        self.dialog.close()
        self.dialog.deleteLater()

    def _on_finished(self, result: Any) -> None:
        self._close()
        self._done(result)

    def _on_failed(self, exc: BaseException) -> None:
        self._close()
        self._failed(exc)
