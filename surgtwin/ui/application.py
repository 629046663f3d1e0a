"""Start the desktop application (``surgtwin`` with no arguments, or ``surgtwin PATH``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from surgtwin.ui import gui_thread_gc
from surgtwin.ui.main_window import MainWindow

logger = logging.getLogger(__name__)


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else [sys.argv[0]])
    app.setApplicationName("surgtwin")
    app.setOrganizationName("surgtwin")
    assert isinstance(app, QApplication)
    gui_thread_gc.install(app)  # worker threads must never free a widget or render window
    return app


def install_error_hook(window: MainWindow) -> None:
    """An exception escaping a Qt slot becomes an error dialog (and a log entry), not a traceback."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: object) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)  # type: ignore[arg-type]
            return
        window.report_error("The last action", exc)

    sys.excepthook = hook


class Script:
    """``--twin``, ``--screenshot`` and ``--quit``: steps run one after the other when the
    window is idle (each long step runs in the window's background task)."""

    def __init__(self, window: MainWindow, steps: list[Callable[[], object]], quit_when_ready: bool) -> None:
        self.window = window
        self.steps = steps
        self.quit_when_ready = quit_when_ready
        self.exit_code = 0
        self._timer = QTimer(window)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._next)
        self._timer.start()

    def _next(self) -> None:
        if not self.window.settled:
            return
        if self.window.last_error is not None and self.quit_when_ready:
            print(f"surgtwin: {self.window.last_error.text}", file=sys.stderr)
            self.exit_code = 1
            self.steps.clear()
        if self.steps:
            self.steps.pop(0)()
            return
        self._timer.stop()
        if self.quit_when_ready:
            self.window.close_discarding()  # a scripted run keeps nothing but its screenshot
            QApplication.instance().exit(self.exit_code)


def run_app(
    path: str | Path | None = None,
    *,
    twin: bool = False,
    screenshot: Path | None = None,
    quit_when_ready: bool = False,
) -> int:
    """Show the main window, open ``path`` (a DICOM folder/zip/file or a .stwin case) and run.

    ``twin`` builds the one-click twin once it is open; ``screenshot`` saves a picture of
    the window when everything asked for is done; ``quit_when_ready`` then closes the app
    (exit 1 if a step failed, its message on stderr)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = create_application()
    window = MainWindow()
    install_error_hook(window)
    window.show()
    steps: list[Callable[[], object]] = []

    def recover() -> None:
        if window.offer_recovery():
            steps.clear()  # the recovered case is shown; opening PATH over it would ask to drop it

    # A person starting the app is offered what a crash left; a scripted --quit run is not.
    if not quit_when_ready:
        steps.append(recover)
    if path is not None:
        steps.append(lambda: window.open_path(path))
    if twin:
        steps.append(window.one_click_twin)
    if screenshot is not None:
        steps.append(lambda: window.save_screenshot(screenshot))
    script = Script(window, steps, quit_when_ready)
    code = int(app.exec())
    return script.exit_code or code
