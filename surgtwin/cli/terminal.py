"""Terminal progress bar and Ctrl-C handling for the command line."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from surgtwin.core.progress import Progress


class ProgressBar:
    """Draws ``stage [#####     ] done/total`` on a terminal; silent when not a TTY."""

    WIDTH = 30
    MIN_INTERVAL_S = 0.1

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self._last = 0.0
        self._drawn = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < self.MIN_INTERVAL_S:
            return
        self._last = now
        filled = int(self.WIDTH * done / total) if total else self.WIDTH
        bar = "#" * filled + " " * (self.WIDTH - filled)
        self.stream.write(f"\r{stage[:28]:<28} [{bar}] {done}/{total}")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * (self.WIDTH + 50) + "\r")
            self.stream.flush()
            self._drawn = False


@contextmanager
def cancellable_progress() -> Iterator[Progress]:
    """A Progress whose first Ctrl-C cancels the work cleanly; a second one interrupts at once."""
    bar = ProgressBar()
    progress = Progress(bar)

    def on_interrupt(signum: int, frame: object) -> None:
        if progress.cancelled:
            raise KeyboardInterrupt
        progress.cancel()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield progress
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.finish()
