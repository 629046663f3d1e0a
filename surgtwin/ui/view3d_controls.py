"""A small panel for the 3D view: volume rendering preset, clipping slider, pick and scissors
modes, and saving the view as a PNG. It only calls :class:`View3D`'s public methods."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QSlider,
    QWidget,
)

from surgtwin.render import VOLUME_PRESETS
from surgtwin.ui.view3d import CLIP_AXES, View3D

SLIDER_STEPS = 200


class View3DControls(QWidget):
    def __init__(self, view: View3D, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view3d_controls")
        self.view = view
        form = QFormLayout(self)

        self.volume_box = QComboBox()
        self.volume_box.addItem("Off", None)
        for name, preset in VOLUME_PRESETS.items():
            self.volume_box.addItem(preset.title, name)
        self.volume_box.currentIndexChanged.connect(self._volume_changed)
        form.addRow("Volume rendering", self.volume_box)

        self.clip_box = QCheckBox("Clip")
        self.clip_axis = QComboBox()
        self.clip_axis.addItems(list(CLIP_AXES))
        self.clip_flip = QCheckBox("Flip")
        self.clip_slider = QSlider(Qt.Orientation.Horizontal)
        self.clip_slider.setRange(0, SLIDER_STEPS)
        self.clip_slider.setValue(SLIDER_STEPS // 2)
        row = QHBoxLayout()
        for widget in (self.clip_box, self.clip_axis, self.clip_flip):
            row.addWidget(widget)
        form.addRow(row)
        form.addRow("Plane", self.clip_slider)
        for signal in (
            self.clip_box.toggled,
            self.clip_axis.currentIndexChanged,
            self.clip_flip.toggled,
            self.clip_slider.valueChanged,
        ):
            signal.connect(self._clip_changed)

        self.pick_button = QPushButton("Pick")
        self.pick_button.setCheckable(True)
        self.pick_button.setToolTip("Click a surface to see its segment and position (or shift-click)")
        self.pick_button.toggled.connect(view.set_pick_mode)
        self.scissors_button = QPushButton("Scissors")
        self.scissors_button.setCheckable(True)
        self.scissors_button.setToolTip("Draw a lasso: cuts the selected segment through its whole depth")
        self.scissors_inside = QComboBox()
        self.scissors_inside.addItem("erase inside", True)
        self.scissors_inside.addItem("erase outside", False)
        self.scissors_button.toggled.connect(self._scissors_changed)
        self.scissors_inside.currentIndexChanged.connect(self._scissors_changed)
        row = QHBoxLayout()
        for widget in (self.pick_button, self.scissors_button, self.scissors_inside):
            row.addWidget(widget)
        form.addRow(row)

        self.save_button = QPushButton("Save view as PNG…")
        self.save_button.clicked.connect(self.choose_screenshot_path)
        form.addRow(self.save_button)

    def _volume_changed(self) -> None:
        self._guard("Volume rendering", lambda: self.view.set_volume_rendering(self.volume_box.currentData()))

    def _clip_changed(self) -> None:
        def apply() -> None:
            if not self.clip_box.isChecked():
                self.view.set_clipping(False)
                return
            fraction = self.clip_slider.value() / SLIDER_STEPS
            self.view.set_clipping_axis(self.clip_axis.currentText(), fraction, self.clip_flip.isChecked())

        self._guard("Clipping", apply)

    def _scissors_changed(self) -> None:
        if self.scissors_button.isChecked() and self.pick_button.isChecked():
            self.pick_button.setChecked(False)  # one left-button mode at a time
        self.view.set_scissors_mode(self.scissors_button.isChecked(), self.scissors_inside.currentData())

    def choose_screenshot_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the 3D view", "view3d.png", "PNG image (*.png)")
        if path:
            self._guard("Save view", lambda: self.view.save_screenshot(path))

    def _guard(self, action: str, work) -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - a dialog, never a traceback
            if self.view.context is not None:
                self.view.context.report_error(action, exc)
            else:
                raise
