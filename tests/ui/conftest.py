"""UI tier: pytest-qt under a real X server (pytest-xvfb starts Xvfb and sets DISPLAY)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# A real X server, not Qt's offscreen platform: the 3D view needs GLX on it.
os.environ["QT_QPA_PLATFORM"] = "xcb"
os.environ.pop("VTK_DEFAULT_OPENGL_WINDOW", None)

ARTIFACTS = Path(os.environ.get("SURGTWIN_UI_ARTIFACTS", Path(__file__).parent / "artifacts"))


@pytest.fixture
def window(qtbot):
    from surgtwin.ui.main_window import MainWindow

    assert os.environ.get("DISPLAY"), "the UI tests need an X server (pytest-xvfb provides one)"
    win = MainWindow()
    qtbot.addWidget(win)
    errors: list = []
    win.show_error = errors.append  # record error dialogs instead of showing them
    win.shown_errors = errors
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
