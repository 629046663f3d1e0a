"""Cycles are freed on the GUI thread, even when a worker thread does the allocating."""

from __future__ import annotations

import gc
import threading

from surgtwin.ui import gui_thread_gc


class _Cycle:
    def __init__(self, freed_on: list[int]) -> None:
        self.me = self  # only the cycle collector can free this
        self._freed_on = freed_on

    def __del__(self) -> None:
        self._freed_on.append(threading.get_ident())


_KEPT: list[list[int]] = []


def _allocate_many_containers() -> None:
    _KEPT.extend([i] for i in range(50_000))  # far past the generation-0 threshold, and kept


def test_a_worker_allocating_does_not_free_the_gui_threads_cycles(qapp, qtbot) -> None:
    collector = gui_thread_gc.install(qapp)
    assert gui_thread_gc.install(qapp) is collector  # one per application
    assert not gc.isenabled()
    freed_on: list[int] = []
    _Cycle(freed_on)
    worker = threading.Thread(target=_allocate_many_containers)
    worker.start()
    worker.join()
    assert freed_on == []  # the worker crossed the thresholds but collected nothing
    qtbot.waitUntil(lambda: bool(freed_on), timeout=5_000)  # the GUI thread's timer did
    assert freed_on == [threading.get_ident()]
    _KEPT.clear()


def test_without_the_collector_a_worker_would_free_it(qapp) -> None:
    """The hazard the collector removes: CPython collects in the allocating thread."""
    collector = gui_thread_gc.install(qapp)
    collector.uninstall()
    gc.enable()  # CPython's default (the test session itself runs with it off, see tests/conftest.py)
    try:
        gc.collect()
        freed_on: list[int] = []
        _Cycle(freed_on)
        worker = threading.Thread(target=_allocate_many_containers)
        worker.start()
        worker.join()
        assert freed_on and freed_on[0] == worker.ident
    finally:
        _KEPT.clear()
        gc.disable()
        assert gui_thread_gc.install(qapp) is not collector
        assert not gc.isenabled()
