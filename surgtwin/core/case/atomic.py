"""Atomic replacement of a file: a save killed at any moment leaves the old file intact.

The new content goes to a temp file in the target's directory (same file system, so
``os.replace`` is atomic), is flushed and fsynced, replaces the target, and then the
directory entry itself is fsynced. A killed writer can leave its temp file
(``.<name>.tmp-<pid>-<random>``) behind; the next save of the same target removes it.

A live writer holds an exclusive ``flock`` on its temp file until the rename, so the
clean-up can tell a stale temp (lock free: its writer is dead, even after SIGKILL)
from one that another process is still writing.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no flock; stale temps are recognised by age alone
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# Without flock, a temp untouched for this long is assumed abandoned.
STALE_TEMP_AGE_S = 3600.0


def temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def is_temp_for(target: Path, candidate: Path) -> bool:
    return candidate.parent == target.parent and candidate.name.startswith(temp_prefix(target))


def _lock_nonblocking(fd: int) -> bool:
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete temp files left by killed saves of ``target``; best effort, never raises."""
    target = Path(os.path.realpath(target))
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    prefix = temp_prefix(target)
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        candidate = Path(entry.path)
        try:
            if fcntl is None:
                if time.time() - entry.stat().st_mtime > STALE_TEMP_AGE_S:
                    candidate.unlink()
                    removed.append(candidate)
                continue
            fd = os.open(candidate, os.O_RDONLY)
            try:
                if _lock_nonblocking(fd):  # its writer is gone
                    candidate.unlink()
                    removed.append(candidate)
            finally:
                os.close(fd)
        except OSError as exc:
            logger.debug("could not remove stale temp %s: %s", candidate, exc)
    return removed


def _create_locked_temp(target: Path) -> tuple[int, Path]:
    while True:
        fd, name = tempfile.mkstemp(prefix=f"{temp_prefix(target)}{os.getpid()}-", dir=target.parent)
        if fcntl is None:
            return fd, Path(name)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A concurrent clean-up may have taken the lock first and unlinked the file.
        if os.fstat(fd).st_nlink > 0:
            return fd, Path(name)
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(target: Path | str) -> Iterator[BinaryIO]:
    """Yield a seekable binary file; on normal exit it atomically becomes ``target``.

    On any exception (or cancellation) the temp file is removed and ``target`` is
    untouched. A symlinked target is followed: the file it points to is replaced.
    """
    target = Path(os.path.realpath(target))
    remove_stale_temps(target)
    fd, temp = _create_locked_temp(target)
    replaced = False
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            # Keep an existing case's permissions; new ones stay 0600 (patient data).
            with suppress(FileNotFoundError):
                os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
            os.replace(temp, target)  # still locked: clean-ups skip it until now
            replaced = True
        _fsync_directory(target.parent)
    finally:
        if not replaced:
            with suppress(OSError):  # must not hide the error that got us here
                temp.unlink()
