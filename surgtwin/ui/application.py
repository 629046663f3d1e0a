"""Start the desktop application (``surgtwin`` with no arguments, or ``surgtwin PATH``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QApplication

from surgtwin.ui.main_window import MainWindow

logger = logging.getLogger(__name__)


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else [sys.argv[0]])
    app.setApplicationName("surgtwin")
    app.setOrganizationName("surgtwin")
    assert isinstance(app, QApplication)
    return app


def install_error_hook(window: MainWindow) -> None:
    """An exception escaping a Qt slot becomes an error dialog (and a log entry), not a traceback."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: object) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)  # type: ignore[arg-type]
            return
        window.report_error("The last action", exc)

    sys.excepthook = hook


def run_app(path: str | Path | None = None) -> int:
    """Show the main window, open ``path`` (a DICOM folder/zip/file or a .stwin case) and run."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = create_application()
    window = MainWindow()
    install_error_hook(window)
    window.show()
    if path is not None:
        window.open_path(path)
    return int(app.exec())
