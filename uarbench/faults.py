"""Fault injection for the kill tests (tests/training/test_kill_resume.py); nothing else uses it.

``UARBENCH_FAULT="POINT:N"`` makes the process SIGKILL itself the N-th time (1-based) it reaches
the named point, exactly as an OOM killer or a preempted job would end it: no handler, no cleanup.
Points: ``mid_epoch`` (after an optimiser step), ``checkpoint_write:FILE`` (a checkpoint's
temporary file written and synced, not yet renamed into place), ``scoring`` (an evaluation's
per-report statistics written, its metrics.json not yet). A POINT counts every point it
prefixes: ``checkpoint_write:3`` is the third checkpoint write, ``checkpoint_write:last.pt:3``
the third write of a ``last.pt``. The variable is read once, at import: without it
:func:`checkpoint` is one comparison.
"""
from __future__ import annotations

import os
import signal

_spec = os.environ.get("UARBENCH_FAULT")
_point, _, _nth = (_spec or "").rpartition(":")
# (point, N); N = 0 marks a malformed value, refused at the first point reached (in a command)
_TARGET: tuple[str, int] | None = (None if not _spec else
                                   (_point, int(_nth)) if _nth.isdigit() else (_spec, 0))
_seen = 0


def checkpoint(name: str) -> None:
    """Exists for the kill tests: SIGKILL this process if ``UARBENCH_FAULT`` names this point and
    this is its N-th arrival; otherwise do nothing (no cost when the variable is unset)."""
    global _seen
    if _TARGET is None:
        return
    if _TARGET[1] < 1:
        from uarbench.errors import UarbenchError
        raise UarbenchError(f"UARBENCH_FAULT={_spec!r} is not POINT:N with N >= 1.",
                            fix="unset it, or give e.g. mid_epoch:3 (see uarbench/faults.py).")
    if name != _TARGET[0] and not name.startswith(_TARGET[0] + ":"):
        return
    _seen += 1
    if _seen == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
