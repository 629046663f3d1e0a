"""Per-user settings: recent files, window geometry and docks, layout, presets, opacity.

Stored with ``QSettings`` as an INI file in the platform's per-user place (Linux:
``~/.config/surgtwin/surgtwin.conf``), or in ``$SURGTWIN_SETTINGS_DIR/surgtwin.conf`` when
that is set (tests, portable installs). Every read tolerates missing, corrupt or
wrong-typed values by falling back to the default: a broken settings file never stops
the app from starting.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths
from PySide6.QtWidgets import QMainWindow, QMenu

logger = logging.getLogger(__name__)

ORGANISATION = "surgtwin"
APPLICATION = "surgtwin"
SETTINGS_DIR_ENV = "SURGTWIN_SETTINGS_DIR"
MAX_RECENT_FILES = 10

DEFAULT_LAYOUT = "4-up"  # one of surgtwin.ui.view_grid.LAYOUTS
DEFAULT_WINDOW_PRESET = "soft_tissue"
DEFAULT_OVERLAY_OPACITY = 0.5


def open_qsettings() -> QSettings:
    """The user's settings store: one INI file on every platform (not the Windows registry),
    so the recovery folder can live beside it."""
    folder = os.environ.get(SETTINGS_DIR_ENV)
    if not folder:
        config = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericConfigLocation)
        folder = str(Path(config or Path.home() / ".config") / ORGANISATION)
    return QSettings(str(Path(folder) / f"{APPLICATION}.conf"), QSettings.Format.IniFormat)


def settings_dir() -> Path:
    """The folder holding the settings file (recovery files go below it)."""
    return Path(open_qsettings().fileName()).parent


class UserSettings:
    """Typed, validated access to the user's settings; writes go straight to ``QSettings``."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else open_qsettings()

    @property
    def path(self) -> Path:
        return Path(self.store.fileName())

    @property
    def directory(self) -> Path:
        return self.path.parent

    def sync(self) -> None:
        self.store.sync()

    # --- raw values, never raising --------------------------------------------------
    def _get(self, key: str) -> Any:
        try:
            return self.store.value(key)
        except Exception:  # noqa: BLE001 - an unreadable value is a missing value
            logger.warning("ignoring unreadable setting %s", key)
            return None

    def _text(self, key: str, default: str) -> str:
        value = self._get(key)
        return value if isinstance(value, str) and value.strip() else default

    def _bytes(self, key: str) -> bytes | None:
        value = self._get(key)
        if isinstance(value, QByteArray):
            value = value.data()
        return bytes(value) if isinstance(value, bytes | bytearray) and value else None

    # --- recent files -------------------------------------------------------------
    def _stored_recent(self) -> list[str]:
        value = self._get("recent/files")
        if isinstance(value, str):  # stored as JSON text: QSettings lists change type in INI files
            try:
                value = json.loads(value)
            except ValueError:
                return []
        if not isinstance(value, list):
            return []
        return [item for item in value if isinstance(item, str) and item]

    def _store_recent(self, paths: list[str]) -> None:
        self.store.setValue("recent/files", json.dumps(paths[:MAX_RECENT_FILES]))

    def recent_files(self) -> list[Path]:
        """Most recent first; files and folders that no longer exist are left out."""
        return [Path(p) for p in self._stored_recent() if _exists(Path(p))][:MAX_RECENT_FILES]

    def add_recent_file(self, path: str | Path) -> None:
        """Put ``path`` first (once, by resolved path), keeping at most ten."""
        resolved = _resolved(Path(path))
        kept = [p for p in self._stored_recent() if _resolved(Path(p)) != resolved]
        self._store_recent([str(resolved), *kept])

    def remove_recent_file(self, path: str | Path) -> None:
        resolved = _resolved(Path(path))
        self._store_recent([p for p in self._stored_recent() if _resolved(Path(p)) != resolved])

    def clear_recent_files(self) -> None:
        self._store_recent([])

    # --- window -----------------------------------------------------------------------
    def save_window(self, window: QMainWindow) -> None:
        """Remember the window's geometry and its docks and toolbars (call on close)."""
        self.store.setValue("window/geometry", window.saveGeometry())
        self.store.setValue("window/state", window.saveState())

    def restore_window(self, window: QMainWindow) -> bool:
        """Put the window back as it was; False (window unchanged) when nothing valid is stored.

        Docks and toolbars are matched by object name, so they must exist (and be named) first.
        """
        geometry, state = self._bytes("window/geometry"), self._bytes("window/state")
        restored = False
        if geometry is not None:
            restored = bool(window.restoreGeometry(QByteArray(geometry)))
        if state is not None:
            restored = bool(window.restoreState(QByteArray(state))) or restored
        return restored

    @property
    def window_geometry(self) -> bytes | None:
        return self._bytes("window/geometry")

    @property
    def window_state(self) -> bytes | None:
        return self._bytes("window/state")

    # --- view choices --------------------------------------------------------------
    @property
    def layout_name(self) -> str:
        return self._text("view/layout", DEFAULT_LAYOUT)

    @layout_name.setter
    def layout_name(self, name: str) -> None:
        self.store.setValue("view/layout", str(name))

    @property
    def window_preset(self) -> str:
        """The CT window preset name; the window checks it is still a known preset."""
        return self._text("view/window_preset", DEFAULT_WINDOW_PRESET)

    @window_preset.setter
    def window_preset(self, name: str) -> None:
        self.store.setValue("view/window_preset", str(name))

    @property
    def overlay_opacity(self) -> float:
        """Segmentation overlay opacity in the slice views, 0..1."""
        value = self._get("view/overlay_opacity")
        try:
            number = float(value)
        except (TypeError, ValueError):
            return DEFAULT_OVERLAY_OPACITY
        return number if math.isfinite(number) and 0.0 <= number <= 1.0 else DEFAULT_OVERLAY_OPACITY

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self.store.setValue("view/overlay_opacity", str(min(max(float(value), 0.0), 1.0)))

    @property
    def last_open_directory(self) -> Path | None:
        """Where the last file dialog was; None when unset or the folder is gone."""
        value = self._get("files/last_open_directory")
        if not isinstance(value, str) or not value:
            return None
        folder = Path(value)
        return folder if _is_dir(folder) else None

    @last_open_directory.setter
    def last_open_directory(self, folder: str | Path) -> None:
        folder = Path(folder)
        if _exists(folder) and not _is_dir(folder):
            folder = folder.parent  # given the opened file: remember its folder
        self.store.setValue("files/last_open_directory", str(_resolved(folder)))


def populate_recent_menu(menu: QMenu, settings: UserSettings, open_path: Callable[[Path], Any]) -> None:
    """Fill *File → Open Recent*: one action per existing recent file, then *Clear*."""
    menu.clear()
    recent = settings.recent_files()
    for number, path in enumerate(recent, start=1):
        label = f"&{number % 10} {path.name or path}" if number <= 10 else path.name
        action = menu.addAction(label)
        action.setToolTip(str(path))
        action.setStatusTip(str(path))
        action.setData(str(path))
        action.triggered.connect(lambda _checked=False, p=path: open_path(p))
    if not recent:
        menu.addAction("No recent files").setEnabled(False)
    menu.addSeparator()
    clear = menu.addAction("Clear recent files")
    clear.setEnabled(bool(recent))
    clear.triggered.connect(lambda _checked=False: settings.clear_recent_files())


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):  # a symlink loop or an unreadable folder
        return path.absolute()


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False
