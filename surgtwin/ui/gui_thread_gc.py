"""Python's cycle collector, run on the GUI thread only.

CPython collects reference cycles in whichever thread happens to cross the allocation
threshold. In this app that is often a worker (meshing, simulation, autosave), and a cycle
it frees may hold a Qt widget or a VTK render window: destroying those off the GUI thread
corrupts the heap (seen in CI as ``malloc_consolidate(): unaligned fastbin chunk``). So the
automatic collector is switched off and a GUI-thread timer collects instead, generation by
generation, with the interpreter's own thresholds. Reference counting, which frees almost
everything, is unaffected.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

CHECK_INTERVAL_MS = 100


def collect_due() -> int:
    """Collect the oldest generation whose count passed its threshold (as CPython would), on
    the calling thread; the number of unreachable objects found."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if thresholds[generation] and counts[generation] > thresholds[generation]:
            return gc.collect(generation)
    return 0


class GuiThreadCollector(QObject):
    """Collects cycles from a GUI-thread timer while installed (one per application)."""

    def __init__(self, parent: QObject, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def collect_due(self) -> int:
        return collect_due()

    def uninstall(self) -> None:
        """Give collection back to the interpreter; a later :func:`install` makes a new one."""
        self._timer.stop()
        self.setParent(None)
        if self._was_enabled:
            gc.enable()


def install(app: QCoreApplication) -> GuiThreadCollector:
    """Install the collector on ``app`` once; later calls return the same one."""
    existing = app.findChild(GuiThreadCollector)
    if isinstance(existing, GuiThreadCollector):
        return existing
    return GuiThreadCollector(app)


__all__ = ["GuiThreadCollector", "collect_due", "install"]
