"""Deliver a worker thread's news to the GUI thread without touching a QObject that may die.

A worker that emits a signal of a task, panel or window object races the GUI thread, which
may delete that object meanwhile (its window closed): the emit then writes to freed memory,
and the heap corruption surfaces later, anywhere. Here workers only ever emit on one relay
that lives as long as the application. An :class:`Inbox` names its handlers on the GUI thread;
the worker posts a handler's *name* and plain data, never a reference to the receiver, and the
relay calls the handler on the GUI thread only while the inbox is open.
"""

from __future__ import annotations

import inspect
import itertools
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

# Open inboxes (GUI thread only). A handler that is a method is held weakly: an inbox never
# keeps its owner alive (an owner without a Qt parent must still be freed when dropped).
_handlers: dict[int, dict[str, Callable[[], Callable[..., None] | None]]] = {}
_keys = itertools.count(1)


class _Relay(QObject):
    posted = Signal(int, str, object)  # inbox key, handler name, arguments

    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)  # lives as long as the application, on its thread
        self.posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @Slot(int, str, object)
    def _deliver(self, key: int, name: str, args: tuple[Any, ...]) -> None:
        handlers = _handlers.get(key)
        reference = handlers.get(name) if handlers is not None else None
        handler = reference() if reference is not None else None
        if handler is not None:  # else closed, or its owner is gone: the news is dropped
            handler(*args)


_relay: tuple[QCoreApplication, _Relay] | None = None


def _ensure_relay() -> _Relay:
    """The relay of the running application, made on its GUI thread."""
    global _relay
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        raise RuntimeError("an Inbox is made on the GUI thread of a running application")
    if _relay is None or _relay[0] is not app:
        _relay = (app, _Relay(app))
    return _relay[1]


class Inbox:
    """Handlers called on the GUI thread with what workers :meth:`post` from any thread.

    Made and closed on the GUI thread. Posts after :meth:`close` are dropped.
    """

    def __init__(self, **handlers: Callable[..., None]) -> None:
        self._relay = _ensure_relay()
        self._key = next(_keys)
        _handlers[self._key] = {name: _reference(handler) for name, handler in handlers.items()}
        for owner in {id(h.__self__): h.__self__ for h in handlers.values() if inspect.ismethod(h)}.values():
            weakref.finalize(owner, _handlers.pop, self._key, None)  # its owner freed: the entry goes

    def post(self, name: str, *args: Any) -> None:
        """Any thread: call handler ``name`` with ``args`` on the GUI thread, soon."""
        self._relay.posted.emit(self._key, name, args)

    def close(self) -> None:
        _handlers.pop(self._key, None)

    @property
    def open(self) -> bool:
        return self._key in _handlers


def _reference(handler: Callable[..., None]) -> Callable[[], Callable[..., None] | None]:
    if inspect.ismethod(handler):
        return weakref.WeakMethod(handler)
    return lambda: handler


__all__ = ["Inbox"]
