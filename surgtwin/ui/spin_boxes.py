"""The number boxes the docks share: a range, a start value, a unit."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox


def number_box(
    low: float, high: float, value: float, suffix: str, decimals: int = 1, *, keyboard_tracking: bool = True
) -> QDoubleSpinBox:
    """A decimal box; ``keyboard_tracking=False`` reports a value once it is typed in full."""
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setValue(value)
    spin.setSuffix(suffix)
    spin.setKeyboardTracking(keyboard_tracking)
    return spin


def count_box(low: int, high: int, value: int, step: int) -> QSpinBox:
    """A whole-number box with thousands separators."""
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSingleStep(step)
    spin.setGroupSeparatorShown(True)
    return spin
