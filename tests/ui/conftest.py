"""UI tier: pytest-qt under a real X server (pytest-xvfb starts Xvfb and sets DISPLAY)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

# A real X server, not Qt's offscreen platform: the 3D view needs GLX on it.
os.environ["QT_QPA_PLATFORM"] = "xcb"
os.environ.pop("VTK_DEFAULT_OPENGL_WINDOW", None)

ARTIFACTS = Path(os.environ.get("SURGTWIN_UI_ARTIFACTS", Path(__file__).parent / "artifacts"))


@pytest.fixture(autouse=True)
def gui_thread_gc(qapp):
    """As in the app: cycles are collected on the GUI thread only, never by a worker thread
    (a worker freeing the previous test's window corrupts the heap). Each test ends with a
    collection here, on the GUI thread."""
    from surgtwin.ui import gui_thread_gc

    gui_thread_gc.install(qapp)
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def background_work_ends_with_its_test(qapp):
    """Work a test started (or cancelled) on the shared thread pool finishes before the next
    test begins, so no numba or VTK work of one test runs under another's windows."""
    from PySide6.QtCore import QThreadPool

    yield
    assert QThreadPool.globalInstance().waitForDone(60_000), "background work still running after a minute"


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """Never read or write the real user's settings and recovery copies."""
    monkeypatch.setenv("SURGTWIN_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("SURGTWIN_RECOVERY_DIR", str(tmp_path / "recovery"))


@pytest.fixture
def window(qtbot):
    from surgtwin.ui.main_window import MainWindow

    assert os.environ.get("DISPLAY"), "the UI tests need an X server (pytest-xvfb provides one)"
    win = MainWindow()
    qtbot.addWidget(win)
    errors: list = []
    win.show_error = errors.append  # record error dialogs instead of showing them
    win.shown_errors = errors
    win.save_questions = []  # names asked about; the answer is "discard" unless a test changes it
    win.save_answer = "discard"
    win.ask_save_changes = lambda name: (win.save_questions.append(name), win.save_answer)[1]
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
