"""Workers reach the GUI thread only through an inbox; a closed inbox (its owner gone) drops
their news instead of touching freed Qt objects."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QWidget

from surgtwin.ui.gui_inbox import Inbox
from surgtwin.ui.worker import Task


def test_posts_from_a_worker_run_on_the_gui_thread_in_order(qtbot) -> None:
    calls: list[tuple[int, int]] = []
    inbox = Inbox(step=lambda n: calls.append((n, threading.get_ident())))
    worker = threading.Thread(target=lambda: [inbox.post("step", n) for n in range(5)])
    worker.start()
    worker.join()
    assert calls == []  # queued: nothing runs on the worker thread
    qtbot.waitUntil(lambda: len(calls) == 5, timeout=5_000)
    assert calls == [(n, threading.get_ident()) for n in range(5)]
    inbox.close()


def test_a_closed_inbox_drops_what_arrives_later(qtbot) -> None:
    calls: list[str] = []
    inbox = Inbox(news=calls.append)
    inbox.post("news", "before")
    inbox.close()
    assert not inbox.open
    inbox.post("news", "after")
    qtbot.wait(50)
    assert calls == []  # even the post made before close() is dropped: the owner is gone


def test_an_inbox_is_made_on_the_gui_thread_only(qapp) -> None:
    failures: list[BaseException] = []

    def make() -> None:
        try:
            Inbox()
        except RuntimeError as exc:
            failures.append(exc)

    worker = threading.Thread(target=make)
    worker.start()
    worker.join()
    assert len(failures) == 1 and "GUI thread" in str(failures[0])


@pytest.mark.parametrize("outcome", ["finished", "failed"])
def test_a_task_whose_window_is_deleted_mid_run_ends_quietly(qtbot, outcome) -> None:
    """The window that started the work goes while it runs: the worker finishes, nothing is
    delivered to the deleted task, and the next task runs normally."""
    window = QWidget()
    release = threading.Event()
    done: list[object] = []

    def work(_progress):
        release.wait(5.0)
        if outcome == "failed":
            raise ValueError("late failure")
        return "late result"

    task = Task(window, "Work", work, done.append, done.append)
    inbox = task._inbox
    window.deleteLater()
    qtbot.waitUntil(lambda: not inbox.open, timeout=5_000)  # the task went with its window
    release.set()
    assert QThreadPool.globalInstance().waitForDone(5_000)  # the worker has finished and posted
    qtbot.wait(50)
    assert done == []

    other = QWidget()
    qtbot.addWidget(other)
    results: list[object] = []
    Task(other, "Next", lambda _p: 42, results.append, results.append)
    qtbot.waitUntil(lambda: results == [42], timeout=5_000)


def test_an_inbox_does_not_keep_its_owner_alive(qtbot) -> None:
    class Owner:
        def __init__(self, calls: list[str]) -> None:
            self.calls = calls
            self.inbox = Inbox(news=self.news)

        def news(self, text: str) -> None:
            self.calls.append(text)

    calls: list[str] = []
    owner = Owner(calls)
    owner.inbox.post("news", "kept")
    qtbot.waitUntil(lambda: calls == ["kept"], timeout=5_000)
    inbox, gone = owner.inbox, weakref.ref(owner)
    del owner
    gc.collect()
    assert gone() is None  # freed although its inbox was never closed
    inbox.post("news", "late")
    qtbot.wait(50)
    assert calls == ["kept"]
