"""Unsaved-changes tracking, autosave in the background, and recovery after a real crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from surgtwin.core.case import load_case, save_case
from surgtwin.core.commands import AddMesh, AddVolume, History
from surgtwin.core.mesh.extract import extract_meshes
from surgtwin.core.plan.commands import AddPlanObject
from surgtwin.core.plan.objects import Ruler
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.commands import AddSegmentation, EditLabels, SetSegmentProperties
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume
from surgtwin.ui import unsaved
from surgtwin.ui.autosave import (
    RECOVERY_DIR_ENV,
    Autosaver,
    RecoveryProblem,
    discard_recovery,
    find_recoverable,
    load_recovered,
)
from surgtwin.ui.unsaved import ChangeTracker, ask_save_changes

REPO = Path(__file__).resolve().parents[2]


def build_scene() -> tuple[Scene, History]:
    """A small case with every kind of object; deterministic, so another process builds the same."""
    k, j, i = np.mgrid[0:18, 22:46, 0:26]
    voxels = (40 * np.sin(i / 3.0) + 3 * j - 2 * k).astype(np.int16)
    affine = np.diag([0.8, 0.9, 2.0, 1.0])
    affine[:3, 3] = (-10.0, 20.0, -30.0)
    volume = Volume(voxels, affine, modality="CT", units="HU", name="synthetic")
    scene = Scene("synthetic case")
    history = History(scene)
    history.execute(AddVolume(volume, "vol-1"))
    seg = Segmentation.empty_like(volume, reference_volume_id="vol-1")
    seg.labels[(k - 9) ** 2 + (j - 34) ** 2 + (i - 8) ** 2 < 25] = 1
    seg.labels[3:12, 10:18, 14:22] = 2
    seg.add_segment("ball", (0.9, 0.2, 0.2))
    seg.add_segment("box", (0.2, 0.4, 0.9))
    history.execute(AddSegmentation(seg, "seg-1"))
    for n, mesh in enumerate(extract_meshes(seg).values()):
        mesh.segmentation_id = "seg-1"
        history.execute(AddMesh(mesh, f"mesh-{n}"))
    history.execute(AddPlanObject(Ruler(start=(0.0, 1.0, 2.0), end=(10.0, 1.0, 2.0)), "plan-1"))
    return scene, history


def assert_same_case(loaded: Scene, scene: Scene) -> None:
    assert loaded.ids() == scene.ids()
    assert loaded.title == scene.title
    for object_id in scene.ids():
        original, back = scene.get(object_id), loaded.get(object_id)
        assert type(back) is type(original)
        if isinstance(original, Volume):
            np.testing.assert_array_equal(back.voxels, original.voxels)
            np.testing.assert_allclose(back.ijk_to_lps, original.ijk_to_lps)
        elif isinstance(original, Segmentation):
            np.testing.assert_array_equal(back.labels, original.labels)
            assert [s.name for s in back.segments.values()] == [s.name for s in original.segments.values()]
        elif hasattr(original, "vertices"):
            np.testing.assert_allclose(back.vertices, original.vertices)
            np.testing.assert_array_equal(back.faces, original.faces)
        else:
            assert back.to_dict() == original.to_dict()


@pytest.fixture
def recovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "recovery"
    monkeypatch.setenv(RECOVERY_DIR_ENV, str(folder))
    return folder


# --- unsaved changes ------------------------------------------------------------------
def test_change_tracker_follows_commands_undo_and_saves() -> None:
    scene, history = build_scene()
    tracker = ChangeTracker(history)
    assert not tracker.dirty
    history.execute(SetSegmentProperties("seg-1", 1, visible=False))
    assert tracker.dirty
    history.undo()
    assert not tracker.dirty  # back at the saved point
    history.undo()
    assert tracker.dirty  # before the saved point is a change too
    history.redo()
    history.redo()
    tracker.mark_saved()
    assert not tracker.dirty
    history.undo()
    history.execute(SetSegmentProperties("seg-1", 2, visible=False))  # a new branch
    assert tracker.dirty
    # A background save records the state it started from: later edits stay unsaved.
    started = tracker.state()
    history.execute(SetSegmentProperties("seg-1", 1, visible=False))
    tracker.mark_saved(started)
    assert tracker.dirty
    history.undo()
    assert not tracker.dirty
    tracker.mark_unsaved()
    assert tracker.dirty


def test_never_saved_case_is_dirty_even_with_an_empty_history() -> None:
    scene = Scene("new")
    tracker = ChangeTracker(History(scene), saved=False)
    assert tracker.dirty
    tracker.mark_saved()
    assert not tracker.dirty


@pytest.mark.parametrize(
    ("button", "answer"),
    [
        (QMessageBox.StandardButton.Save, "save"),
        (QMessageBox.StandardButton.Discard, "discard"),
        (QMessageBox.StandardButton.Cancel, "cancel"),
    ],
)
def test_ask_save_changes_returns_the_button_pressed(qtbot, button, answer) -> None:
    seen: list[str] = []

    def press() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):  # not shown yet
            QTimer.singleShot(20, press)
            return
        seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(0, press)
    assert ask_save_changes(None, "liver.stwin") == answer
    assert seen == ["Save changes to liver.stwin before closing?"]
    assert unsaved.ask_save_changes is ask_save_changes  # the name the window calls (tests replace it)


# --- autosave -------------------------------------------------------------------------------
def _autosaver(qtbot, scene: Scene, tracker: ChangeTracker, interval_s: float = 3600.0, **kw) -> Autosaver:
    """An autosaver for ``scene`` (no widget: each test closes it)."""
    return Autosaver(None, lambda: scene, interval_s, tracker_getter=lambda: tracker, **kw)


def test_autosave_writes_only_unsaved_changes_and_goes_away(qtbot, recovery: Path, tmp_path: Path) -> None:
    scene, history = build_scene()
    tracker = ChangeTracker(history)
    original = tmp_path / "case.stwin"
    saver = _autosaver(qtbot, scene, tracker, case_path_getter=lambda: original)
    try:
        assert not saver.autosave_now()  # nothing unsaved: nothing written
        assert not recovery.exists() or not list(recovery.iterdir())
        history.execute(SetSegmentProperties("seg-1", 1, visible=False))
        with qtbot.waitSignal(saver.saved, timeout=20_000) as written:
            assert saver.autosave_now()
            assert not saver.autosave_now()  # one write at a time
        assert written.args == [saver.case_file]
        sidecar = json.loads(saver.sidecar.read_text())
        assert sidecar["original_path"] == str(original)
        assert sidecar["pid"] == os.getpid() and sidecar["title"] == "synthetic case"
        back = load_case(saver.case_file)
        assert_same_case(back, scene)
        assert back.get("seg-1").segments[1].visible is False
        assert oct(saver.case_file.stat().st_mode & 0o777) == oct(0o600)  # patient data
        assert find_recoverable() == []  # this process is alive: its copy is not offered
        assert not saver.autosave_now()  # the copy already holds this state
        history.execute(SetSegmentProperties("seg-1", 2, visible=False))
        with qtbot.waitSignal(saver.saved, timeout=20_000):
            assert saver.autosave_now()
        assert load_case(saver.case_file).get("seg-1").segments[2].visible is False
        # A successful save removes the copy.
        tracker.mark_saved()
        saver.discard()
        assert not saver.case_file.exists() and not saver.sidecar.exists()
        assert not saver.autosave_now()
    finally:
        saver.close()
    assert list(recovery.iterdir()) == []  # lock file gone too after a normal close


def test_the_timer_autosaves_and_measures_the_snapshot(qtbot, recovery: Path) -> None:
    scene, history = build_scene()
    tracker = ChangeTracker(history, saved=False)
    saver = _autosaver(qtbot, scene, tracker, interval_s=0.05)
    try:
        with qtbot.waitSignal(saver.saved, timeout=20_000):
            pass
        assert saver.case_file.is_file()
        assert saver.last_snapshot_ms is not None and saver.last_snapshot_ms < 50.0
        assert saver.last_write_s is not None and saver.last_write_s > 0.0
    finally:
        saver.close()
    assert not saver.case_file.exists()


def test_a_save_during_a_write_leaves_no_stale_copy(qtbot, recovery: Path) -> None:
    scene, history = build_scene()
    tracker = ChangeTracker(history, saved=False)
    saver = _autosaver(qtbot, scene, tracker)
    try:
        assert saver.autosave_now()
        tracker.mark_saved()
        saver.discard()  # the window saved while the copy was being written
        assert saver.wait()
        qtbot.waitUntil(lambda: not saver.busy, timeout=5_000)
        assert not saver.case_file.exists() and not saver.sidecar.exists()
    finally:
        saver.close()


def test_edits_during_a_write_do_not_tear_the_copy(qtbot, recovery: Path) -> None:
    scene, history = build_scene()
    tracker = ChangeTracker(history, saved=False)
    saver = _autosaver(qtbot, scene, tracker)
    seg = scene.get("seg-1")
    before = seg.labels.copy()
    try:
        with qtbot.waitSignal(saver.saved, timeout=20_000):
            assert saver.autosave_now()
            # A brush stroke right after the snapshot edits the label map in place.
            old = seg.labels.copy()
            history.execute(EditLabels("seg-1", (0, 0, 0), old, np.full_like(old, 2)))
        assert load_case(saver.case_file).get("seg-1").segments  # complete and checksums right
        np.testing.assert_array_equal(load_case(saver.case_file).get("seg-1").labels, before)
        assert saver.needs_write()  # the edit is not in the copy yet
        with qtbot.waitSignal(saver.saved, timeout=20_000):
            assert saver.autosave_now()
        assert (load_case(saver.case_file).get("seg-1").labels == 2).all()
    finally:
        saver.close()


# --- crash recovery --------------------------------------------------------------------------
CRASHING_APP = """
import os, signal, sys
from pathlib import Path
from PySide6.QtCore import QCoreApplication
from tests.ui.test_autosave import build_scene
from surgtwin.ui.autosave import Autosaver
from surgtwin.ui.unsaved import ChangeTracker
from surgtwin.core.segmentation.commands import SetSegmentProperties

app = QCoreApplication([])
scene, history = build_scene()
tracker = ChangeTracker(history)
history.execute(SetSegmentProperties("seg-1", 2, visible=False))  # the unsaved edit
saver = Autosaver(None, lambda: scene, 0.05, tracker_getter=lambda: tracker,
                  case_path_getter=lambda: Path(sys.argv[1]))
saver.saved.connect(lambda path: (print("saved", path, flush=True), app.quit()))
saver.failed.connect(lambda message: (print("failed", message, flush=True), app.exit(3)))
app.exec()
sys.stdin.readline()  # alive until the test says so, then crash hard
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_copy_of_a_killed_app_is_offered_and_loads(recovery: Path, tmp_path: Path) -> None:
    original = tmp_path / "liver.stwin"
    env = {**os.environ, RECOVERY_DIR_ENV: str(recovery), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_APP, str(original)],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(90.0, proc.kill)
    watchdog.start()
    try:
        line = proc.stdout.readline()
        assert line.startswith("saved "), line + proc.stderr.read()
        written = Path(line.split(" ", 1)[1].strip())
        assert written.parent == recovery and written.is_file()
        assert find_recoverable() == []  # its writer is still running
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == -9  # SIGKILL: no clean-up ran
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert written.is_file()
    entries = find_recoverable()
    assert [e.case_file for e in entries] == [written]
    entry = entries[0]
    assert entry.original_path == original and entry.pid == proc.pid
    assert entry.title == "synthetic case"
    assert "liver.stwin" in entry.question() and entry.question().startswith("Recover unsaved work")
    recovered = load_recovered(entry)
    scene, history = build_scene()
    history.execute(SetSegmentProperties("seg-1", 2, visible=False))
    assert_same_case(recovered, scene)
    assert recovered.get("seg-1").segments[2].visible is False


def test_an_adopted_copy_is_no_longer_offered_and_goes_on_close(qtbot, recovery: Path) -> None:
    scene, history = build_scene()
    recovery.mkdir(parents=True)
    case_file = recovery / "recovery-1-deadbeef.stwin"  # left by a crashed writer (no lock held)
    save_case(scene, case_file)
    (recovery / "recovery-1-deadbeef.lock").write_bytes(b"")
    [entry] = find_recoverable()
    assert entry.original_path is None and entry.name == "synthetic case"  # no sidecar: still offered
    recovered = load_recovered(entry)
    tracker = ChangeTracker(History(recovered), saved=False)
    assert tracker.dirty  # shown as unsaved: nothing on disk holds it but the recovery copy
    saver = _autosaver(qtbot, recovered, tracker)
    try:
        assert saver.adopt(entry)
        assert saver.case_file == case_file
        assert find_recoverable() == []  # now held by this (live) window
        assert not saver.autosave_now()  # the copy already holds exactly this case
    finally:
        saver.close()
    assert list(recovery.iterdir()) == []


def test_damaged_copies_are_reported_and_skipped(recovery: Path) -> None:
    scene, _ = build_scene()
    recovery.mkdir(parents=True)
    good = recovery / "recovery-11-aaaaaaaa.stwin"
    save_case(scene, good)
    good.with_suffix(".json").write_text(
        json.dumps({"format": "surgtwin-recovery", "original_path": None, "title": "t", "pid": 11})
    )
    truncated = recovery / "recovery-12-bbbbbbbb.stwin"
    truncated.write_bytes(good.read_bytes()[:300])
    bad_sidecar = recovery / "recovery-13-cccccccc.stwin"
    save_case(scene, bad_sidecar)
    bad_sidecar.with_suffix(".json").write_bytes(b"{\xff not json")
    not_a_zip = recovery / "recovery-14-dddddddd.stwin"
    with zipfile.ZipFile(not_a_zip, "w") as archive:
        archive.writestr("other.txt", "no manifest")

    problems: list[RecoveryProblem] = []
    entries = find_recoverable(problems=problems)
    assert [e.case_file for e in entries] == [good]
    assert sorted(p.case_file for p in problems) == [truncated, bad_sidecar, not_a_zip]
    for problem in problems:
        assert str(problem.case_file) in problem.message and "skipped" in problem.message
        assert "Traceback" not in problem.message
    discard_recovery(truncated)
    assert not truncated.exists()
    assert len(find_recoverable(problems=(again := []))) == 1 and len(again) == 2
    orphan = recovery / "recovery-15-eeeeeeee.lock"  # a writer killed before its first copy
    orphan.write_bytes(b"")
    find_recoverable()
    assert not orphan.exists() and good.exists() and bad_sidecar.exists()
