"""Keep the 3D meshes in step with label edits: quietly, after a pause, off the GUI thread.

After each change of a segmentation that has meshes (a stroke, scissors, a threshold,
undo, redo) the updater waits until edits pause (``delay_ms``), copies the labels, re-meshes
the segments whose voxels changed in a worker thread and swaps the new geometry into the
existing mesh objects on the GUI thread (see :mod:`surgtwin.core.mesh.sync` for why that
is no command: no undo step, redo stack kept). A newer edit cancels a rebuild under way;
a result made from labels that changed meanwhile is dropped and the labels copied again.

Why a private one-thread pool rather than ``context.run_task``: run_task shows a progress
dialog and refuses while another task (open, save, twin) runs; an update after every
stroke must neither nag nor be refused. One thread keeps rebuilds in order and leaves the
other cores to the user's own tasks. Results wait while ``is_busy()`` (e.g. a save that is
reading the meshes in the background) and are applied once it is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QRunnable, QThreadPool, QTimer, Signal

from surgtwin.core.errors import CancelledError
from surgtwin.core.mesh.sync import LabelSnapshot, MeshSync, RebuiltMeshes, rebuild_meshes
from surgtwin.core.progress import Progress
from surgtwin.core.scene import Scene, SceneEvent
from surgtwin.ui.gui_inbox import Inbox

logger = logging.getLogger(__name__)

UPDATING_TEXT = "3D meshes out of date — updating…"
FAILED_TEXT = "3D meshes out of date: the update failed"
BUSY_RETRY_MS = 200


class ErrorReporter(Protocol):
    def report_error(self, action: str, exc: BaseException) -> None: ...


@dataclass
class _Job:
    sync: MeshSync
    snapshot: LabelSnapshot
    progress: Progress = field(default_factory=Progress)


class _Rebuild(QRunnable):
    def __init__(self, job: _Job, inbox: Inbox) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._job, self._inbox = job, inbox

    def run(self) -> None:
        try:
            result = rebuild_meshes(self._job.snapshot, self._job.progress)
        except Exception as exc:  # noqa: BLE001 - reported on the GUI thread
            self._inbox.post("failed", self._job, exc)
        else:
            self._inbox.post("finished", self._job, result)


class MeshUpdater(QObject):
    """Follows one scene's segmentations and rebuilds their meshes after edits.

    ``pending`` is true from an edit until its meshes are in place (the window shows
    :attr:`status_text` meanwhile; ``out_of_date_changed`` says when that flips).
    """

    out_of_date_changed = Signal(bool)
    status_changed = Signal(str)  # status_text, whenever it changes
    updated = Signal(list)  # the mesh ids given new geometry

    def __init__(
        self,
        context: ErrorReporter,
        scene: Scene | None = None,
        *,
        delay_ms: int = 300,
        is_busy: Callable[[], bool] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._context = context
        self._is_busy = is_busy or (lambda: False)
        self._sync: MeshSync | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._dirty: list[str] = []  # segmentation ids, oldest first
        self._running: _Job | None = None
        self._held: list[tuple[_Job, RebuiltMeshes]] = []  # results waiting for is_busy()
        self._failed = False
        self._was_out_of_date = False
        self._last_text = ""
        self._idle_callbacks: list[Callable[[], None]] = []
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._inbox = Inbox(finished=self._on_finished, failed=self._on_failed)  # see gui_inbox
        self.destroyed.connect(self._inbox.close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._start_next)
        self._retry = QTimer(self)  # results held while is_busy(): try again soon
        self._retry.setSingleShot(True)
        self._retry.setInterval(BUSY_RETRY_MS)
        self._retry.timeout.connect(self._apply_held)
        self.set_scene(scene)

    # --- state -----------------------------------------------------------------
    @property
    def pending(self) -> bool:
        return bool(self._dirty or self._running or self._held)

    @property
    def out_of_date(self) -> bool:
        return self.pending or self._failed

    @property
    def status_text(self) -> str:
        """What the status line should say ("" when every mesh matches its labels)."""
        if self.pending:
            return UPDATING_TEXT
        return FAILED_TEXT if self._failed else ""

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once no update is pending (at once if none is): e.g. save a case
        only after its meshes caught up with the latest edit."""
        self._idle_callbacks.append(callback)
        self._changed_state()

    # --- scene -------------------------------------------------------------------
    def set_scene(self, scene: Scene | None) -> None:
        """Follow ``scene`` (another case was opened); work for the previous one is dropped."""
        self._detach()
        if scene is not None:
            self._sync = MeshSync(scene)
            self._unsubscribe = scene.subscribe(self._on_event)
        self._changed_state()

    def close(self) -> None:
        self._detach()
        self._pool.waitForDone(10_000)  # a cancelled rebuild stops at its next step

    def _detach(self) -> None:
        self._idle_callbacks.clear()  # they were meant for the previous scene
        self._timer.stop()
        self._retry.stop()
        if self._running is not None:
            self._running.progress.cancel()
        self._running = None
        self._dirty.clear()
        self._held.clear()
        self._failed = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def _on_event(self, event: SceneEvent) -> None:
        sync = self._sync
        oid = event.object_id
        if sync is None or event.kind != "changed" or oid is None or not sync.follows(oid):
            return
        if oid not in self._dirty:
            self._dirty.append(oid)
        if self._running is not None and self._running.snapshot.segmentation_id == oid:
            self._running.progress.cancel()  # its result would be stale: start again after the pause
        self._failed = False
        self._timer.start()  # (re)start the pause
        self._changed_state()

    # --- work ----------------------------------------------------------------------
    def _apply_held(self) -> None:
        if self._is_busy():
            self._retry.start()
            return
        held, self._held = self._held, []
        for job, result in held:
            self._apply(job, result)
        self._continue()

    def _start_next(self) -> None:
        while self._running is None and self._dirty and self._sync is not None:
            snapshot = self._sync.snapshot(self._dirty.pop(0))
            if snapshot is not None:
                self._running = _Job(self._sync, snapshot)
                self._pool.start(_Rebuild(self._running, self._inbox))
        self._changed_state()

    def _on_finished(self, job: _Job, result: RebuiltMeshes) -> None:
        if job is not self._running:
            return  # from a scene no longer shown
        self._running = None
        if self._is_busy():
            self._held.append((job, result))
            self._retry.start()
        else:
            self._apply(job, result)
        self._continue()

    def _apply(self, job: _Job, result: RebuiltMeshes) -> None:
        if job.sync is not self._sync:
            return
        try:
            replaced = job.sync.apply(result)
        except Exception as exc:  # noqa: BLE001 - a view failing on the new geometry
            self._failed = True
            self._context.report_error("Update 3D meshes", exc)
            return
        if replaced is None:  # labels changed since the snapshot: copy them again
            if result.segmentation_id not in self._dirty:
                self._dirty.append(result.segmentation_id)
            return
        logger.debug("meshes %s rebuilt in %.3f s", replaced, result.seconds)
        if replaced:
            self.updated.emit(replaced)

    def _on_failed(self, job: _Job, exc: BaseException) -> None:
        if job is not self._running:
            return
        self._running = None
        if not isinstance(exc, CancelledError):  # cancelled: a newer edit queued it again
            self._failed = True
            self._context.report_error("Update 3D meshes", exc)
        self._continue()

    def _continue(self) -> None:
        if self._dirty and not self._timer.isActive():  # else the pause after an edit still runs
            self._start_next()
        self._changed_state()

    def _changed_state(self) -> None:
        if not self.pending and self._idle_callbacks:
            callbacks, self._idle_callbacks = self._idle_callbacks, []
            for callback in callbacks:
                callback()
        now = self.out_of_date
        if now != self._was_out_of_date:
            self._was_out_of_date = now
            self.out_of_date_changed.emit(now)
        text = self.status_text
        if text != self._last_text:
            self._last_text = text
            self.status_changed.emit(text)

    # --- tests and scripts -----------------------------------------------------------
    def flush(self, timeout_s: float = 10.0) -> bool:
        """Skip the pause and process events until every mesh is up to date (True) or
        ``timeout_s`` passed (False). For tests, scripts and saving."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            if self._timer.isActive() and self._running is None:
                self._timer.stop()
                self._start_next()
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.002)
        return not self.pending

    wait_idle = flush

    def __repr__(self) -> str:
        return f"MeshUpdater(pending={self.pending}, dirty={self._dirty!r})"


__all__ = ["MeshUpdater"]
