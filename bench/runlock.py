"""One ``texbench run`` at a time per run directory.

Two runs into the same directory would both redo every job not yet stored. :func:`run_lock` holds an
operating-system lock on ``<run dir>/run.lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows) for
the whole run and writes its PID into the file, so a second run refuses and names the holder. The
operating system releases the lock when its holder ends, however it ends (SIGKILL included): a lock
file left by a dead process is simply taken over. Readers (``texbench report``) do not take the lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "RunDirectoryBusy", "run_lock"]

#: the lock file's name inside a run directory
LOCK_NAME = "run.lock"


class RunDirectoryBusy(RuntimeError):
    """Another process is running into the same run directory."""


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows-only module
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
    except OSError:  # Windows refuses to read a locked range
        text = ""
    return f"PID {text}" if text.isdigit() else "another process"


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the run directory ``run_dir`` (created if needed) for the duration of the block.

    Raises:
        RunDirectoryBusy: another live process holds it (the message names its PID).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            raise RunDirectoryBusy(f"run directory {run_dir} is in use by another texbench run ({_holder(fd)}); "
                                   "wait for it to end or use another --out")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield path
        finally:  # the file stays (removing it would race with a run opening it), naming no one
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
