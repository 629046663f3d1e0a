"""The central widget: the slice views and the 3D view in a chosen layout.

Switching layouts only moves the same widgets between grid cells and hides the ones not
shown; nothing is destroyed or re-created, so the 3D view's OpenGL widget (a pyvistaqt
``QtInteractor``) and each view's state survive every switch.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QWidget

VIEW_3D = "3d"
LAYOUTS = ("4-up", "single-axial", "single-coronal", "single-sagittal", "3d-only", "1+3")
LAYOUT_TITLES = {
    "4-up": "Four views",
    "single-axial": "Axial only",
    "single-coronal": "Coronal only",
    "single-sagittal": "Sagittal only",
    "3d-only": "3D only",
    "1+3": "One large, three small",
}
# (view, row, column, row span, column span) per layout; "1+3" is filled in from its primary view.
_FIXED_CELLS: dict[str, list[tuple[str, int, int, int, int]]] = {
    "4-up": [("axial", 0, 0, 1, 1), (VIEW_3D, 0, 1, 1, 1), ("coronal", 1, 0, 1, 1), ("sagittal", 1, 1, 1, 1)],
    "single-axial": [("axial", 0, 0, 1, 1)],
    "single-coronal": [("coronal", 0, 0, 1, 1)],
    "single-sagittal": [("sagittal", 0, 0, 1, 1)],
    "3d-only": [(VIEW_3D, 0, 0, 1, 1)],
}
VIEW_ORDER = ("axial", VIEW_3D, "coronal", "sagittal")
BIG_TO_SMALL = 3  # in "1+3" the large view is this many times as wide as the small column


class ViewGrid(QWidget):
    """Lays out named views: ``"axial"``, ``"coronal"``, ``"sagittal"`` and ``"3d"``."""

    layout_changed = Signal(str)

    def __init__(
        self, slice_views: dict[str, QWidget], view_3d: QWidget, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("view_grid")
        self.views: dict[str, QWidget] = {**slice_views, VIEW_3D: view_3d}
        missing = [name for name in VIEW_ORDER if name not in self.views]
        if missing:
            raise ValueError(f"ViewGrid needs the views {', '.join(missing)}")
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(2, 2, 2, 2)
        self._grid.setSpacing(2)
        for view in self.views.values():
            view.setParent(self)  # children of the grid for good; layouts only move and hide them
        self._layout_name = "4-up"
        self._primary = "axial"
        self._maximized: str | None = None
        self._apply(self._cells("4-up"))

    @property
    def layout_name(self) -> str:
        return self._layout_name

    @property
    def primary_view(self) -> str:
        """The large view of the "1+3" layout."""
        return self._primary

    @property
    def maximized_view(self) -> str | None:
        """The view shown alone by :meth:`maximize`, or None."""
        return self._maximized

    def visible_views(self) -> list[str]:
        return [name for name, view in self.views.items() if not view.isHidden()]

    def set_layout(self, name: str, primary: str | None = None) -> None:
        """Show ``name`` (one of :data:`LAYOUTS`); ``primary`` picks the large view of "1+3"."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUTS)}")
        if primary is not None:
            if primary not in self.views:
                raise ValueError(f"unknown view {primary!r}; choose one of {', '.join(self.views)}")
            self._primary = primary
        self._layout_name = name
        self._maximized = None
        self._apply(self._cells(name))
        self.layout_changed.emit(name)

    def maximize(self, view_name: str) -> None:
        """Show one view alone; calling it again for the same view restores the layout."""
        if view_name not in self.views:
            raise ValueError(f"unknown view {view_name!r}; choose one of {', '.join(self.views)}")
        if self._maximized == view_name:
            self._maximized = None
            self._apply(self._cells(self._layout_name))
        else:
            self._maximized = view_name
            self._apply([(view_name, 0, 0, 1, 1)])

    def _cells(self, name: str) -> list[tuple[str, int, int, int, int]]:
        if name != "1+3":
            return _FIXED_CELLS[name]
        small = [view for view in VIEW_ORDER if view != self._primary]
        return [(self._primary, 0, 0, 3, 1)] + [(view, row, 1, 1, 1) for row, view in enumerate(small)]

    def _apply(self, cells: list[tuple[str, int, int, int, int]]) -> None:
        for view in self.views.values():
            self._grid.removeWidget(view)  # keeps the widget and its parent; only frees the cell
        for i in range(3):
            self._grid.setRowStretch(i, 0)
            self._grid.setColumnStretch(i, 0)
        shown = set()
        for name, row, column, row_span, column_span in cells:
            self._grid.addWidget(self.views[name], row, column, row_span, column_span)
            shown.add(name)
        rows = {row for _, row, _, _, _ in cells}
        columns = {column for _, _, column, _, _ in cells}
        for row in rows:
            self._grid.setRowStretch(row, 1)
        for column in columns:
            self._grid.setColumnStretch(column, 1)
        if self._maximized is None and self._layout_name == "1+3":
            self._grid.setColumnStretch(0, BIG_TO_SMALL)
        for name, view in self.views.items():
            view.setVisible(name in shown)
