"""A list of segment names with a tick box each, as the Flow and Simulation docks offer them.

Refilling keeps what the user ticked; a name seen for the first time is ticked by a default
rule (vessel-like names for flow, bone for anchors), a name already offered keeps the user's
choice even if they unticked it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget


class NameChecklist(QListWidget):
    def __init__(self, ticked_by_default: Callable[[str], bool], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ticked_by_default = ticked_by_default
        self._offered: set[str] = set()  # defaults apply to names not offered before

    def fill(self, names: Iterable[str]) -> None:
        names = list(names)
        ticked = set(self.ticked())
        self.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = name in ticked or (name not in self._offered and self._ticked_by_default(name))
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.addItem(item)
        self._offered = set(names)

    def forget(self) -> None:
        """Another case: its names get the default ticks again."""
        self._offered = set()

    def ticked(self) -> list[str]:
        items = (self.item(i) for i in range(self.count()))
        return [it.text() for it in items if it.checkState() == Qt.CheckState.Checked]

    def set_ticked(self, names: Iterable[str]) -> None:
        wanted = set(names)
        for i in range(self.count()):
            item = self.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in wanted else Qt.CheckState.Unchecked)


__all__ = ["NameChecklist"]
