"""The desktop window driven like a person would: open, twin, toggle, undo, save, reopen."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from surgtwin.render import CT_WINDOW_PRESETS

LONG_MS = 120_000


def _wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.settled, timeout=LONG_MS)


def _image_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * h)
    return data.reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def _not_blank(rgb: np.ndarray) -> bool:
    grey = rgb.astype(np.float32).mean(axis=2)
    return float(grey.std()) > 10 and 0.05 < float((grey > 30).mean()) < 0.98


def test_open_sample_twin_toggle_undo_save_reopen(qtbot, window, sample_dicom, tmp_path, artifacts):
    # Open the sample case folder through the real action and background worker.
    assert window.open_path(sample_dicom / "dicom")
    assert window.busy  # the work runs off the GUI thread
    _wait_idle(qtbot, window)
    assert not window.shown_errors
    assert window.volume is not None
    qtbot.waitUntil(lambda: all(v.image is not None for v in window.slice_views.values()))
    for axis, view in window.slice_views.items():
        assert _not_blank(view.image.rgb), axis
        pixmap = view.view.pixmap()
        assert pixmap is not None and not pixmap.isNull(), axis
    assert any("Synthetic abdomen" in name for name in window.data_panel.series_names())
    assert window.data_panel.findings.count() >= 1  # findings, or "none", shown plainly

    # Scroll an axial slice and change the CT window preset.
    axial = window.slice_views["axial"]
    start = axial.index
    axial.set_index(start + 3)
    assert axial.index == start + 3 and "soft_tissue" in axial.caption.text()
    window.window_combo.setCurrentText("bone")
    assert axial.window_level == "bone" and axial.image.window_level == tuple(
        float(v) for v in CT_WINDOW_PRESETS["bone"]
    )

    screenshot = window.screenshot()
    path = artifacts / "main_window_sample.png"
    assert screenshot.save(str(path))
    assert _not_blank(_image_array(screenshot))

    # One-click twin: segments in the list, meshes in the scene (and the 3D view).
    window.twin_action.trigger()
    assert window.busy
    _wait_idle(qtbot, window)
    assert not window.shown_errors
    qtbot.waitUntil(lambda: window.segments_panel.count() > 0)
    names = window.segments_panel.names()
    assert {"skin", "bone"} <= set(names)
    assert len(window.scene.meshes) >= 2
    print("3D view:", "pyvistaqt QtInteractor" if window.view_3d.interactive else "off-screen snapshots")
    if window.view_3d.interactive:
        assert len(window.view_3d.scene_renderer.visible_mesh_ids()) == len(window.scene.meshes)
    rgb3d = window.view_3d.image()
    assert rgb3d is not None and _not_blank(np.asarray(rgb3d))
    rgb3d = np.asarray(rgb3d).astype(int)
    reddish = (rgb3d[..., 0] > rgb3d[..., 1] + 60) & (rgb3d[..., 0] > rgb3d[..., 2] + 60)
    assert reddish.sum() > 50  # the vessels' red shows through the translucent skin
    assert screenshot.save(str(artifacts / "main_window_sample.png"))  # keep the loaded-sample shot
    window.screenshot().save(str(artifacts / "main_window_twin.png"))

    # Hide "bone" with its checkbox (a SetSegmentProperties command), undo with Ctrl+Z.
    segmentation = window.segmentation
    bone = segmentation.label_of("bone")
    item = window.segments_panel.item_named("bone")
    item.setCheckState(Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: not window.segmentation.segments[bone].visible)
    assert window.history.undo_stack[-1].kind == "set_segment_properties"
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow())
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.segmentation.segments[bone].visible)
    qtbot.waitUntil(lambda: window.segments_panel.item_named("bone").checkState() == Qt.CheckState.Checked)
    qtbot.keyClick(
        window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    qtbot.waitUntil(lambda: not window.segmentation.segments[bone].visible)

    # Save, then reopen the case: the segments (and the hidden state) come back.
    case = tmp_path / "sample.stwin"
    assert window.save_to(case)
    _wait_idle(qtbot, window)
    assert not window.shown_errors and case.is_file() and window.case_path == case
    assert window.open_path(case)
    _wait_idle(qtbot, window)
    assert not window.shown_errors
    qtbot.waitUntil(lambda: window.segments_panel.count() == len(names))
    assert window.segments_panel.names() == names
    assert window.segments_panel.item_named("bone").checkState() == Qt.CheckState.Unchecked
    assert len(window.scene.meshes) >= 2 and window.slice_views["axial"].image is not None


def test_corrupt_file_shows_error_and_window_keeps_working(qtbot, window, shared_data, sample_dicom):
    corrupt = shared_data / "pydicom_data_subset" / "emri_small_jpeg_2k_lossless_too_short.dcm"
    assert corrupt.is_file()
    assert window.open_path(corrupt)
    _wait_idle(qtbot, window)
    assert len(window.shown_errors) == 1
    report = window.shown_errors[0]
    assert report.title == "Open failed"
    assert "What to do:" in report.text and "Traceback" not in report.text
    assert window.volume is None

    assert window.open_path(sample_dicom / "dicom")
    _wait_idle(qtbot, window)
    assert len(window.shown_errors) == 1
    assert window.volume is not None and window.slice_views["axial"].image is not None


def test_cancel_stops_the_import(qtbot, window, sample_dicom):
    window.open_path(sample_dicom / "dicom")
    window.task.cancel()
    _wait_idle(qtbot, window)
    # Either the import finished before the cancel was seen, or it reported a cancellation.
    if window.volume is None:
        assert window.shown_errors and window.shown_errors[0].title == "Open cancelled"


def test_real_error_box_is_not_blocking(qtbot, sample_dicom):
    from PySide6.QtWidgets import QMessageBox

    from surgtwin.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.report_error("Open", FileNotFoundError(2, "No such file or directory", "/nowhere"))
    box = win.findChild(QMessageBox, "error_box")
    assert box is not None and box.isVisible()  # shown, and this line ran: not modal-blocking
    assert "What to do:" in box.text() and "/nowhere" in box.text()
    box.accept()
    win.close()


def test_platform_is_a_real_x_server(qapp):
    assert qapp.platformName() == "xcb"
