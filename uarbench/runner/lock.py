"""One writer per run folder: an OS file lock held for a run's whole lifetime.

Two ``uarbench run`` processes on one results folder (two terminals, two SLURM jobs) must never
write the same run folder at once. Before a run starts, its process takes an exclusive
``flock`` on ``<suite folder>/.locks/<run>.lock`` (outside the run folder, so ``--overwrite``
can delete and recreate the folder under the lock) and writes its pid and host into the file.
A second process finds the lock taken and, by choice (``--if-busy``), skips the run (default),
waits for it, or fails with a message naming the holder's pid. The OS releases the lock when
the holder exits, however it exits (SIGKILL included), so a stale lock cannot block anyone: the
pid left in the file is then only a name, and the next process takes the lock over. Hand-written:
``fcntl.flock`` is the standard library's; ``filelock``'s soft locks would need stale-lock
guessing that the OS already does. POSIX only (Linux, macOS), like the rest of the runner.
"""
from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from uarbench.errors import UarbenchError

LOCKS_DIR = ".locks"
IF_BUSY = ("skip", "wait", "fail")


class RunBusy(Exception):
    """Another live process holds this run's lock."""

    def __init__(self, run: str, holder: str) -> None:
        self.run, self.holder = run, holder
        super().__init__(f"run {run} is being written by another process ({holder})")


def lock_path(run_dir: Path) -> Path:
    return run_dir.parent / LOCKS_DIR / f"{run_dir.name}.lock"


@contextmanager
def run_lock(run_dir: str | Path, *, wait: bool = False) -> Iterator[None]:
    """Hold the run folder's lock for the block; :class:`RunBusy` if another process holds it
    (unless ``wait``: then block until it is released)."""
    if os.name != "posix":          # pragma: no cover - the runner targets POSIX machines
        yield
        return
    run_dir = Path(run_dir)
    path = lock_path(run_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise UarbenchError(f"cannot create the run lock: {e.strerror or e}.", file=path,
                            fix="make the results folder writable.") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise RunBusy(run_dir.name, _holder(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"
