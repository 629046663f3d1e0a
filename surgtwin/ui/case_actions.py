"""The case's life in the window: open, save, recent files, unsaved changes, autosave and
recovery, export. A mixin of :class:`~surgtwin.ui.main_window.MainWindow` (kept apart so the
window module stays about views and tools).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from surgtwin.core.commands import AddVolume, History
from surgtwin.core.scene import Scene
from surgtwin.ui import jobs
from surgtwin.ui.autosave import (
    Autosaver,
    RecoveryEntry,
    RecoveryProblem,
    discard_recovery,
    find_recoverable,
    load_recovered,
    snapshot_scene,
)
from surgtwin.ui.export_dialog import ExportDialog
from surgtwin.ui.settings import UserSettings
from surgtwin.ui.unsaved import ChangeTracker, SaveChoice, ask_save_changes

if TYPE_CHECKING:
    from surgtwin.ui.main_window import MainWindow

    _Base = MainWindow
else:
    _Base = object


class CaseActions(_Base):
    """Needs from the window: scene/history/_bind, _start, report_error, set_status, refresh."""

    def _init_case(self) -> None:
        self.settings = UserSettings()
        self.tracker = ChangeTracker(self.history)
        self.autosaver = Autosaver(
            self,
            lambda: self.scene,
            tracker_getter=lambda: self.tracker,
            case_path_getter=lambda: self.case_path,
            is_ready=lambda: not self.mesh_updater.pending,
        )
        self.autosaver.failed.connect(lambda why: self.set_status(f"Autosave failed: {why}"))
        self._closing_after_save = False
        self._close_without_prompt = False

    # --- unsaved changes ------------------------------------------------------------
    def ask_save_changes(self, name: str) -> SaveChoice:
        """Save / Discard / Cancel (tests replace this method)."""
        return ask_save_changes(self, name)

    def maybe_save(self, then: Any = None) -> bool:
        """True when it is fine to drop the current case now. With unsaved changes the user
        chooses; "save" starts a save and calls ``then()`` once it is written."""
        if not self.tracker.dirty:
            return True
        name = self.case_path.name if self.case_path else (self.scene.title or "untitled")
        choice = self.ask_save_changes(name)
        if choice == "discard":
            return True
        if choice == "save":
            self.save(then=then)
        return False

    # --- open ----------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = str(self.settings.last_open_directory or "")
        path = QFileDialog.getExistingDirectory(self, "Open a DICOM folder", start)
        if path:
            self.open_path(path)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a case or file",
            str(self.settings.last_open_directory or ""),
            "Cases and images (*.stwin *.zip *.dcm *.nii *.nii.gz *.nrrd *.mha);;All files (*)",
        )
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a DICOM folder/zip/file or volume file (a new case) or a .stwin case, in the background."""
        path = Path(path)
        if not self.maybe_save(then=lambda: self.open_path(path)):
            return False
        return self._start(
            "Open", lambda progress: jobs.open_path(path, progress, thumbnails=True), self._opened
        )

    def open_series(self, uid: str) -> bool:
        """Open another series of the last scanned folder (a new case, like Open)."""
        scan = self.scan
        if scan is None or not self.maybe_save(then=lambda: self.open_series(uid)):
            return False
        return self._start(
            "Open series", lambda progress: jobs.load_series(scan, uid, progress), self._opened
        )

    def open_dropped(self, paths: list[Path]) -> bool:
        """Files or folders dropped on the window: one is opened as usual; several are one DICOM set."""
        if len(paths) == 1:
            return self.open_path(paths[0])
        if not self.maybe_save(then=lambda: self.open_dropped(paths)):
            return False
        return self._start(
            "Open",
            lambda progress: jobs.load_series(jobs.scan_path(paths, progress), None, progress),
            self._opened,
        )

    def _opened(self, data: jobs.OpenedData) -> None:
        if data.scene is not None:
            scene, history = data.scene, History(data.scene)
            self.case_path = data.path
        else:
            assert data.volume is not None
            scene = Scene(title=data.volume.name or data.path.name)
            history = History(scene)
            history.execute(AddVolume(data.volume))  # an import alone is no work to lose
            self.case_path = None
        self.inventory, self.findings = data.inventory, data.findings
        if data.scan is not None:
            self.scan = data.scan
            self.data_panel.set_thumbnails(data.scan.thumbnails, data.scan.thumbnail_reasons)
        self.settings.add_recent_file(data.path)
        self.settings.last_open_directory = data.path
        self._bind(scene, history)
        self.set_status(f"Opened {data.path}")

    # --- save ----------------------------------------------------------------------
    def save(self, then: Any = None) -> bool:
        if self.case_path is None:
            return self.choose_save_path(then=then)
        return self.save_to(self.case_path, then=then)

    def choose_save_path(self, then: Any = None) -> bool:
        start = self.case_path or self.settings.last_open_directory or Path()
        path, _ = QFileDialog.getSaveFileName(self, "Save case", str(start), "surgtwin case (*.stwin)")
        return bool(path) and self.save_to(path, then=then)

    def save_to(self, path: str | Path, then: Any = None) -> bool:
        path = Path(path)
        if not jobs.is_case_file(path):
            path = path.with_name(path.name + jobs.CASE_SUFFIX)
        scene = self.scene
        if self.mesh_updater.pending:  # save surfaces that match the labels
            self.mesh_updater.when_idle(lambda: self.scene is scene and self._start_when_free(path, then))
            self.set_status("Saving once the 3D meshes are updated…")
            return True
        # The worker writes a copy taken now: edits made while it writes (the window stays
        # usable) must not tear the file between its checksums and its arrays.
        state, snapshot = self.tracker.state(), snapshot_scene(scene)

        def done(saved: Path) -> None:
            if self.scene is scene:
                scene.provenance.append(snapshot.provenance[-1])  # the save record
                self.case_path = saved
                self.tracker.mark_saved(state)  # edits made while it was writing stay unsaved
                self.autosaver.discard()
                self.settings.add_recent_file(saved)
                self.refresh()
            self.set_status(f"Saved {saved}")
            if then is not None:
                if self.tracker.dirty:  # edited while saving: ask again rather than lose it
                    self.set_status(f"Saved {saved}; there are newer changes")
                    if then == self.close_discarding:
                        self.close()
                else:
                    then()

        return self._start("Save", lambda progress: jobs.save(snapshot, path, progress), done)

    def _start_when_free(self, path: Path, then: Any) -> bool:
        """A deferred save: wait for a running task rather than drop the save."""
        if self.busy:
            QTimer.singleShot(200, lambda: self._start_when_free(path, then))
            return True
        return self.save_to(path, then)

    # --- export --------------------------------------------------------------------
    def open_export_dialog(self) -> ExportDialog | None:
        if not self.scene.segmentations:
            nothing = RuntimeError("there is nothing to export yet: make or import segments")
            self.report_error("Export", nothing)
            return None
        out = self.case_path.parent / f"{self.case_path.stem}_export" if self.case_path else None
        dialog = ExportDialog(
            self.scene, self, run_task=self.run_task, report_error=self.report_error, output_dir=out
        )
        dialog.exported.connect(lambda files: self.set_status(f"Exported {len(files)} files"))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # window-modal: no edits while it exports the arrays
        return dialog

    # --- recovery after a crash ---------------------------------------------------------
    def ask_recover(self, entry: RecoveryEntry) -> bool:
        """Yes/No for one recovery copy (tests replace this method)."""
        answer = QMessageBox.question(self, "Recover unsaved work", entry.question())
        return answer == QMessageBox.StandardButton.Yes

    def offer_recovery(self) -> bool:
        """At start: offer the copies autosaved by sessions that ended without closing.
        True when the user took one (then nothing else should be opened over it)."""
        problems: list[RecoveryProblem] = []
        recovered = False
        for entry in find_recoverable(self.autosaver.directory, problems):
            if self.ask_recover(entry):
                self._recover(entry)
                recovered = True
                break
            discard_recovery(entry.case_file)
        if problems:
            self.set_status("Some recovery copies were damaged and skipped: " + problems[0].message)
        return recovered

    def _recover(self, entry: RecoveryEntry) -> None:
        def done(scene: Scene) -> None:
            self.case_path = entry.original_path
            self._bind(scene, History(scene), saved=False)
            self.autosaver.adopt(entry)
            self.set_status(f"Recovered unsaved work from {entry.saved_at}; save it to keep it")

        self._start("Recover", lambda _progress: load_recovered(entry), done)

    # --- closing -------------------------------------------------------------------
    def close_discarding(self) -> None:
        """Close without asking about unsaved changes (scripted ``--quit``)."""
        self._close_without_prompt = True
        self.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not self._close_without_prompt and not self.maybe_save(then=self.close_discarding):
            event.ignore()
            return
        if self.task is not None and self.task.running:
            self.task.cancel()
        self.settings.save_window(self)
        self.autosaver.close()
        self._shutdown()
        super().closeEvent(event)
