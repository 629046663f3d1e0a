"""Autosave and crash recovery: a recovery copy of an unsaved case, written in the background.

Every ``interval_s`` seconds, when the case has unsaved changes that are not in the
recovery copy yet, :class:`Autosaver` takes a snapshot of the scene on the GUI thread
(the label maps and plan objects copied, since edits change them in place; volumes
shared, since nothing edits voxels) and writes it with the core's atomic ``save_case``
on a worker thread. Beside it goes a JSON sidecar (original case path, title, time, pid).

Files, per running window, in the recovery folder (``$SURGTWIN_RECOVERY_DIR``, else
``<settings folder>/recovery``)::

    recovery-<pid>-<random>.stwin   the case
    recovery-<pid>-<random>.json    the sidecar
    recovery-<pid>-<random>.lock    flock-ed by the writer for as long as it runs

A crashed writer's lock is free (the kernel drops it even after SIGKILL, and a reused pid
does not matter), so :func:`find_recoverable` offers exactly the copies whose writer is
gone. A normal close or a successful save removes the copy.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from surgtwin.core.case import load_case, save_case
from surgtwin.core.case.atomic import atomic_write, remove_stale_temps
from surgtwin.core.scene import Scene
from surgtwin.core.volume import Volume
from surgtwin.ui.gui_inbox import Inbox
from surgtwin.ui.settings import settings_dir
from surgtwin.ui.unsaved import ChangeTracker

try:
    import fcntl
except ImportError:  # Windows: no flock; a writer is judged alive by its pid
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

RECOVERY_DIR_ENV = "SURGTWIN_RECOVERY_DIR"
SIDECAR_FORMAT = "surgtwin-recovery"
PREFIX = "recovery-"


def recovery_dir() -> Path:
    folder = os.environ.get(RECOVERY_DIR_ENV)
    return Path(folder) if folder else settings_dir() / "recovery"


@dataclass(frozen=True)
class RecoveryEntry:
    """A recovery copy left by a surgtwin that did not close normally."""

    case_file: Path
    original_path: Path | None  # the .stwin it was opened from / saved to; None if never saved
    title: str
    saved_at: datetime  # when the copy was written (UTC)
    pid: int | None

    @property
    def sidecar(self) -> Path:
        return self.case_file.with_suffix(".json")

    @property
    def lock_file(self) -> Path:
        return self.case_file.with_suffix(".lock")

    @property
    def name(self) -> str:
        """What the user knows the case as."""
        if self.original_path is not None:
            return self.original_path.name
        return self.title or "an unsaved case"

    def question(self) -> str:
        when = self.saved_at.astimezone().strftime("%Y-%m-%d %H:%M")
        return f"Recover unsaved work on {self.name} from {when}?"


@dataclass(frozen=True)
class RecoveryProblem:
    """A recovery copy that cannot be offered, and why (in words for the user)."""

    case_file: Path
    message: str


def find_recoverable(
    directory: Path | None = None, problems: list[RecoveryProblem] | None = None
) -> list[RecoveryEntry]:
    """Recovery copies whose writer is no longer running, newest first.

    Damaged copies are skipped; each is appended to ``problems`` (when given) and logged.
    Copies of running surgtwins, this one included, are never listed. Never raises.
    """
    folder = directory if directory is not None else recovery_dir()
    try:
        candidates = sorted(folder.glob(f"{PREFIX}*.stwin"))
    except OSError:
        return []
    found: list[RecoveryEntry] = []
    for case_file in candidates:
        if _writer_alive(case_file.with_suffix(".lock"), _sidecar_pid(case_file.with_suffix(".json"))):
            continue
        try:
            found.append(_read_entry(case_file))
        except (OSError, ValueError) as exc:
            problem = RecoveryProblem(
                case_file,
                f"The recovery file {case_file} cannot be used ({exc}); it was skipped. "
                "Delete it if you do not need it.",
            )
            logger.warning("%s", problem.message)
            if problems is not None:
                problems.append(problem)
    _remove_orphans(folder)
    return sorted(found, key=lambda e: e.saved_at, reverse=True)


def _remove_orphans(folder: Path) -> None:
    """Locks (and half-written temps) of dead writers that never left a case: nothing to recover."""
    with suppress(OSError):
        for lock_file in folder.glob(f"{PREFIX}*.lock"):
            case_file = lock_file.with_suffix(".stwin")
            if not case_file.exists() and not _writer_alive(lock_file, None):
                remove_stale_temps(case_file)
                for path in (lock_file, lock_file.with_suffix(".json")):
                    with suppress(OSError):
                        path.unlink()


def load_recovered(entry: RecoveryEntry) -> Scene:
    """The recovered case (a ``CaseFileError`` if it cannot be read). The window then shows it
    with ``entry.original_path`` as its path, marked unsaved, and calls ``Autosaver.adopt``."""
    return load_case(entry.case_file)


def discard_recovery(case_file: Path) -> None:
    """Delete a recovery copy and its sidecar and lock (the user chose not to recover it)."""
    for path in (case_file, case_file.with_suffix(".json"), case_file.with_suffix(".lock")):
        with suppress(FileNotFoundError):
            path.unlink()


def _read_entry(case_file: Path) -> RecoveryEntry:
    sidecar = case_file.with_suffix(".json")
    try:
        with zipfile.ZipFile(case_file) as archive:
            archive.getinfo("manifest.json")  # a cheap check; the full one is load_case's
            if not sidecar.exists():  # killed between the case and its first sidecar
                title = json.loads(archive.read("manifest.json")).get("title")
                stamp = datetime.fromtimestamp(case_file.stat().st_mtime, UTC)
                return RecoveryEntry(case_file, None, title if isinstance(title, str) else "", stamp, None)
    except (zipfile.BadZipFile, EOFError, KeyError, AttributeError, zlib.error) as exc:
        raise ValueError("not a complete surgtwin case file") from exc
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"its description {sidecar.name} is damaged") from exc
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"its description {sidecar.name} is not a surgtwin recovery description")
    original = data.get("original_path")
    title, saved, pid = data.get("title"), data.get("time"), data.get("pid")
    try:
        saved_at = datetime.fromisoformat(saved) if isinstance(saved, str) else None
    except ValueError:
        saved_at = None
    if saved_at is None or saved_at.tzinfo is None:
        saved_at = datetime.fromtimestamp(case_file.stat().st_mtime, UTC)
    return RecoveryEntry(
        case_file,
        Path(original) if isinstance(original, str) and original else None,
        title if isinstance(title, str) else "",
        saved_at,
        pid if isinstance(pid, int) else None,
    )


def _sidecar_pid(sidecar: Path) -> int | None:
    try:
        pid = json.loads(sidecar.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def _writer_alive(lock_file: Path, pid: int | None) -> bool:
    if fcntl is None:
        return pid is not None and _pid_running(pid)
    try:
        fd = os.open(lock_file, os.O_RDWR)
    except OSError:
        return False  # no lock file: the writer is gone (or never got that far)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True  # held: its writer runs (possibly this very process)
    finally:
        os.close(fd)  # also releases the lock we may have taken
    return False


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


# --- the writer ---------------------------------------------------------------------
def snapshot_scene(scene: Scene) -> Scene:
    """A copy that later edits cannot change while it is being written.

    Volumes are shared (their voxels are never edited in place; a shallow copy keeps
    their name); everything else, label maps included, is copied.
    """
    copy_scene = Scene(scene.title, created=scene.created)
    copy_scene.provenance = list(scene.provenance)  # entries are never changed once appended
    for object_id in scene.ids():
        obj = scene.get(object_id)
        copy_scene.add(copy.copy(obj) if isinstance(obj, Volume) else copy.deepcopy(obj), object_id)
    return copy_scene


class _Write(QRunnable):
    def __init__(self, work: Callable[[], Any], generation: int, inbox: Inbox) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._work, self._generation, self._inbox = work, generation, inbox

    def run(self) -> None:
        start = time.perf_counter()
        try:
            self._work()
        except Exception as exc:  # noqa: BLE001 - reported on the GUI thread, never lost
            self._inbox.post("failed", self._generation, exc)
        else:
            self._inbox.post("written", self._generation, time.perf_counter() - start)


class Autosaver(QObject):
    """Writes a recovery copy of the current case while it has unsaved changes.

    ``scene_getter()`` is the scene shown now; ``tracker_getter()`` its :class:`ChangeTracker`;
    ``case_path_getter()`` the .stwin it belongs to (None when never saved).
    """

    saved = Signal(object)  # the recovery file, after each write
    failed = Signal(str)  # why a write failed (the app keeps running; show it in the status line)

    def __init__(
        self,
        parent: QObject | None,
        scene_getter: Callable[[], Scene],
        interval_s: float = 120,
        *,
        tracker_getter: Callable[[], ChangeTracker],
        case_path_getter: Callable[[], Path | None] = lambda: None,
        directory: Path | None = None,
        is_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(parent)
        self._is_ready = is_ready  # False while derived data (meshes) lags the labels
        self._scene_getter = scene_getter
        self._tracker_getter = tracker_getter
        self._case_path_getter = case_path_getter
        self.directory = directory if directory is not None else recovery_dir()
        self.case_file = self.directory / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.stwin"
        self._lock_fd: int | None = None
        self._generation = 0  # bumped by discard(): a write started before it is thrown away
        self._in_flight = False
        self._written: tuple[Scene, object] | None = None  # (scene, state) in the recovery copy
        self._pending: tuple[Scene, object, Path] | None = None  # the write in flight
        self.last_snapshot_ms: float | None = None  # GUI-thread time of the last snapshot
        self.last_write_s: float | None = None  # worker time of the last write
        self._inbox = Inbox(written=self._on_written, failed=self._on_failed)  # see gui_inbox
        self.destroyed.connect(self._inbox.close)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(interval_s * 1000)))
        self.timer.timeout.connect(self.autosave_now)
        self.timer.start()

    @property
    def sidecar(self) -> Path:
        return self.case_file.with_suffix(".json")

    @property
    def busy(self) -> bool:
        return self._in_flight

    def needs_write(self) -> bool:
        scene, tracker = self._scene_getter(), self._tracker_getter()
        if not tracker.dirty:
            return False
        return (
            self._written is None or self._written[0] is not scene or self._written[1] is not tracker.state()
        )

    def autosave_now(self) -> bool:
        """Start writing a recovery copy if one is needed; True when a write started."""
        if self._in_flight or not self._is_ready() or not self.needs_write():
            return False  # not ready: the next tick writes it
        scene, tracker = self._scene_getter(), self._tracker_getter()
        try:
            self._take_lock()
            start = time.perf_counter()
            snapshot = snapshot_scene(scene)
            self.last_snapshot_ms = (time.perf_counter() - start) * 1000.0
        except Exception as exc:  # noqa: BLE001 - autosave must never break the window
            self._report(exc)
            return False
        self._pending = (scene, tracker.state(), self.case_file)
        sidecar = {
            "format": SIDECAR_FORMAT,
            "version": 1,
            "original_path": str(path) if (path := self._case_path_getter()) is not None else None,
            "title": scene.title,
            "pid": os.getpid(),
        }
        case_file = self.case_file
        self._in_flight = True
        self._pool.start(
            _Write(lambda: _write_copy(snapshot, case_file, sidecar), self._generation, self._inbox)
        )
        return True

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until a write in flight has finished (close, tests)."""
        return self._pool.waitForDone(timeout_ms)

    def discard(self) -> None:
        """The case was saved, closed or replaced: remove the recovery copy (also one being written)."""
        self._generation += 1
        self._written = None
        _remove_copy(self.case_file)

    def adopt(self, entry: RecoveryEntry) -> bool:
        """Take over a recovered copy: it stays on disk (this window's own) until saved or closed.

        Call after the recovered case is shown (``load_recovered``) and its tracker marked
        unsaved. False when another surgtwin adopted it first.
        """
        if fcntl is not None:
            try:
                fd = os.open(entry.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                self._report(exc)
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        else:
            fd = None
        self.wait()
        self.discard()
        self._release_lock()
        self._lock_fd, self.case_file = fd, entry.case_file
        self._written = (self._scene_getter(), self._tracker_getter().state())
        return True

    def close(self) -> None:
        """Normal end: stop, let a write finish, and remove the copy and its lock."""
        self.timer.stop()
        self.wait()
        self.discard()
        self._release_lock()
        with suppress(OSError):
            self.case_file.with_suffix(".lock").unlink()

    # --- internals ----------------------------------------------------------------
    def _take_lock(self) -> None:
        if self._lock_fd is not None or fcntl is None:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.case_file.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # our own new file: never contended
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _on_written(self, generation: int, seconds: float) -> None:
        self._in_flight = False
        self.last_write_s = seconds
        assert self._pending is not None
        scene, state, case_file = self._pending
        if generation != self._generation:  # saved, closed or replaced meanwhile: stale
            _remove_copy(case_file)
            return
        self._written = (scene, state)
        self.saved.emit(case_file)

    def _on_failed(self, generation: int, exc: BaseException) -> None:
        self._in_flight = False
        if generation == self._generation:
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        logger.warning("autosave failed: %s", exc)
        self.failed.emit(f"Autosave failed: {exc}")


def _remove_copy(case_file: Path) -> None:
    """Remove a copy and its sidecar (the lock file stays while its writer holds it)."""
    for path in (case_file, case_file.with_suffix(".json")):
        with suppress(FileNotFoundError):
            path.unlink()
    remove_stale_temps(case_file)


def _write_copy(snapshot: Scene, case_file: Path, sidecar: dict[str, Any]) -> None:
    save_case(snapshot, case_file)
    sidecar = {**sidecar, "time": datetime.now(UTC).isoformat(timespec="seconds")}
    with atomic_write(case_file.with_suffix(".json")) as handle:
        handle.write(json.dumps(sidecar, indent=1).encode("utf-8"))
