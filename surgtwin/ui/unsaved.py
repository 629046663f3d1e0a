"""Whether the case changed since it was last saved, and the "save changes?" question.

:class:`History` has no saved-point marker, so the tracker remembers which command was on
top of the undo stack when the case was saved. Every change goes through a command, so
the case is unchanged exactly when that same command (or, for a case saved with an empty
undo stack, no command) is on top again: undoing back to the saved point makes it clean.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtWidgets import QMessageBox, QWidget

from surgtwin.core.commands import Command, History

SaveChoice = Literal["save", "discard", "cancel"]

_NEVER_SAVED = object()  # a marker no undo-stack top can equal
_CURRENT = object()


class ChangeTracker:
    """``dirty`` when the history's state differs from the one last marked saved."""

    def __init__(self, history: History, *, saved: bool = True) -> None:
        self.history = history
        self._saved_top: object = self._top() if saved else _NEVER_SAVED

    def _top(self) -> Command | None:
        stack = self.history.undo_stack
        return stack[-1] if stack else None

    @property
    def dirty(self) -> bool:
        return self._top() is not self._saved_top

    def state(self) -> Command | None:
        """A token of the case's current state (compare with ``is``): the undo-stack top."""
        return self._top()

    def mark_saved(self, state: object = _CURRENT) -> None:
        """The case as it is now, or as it was at ``state`` (a ``state()`` token), is on disk.

        A background save passes the token it took when it started, so edits made while it
        was writing still count as unsaved.
        """
        self._saved_top = self._top() if state is _CURRENT else state

    def mark_unsaved(self) -> None:
        """Nothing on disk matches the case (a recovered or never-saved case)."""
        self._saved_top = _NEVER_SAVED


def ask_save_changes(parent: QWidget | None, name: str) -> SaveChoice:
    """Ask "Save changes to <name> before closing?"; the window calls this (tests replace it)."""
    box = QMessageBox(parent)
    box.setObjectName("save_changes_box")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved changes")
    box.setText(f"Save changes to {name} before closing?")
    box.setInformativeText("If you don't save, your changes since the last save will be lost.")
    buttons = QMessageBox.StandardButton
    box.setStandardButtons(buttons.Save | buttons.Discard | buttons.Cancel)
    box.setDefaultButton(buttons.Save)
    box.setEscapeButton(buttons.Cancel)
    answer = box.exec()
    if answer == buttons.Save:
        return "save"
    if answer == buttons.Discard:
        return "discard"
    return "cancel"
