"""User settings: stored in a redirected folder, recent files, window state, corrupt values."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMenu

from surgtwin.ui.settings import (
    DEFAULT_LAYOUT,
    DEFAULT_OVERLAY_OPACITY,
    DEFAULT_WINDOW_PRESET,
    MAX_RECENT_FILES,
    SETTINGS_DIR_ENV,
    UserSettings,
    populate_recent_menu,
    settings_dir,
)


@pytest.fixture
def settings_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "settings"
    monkeypatch.setenv(SETTINGS_DIR_ENV, str(folder))
    return folder


def _files(tmp_path: Path, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        path = tmp_path / f"case{n}.stwin"
        path.write_bytes(b"x")
        paths.append(path)
    return paths


def test_settings_live_in_the_redirected_folder(settings_folder: Path) -> None:
    settings = UserSettings()
    settings.layout_name = "single"
    settings.sync()
    assert settings.path == settings_folder / "surgtwin.conf"
    assert settings.path.is_file() and "single" in settings.path.read_text()
    assert settings_dir() == settings_folder
    assert UserSettings().layout_name == "single"  # a second instance reads the same file


def test_default_place_is_the_users_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SETTINGS_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # stands in for ~/.config
    assert UserSettings().path == tmp_path / "config" / "surgtwin" / "surgtwin.conf"
    assert settings_dir() == tmp_path / "config" / "surgtwin"


def test_recent_files_newest_first_deduplicated_and_capped(settings_folder: Path, tmp_path: Path) -> None:
    settings = UserSettings()
    paths = _files(tmp_path, MAX_RECENT_FILES + 3)
    for path in paths:
        settings.add_recent_file(path)
    recent = settings.recent_files()
    assert recent == list(reversed(paths))[:MAX_RECENT_FILES]
    # The same file through another spelling moves to the top instead of appearing twice.
    settings.add_recent_file(tmp_path / "sub" / ".." / paths[5].name)
    recent = UserSettings().recent_files()
    assert recent[0] == paths[5].resolve() and len(recent) == MAX_RECENT_FILES
    assert [p.resolve() for p in recent].count(paths[5].resolve()) == 1


def test_missing_recent_files_are_left_out(settings_folder: Path, tmp_path: Path) -> None:
    settings = UserSettings()
    first, second, third = _files(tmp_path, 3)
    folder = tmp_path / "dicom"
    folder.mkdir()
    for path in (first, second, third, folder):
        settings.add_recent_file(path)
    second.unlink()
    assert settings.recent_files() == [folder, third, first]
    settings.remove_recent_file(third)
    assert settings.recent_files() == [folder, first]
    settings.clear_recent_files()
    assert settings.recent_files() == []


def test_recent_menu_opens_the_chosen_file(qtbot, settings_folder: Path, tmp_path: Path) -> None:
    settings = UserSettings()
    first, second = _files(tmp_path, 2)
    settings.add_recent_file(first)
    settings.add_recent_file(second)
    menu = QMenu()
    qtbot.addWidget(menu)
    opened: list[Path] = []
    populate_recent_menu(menu, settings, opened.append)
    actions = [a for a in menu.actions() if a.data()]
    assert [a.data() for a in actions] == [str(second), str(first)]
    actions[1].trigger()
    assert opened == [first]
    clear = next(a for a in menu.actions() if a.text() == "Clear recent files")
    clear.trigger()
    populate_recent_menu(menu, settings, opened.append)
    assert not [a for a in menu.actions() if a.data()]
    assert not next(a for a in menu.actions() if a.text() == "No recent files").isEnabled()


def _window() -> QMainWindow:
    window = QMainWindow()
    window.setCentralWidget(QLabel("centre"))
    dock = QDockWidget("Data", window)
    dock.setObjectName("dock_data")
    dock.setWidget(QLabel("data"))
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    return window


def test_window_geometry_and_docks_come_back(qtbot, settings_folder: Path) -> None:
    window = _window()
    qtbot.addWidget(window)
    window.resize(700, 500)
    window.show()
    qtbot.waitExposed(window)
    dock = window.findChild(QDockWidget, "dock_data")
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    UserSettings().save_window(window)

    again = _window()
    qtbot.addWidget(again)
    assert (
        again.dockWidgetArea(again.findChild(QDockWidget, "dock_data"))
        == Qt.DockWidgetArea.LeftDockWidgetArea
    )
    assert UserSettings().restore_window(again)
    again.show()
    qtbot.waitExposed(again)
    assert (
        again.dockWidgetArea(again.findChild(QDockWidget, "dock_data"))
        == Qt.DockWidgetArea.RightDockWidgetArea
    )
    assert (again.width(), again.height()) == (window.width(), window.height())


def test_view_choices_round_trip(settings_folder: Path, tmp_path: Path) -> None:
    settings = UserSettings()
    settings.layout_name = "three_d"
    settings.window_preset = "bone"
    settings.overlay_opacity = 0.25
    (tmp_path / "case0.stwin").write_bytes(b"x")
    settings.last_open_directory = tmp_path / "case0.stwin"  # a file: its folder is kept
    settings.sync()
    again = UserSettings()
    assert (again.layout_name, again.window_preset) == ("three_d", "bone")
    assert again.overlay_opacity == pytest.approx(0.25)
    assert again.last_open_directory == tmp_path.resolve()
    again.overlay_opacity = 7.0  # clamped to 0..1
    assert again.overlay_opacity == 1.0


def test_corrupt_and_wrong_typed_values_fall_back_to_defaults(settings_folder: Path, qtbot) -> None:
    settings_folder.mkdir(parents=True)
    (settings_folder / "surgtwin.conf").write_bytes(
        b"[recent]\nfiles=[not json\n"
        b"[view]\nlayout=\nwindow_preset=@Variant(\\0\\0\\0\\x7f\\0\\0\\0)\noverlay_opacity=nan\n"
        b"[window]\ngeometry=garbage\nstate=@ByteArray(not a state)\n"
        b"[files]\nlast_open_directory=/no/such/folder\n\x00\xff\xfe binary junk\n"
    )
    settings = UserSettings()
    assert settings.recent_files() == []
    assert settings.layout_name == DEFAULT_LAYOUT
    assert settings.window_preset == DEFAULT_WINDOW_PRESET
    assert settings.overlay_opacity == DEFAULT_OVERLAY_OPACITY
    assert settings.last_open_directory is None
    window = _window()
    qtbot.addWidget(window)
    size = window.size()
    assert settings.restore_window(window) is False
    assert window.size() == size
    # Values of the wrong type written by another program.
    store = QSettings(str(settings.path), QSettings.Format.IniFormat)
    store.setValue("recent/files", 42)
    store.setValue("view/overlay_opacity", [1, 2])
    store.sync()
    settings = UserSettings()
    assert settings.recent_files() == []
    assert settings.overlay_opacity == DEFAULT_OVERLAY_OPACITY
