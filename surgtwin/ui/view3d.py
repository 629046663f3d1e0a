"""The 3D view: a pyvistaqt ``QtInteractor`` whose renderer a ``SceneRenderer`` fills.

When an interactive OpenGL widget cannot be made (``SURGTWIN_3D=snapshot``, or pyvistaqt
fails to start), the view falls back to an off-screen snapshot shown as an image, refreshed
on every scene change.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from surgtwin.core.scene import Scene
from surgtwin.render import SceneRenderer, capture_window, render_3d_snapshot

logger = logging.getLogger(__name__)


class View3D(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view_3d")
        self.scene: Scene | None = None
        self.scene_renderer: SceneRenderer | None = None
        self.interactor = None
        self._snapshot_label: QLabel | None = None
        self._unsubscribe = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(1, 1, 1, 1)
        if os.environ.get("SURGTWIN_3D", "").lower() != "snapshot":
            try:
                from pyvistaqt import QtInteractor

                self.interactor = QtInteractor(self)
                self._layout.addWidget(self.interactor.interactor)
            except Exception as exc:  # noqa: BLE001 - any GL start failure means: use snapshots
                logger.warning("interactive 3D view unavailable (%s); using snapshots", exc)
                self.interactor = None
        if self.interactor is None:
            self._snapshot_label = QLabel("3D view")
            self._snapshot_label.setMinimumSize(120, 120)
            self._snapshot_label.setStyleSheet("background: black; color: #aaa;")
            self._layout.addWidget(self._snapshot_label)

    @property
    def interactive(self) -> bool:
        return self.interactor is not None

    def set_scene(self, scene: Scene) -> None:
        if self.scene_renderer is not None:
            self.scene_renderer.close()
            self.scene_renderer = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.scene = scene
        self._had_meshes = False
        if self.interactor is not None:
            self.scene_renderer = SceneRenderer(scene, self.interactor.renderer, on_change=self._changed)
            self._changed(reset_camera=True)
        else:
            self._unsubscribe = scene.subscribe(lambda _event: self._snapshot())
            self._snapshot()

    def _changed(self, reset_camera: bool = False) -> None:
        if self._in_change:
            return
        self._in_change = True
        try:
            self._update_camera(reset_camera)
        finally:
            self._in_change = False
        if self.interactor is not None:
            self.interactor.render()

    _in_change = False

    def _update_camera(self, reset_camera: bool) -> None:
        if self.scene_renderer is not None and (reset_camera or not self._had_meshes):
            if self.scene_renderer.mesh_ids():
                self.scene_renderer.set_camera("anterior")
        self._had_meshes = bool(self.scene_renderer and self.scene_renderer.mesh_ids())

    _had_meshes = False

    def _snapshot(self) -> None:
        if self._snapshot_label is None or self.scene is None:
            return
        if not self.scene.meshes:
            self._snapshot_label.setText("3D view: no meshes yet (run One-click twin)")
            return
        from surgtwin.ui.slice_view import rgb_to_qimage

        rgb = render_3d_snapshot(self.scene, size=(480, 360), camera="anterior")
        self._snapshot_label.setPixmap(QPixmap.fromImage(rgb_to_qimage(rgb)))

    def image(self) -> np.ndarray | None:
        """What the view shows now, as (h, w, 3) uint8 (for screenshots and tests)."""
        if self.interactor is not None:
            self.interactor.render()
            return capture_window(self.interactor.ren_win)
        if self.scene is not None and self.scene.meshes:
            return render_3d_snapshot(self.scene, size=(480, 360), camera="anterior")
        return None

    def close_view(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.scene_renderer is not None:
            self.scene_renderer.close()
            self.scene_renderer = None
        if self.interactor is not None:
            self.interactor.close()
            self.interactor = None
