"""Progress reporting and cooperative cancellation for long work.

The core calls ``progress.step(...)``; a CLI progress bar or a Qt signal listens.
Cancellation is cooperative: ``step`` raises :class:`CancelledError` once
``cancel()`` has been called (from any thread, or a signal handler).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from surgtwin.core.errors import CancelledError

# listener(stage, done, total)
ProgressListener = Callable[[str, int, int], None]


class Progress:
    """A progress sink with a cancel flag, shared by the worker and its observer."""

    def __init__(self, listener: ProgressListener | None = None) -> None:
        self._listener = listener
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._stage = ""
        self._done = 0
        self._total = 0

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise :class:`CancelledError` if cancellation was requested."""
        if self._cancelled.is_set():
            raise CancelledError("cancelled by the user")

    def start(self, stage: str, total: int) -> None:
        with self._lock:
            self._stage, self._done, self._total = stage, 0, total
        self._notify()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units of the current stage done (thread-safe)."""
        with self._lock:
            self._done += n
        self._notify()

    def _notify(self) -> None:
        self.check()
        if self._listener is not None:
            self._listener(self._stage, self._done, self._total)


def ensure_progress(progress: Progress | None) -> Progress:
    """Callers may pass ``None``: they then get a silent, uncancellable sink."""
    return progress if progress is not None else Progress()
