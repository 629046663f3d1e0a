"""Run long core work off the GUI thread, with a progress dialog that cancels it.

The work gets a core :class:`Progress`; its listener (called on the worker thread) posts to
the task's :class:`~surgtwin.ui.gui_inbox.Inbox`, which Qt queues to the GUI thread. Cancel
calls ``Progress.cancel()``; the core then raises ``CancelledError`` at its next step.
Results and errors come back on the GUI thread through ``done(result)`` / ``failed(exception)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool
from PySide6.QtWidgets import QProgressDialog, QWidget

from surgtwin.core.progress import Progress
from surgtwin.ui.gui_inbox import Inbox


class _Runnable(QRunnable):
    """Runs the work and posts the outcome; it holds no Qt object of the GUI's (see gui_inbox)."""

    def __init__(self, work: Callable[[Progress], Any], progress: Progress, inbox: Inbox) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._work: Callable[[Progress], Any] | None = work
        self._progress = progress
        self._inbox = inbox

    def run(self) -> None:
        # the Task holds the work too and frees it on the GUI thread (unless the Task went first)
        work, self._work = self._work, None
        assert work is not None
        try:
            result = work(self._progress)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the GUI as a dialog
            del work
            self._inbox.post("failed", exc)
        else:
            del work
            self._inbox.post("finished", result)


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
        self._work: Callable[[Progress], Any] | None = work  # freed here, on the GUI thread
        self._inbox = Inbox(progressed=self._on_progress, finished=self._on_finished, failed=self._on_failed)
        self.destroyed.connect(self._inbox.close)  # the window went: later news is dropped
        inbox = self._inbox
        self.progress = Progress(lambda stage, n, total: inbox.post("progressed", stage, n, total))
        self.dialog = QProgressDialog(f"{title}…", "Cancel", 0, 0, parent)
        self.dialog.setWindowTitle(title)
        self.dialog.setWindowModality(Qt.WindowModality.NonModal)
        self.dialog.setMinimumDuration(300)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self.cancel)
        self._done, self._failed = done, failed
        (pool or QThreadPool.globalInstance()).start(_Runnable(work, self.progress, self._inbox))

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
        self._inbox.close()
        self._work = None
        self.dialog.canceled.disconnect(self.cancel)
        self.dialog.close()
        self.dialog.deleteLater()

    def _on_finished(self, result: Any) -> None:
        self._close()
        self._done(result)

    def _on_failed(self, exc: BaseException) -> None:
        self._close()
        self._failed(exc)
