"""Where a run's time goes: named phases (data, tokenizer fit, training steps, validation,
decoding, each metric, labelling, bootstrap) summed per run.

``with collect() as times:`` installs a collector for the current context; code anywhere below
it marks ``with phase("meteor"):``. Phases do not nest in the totals: an inner phase's time is
taken out of the outer one, so the phases of a run add up to its wall time (the rest is
"other"). Without a collector ``phase`` costs one context-variable lookup. The totals go into
``summary.json`` / ``run.json`` (``phases_s``), never into metrics.json, which must come out
byte-identical on a rerun. Hand-written: a dozen lines; no profiler gives per-phase wall time of
a whole run this cheaply.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator


class PhaseTimes:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[list] = []        # [name, start, time spent in inner phases]
        self._t0 = time.perf_counter()

    def rounded(self, digits: int = 2) -> dict[str, float]:
        """Phase -> seconds, with "other" for the time outside every phase."""
        out = {k: round(v, digits) for k, v in self.seconds.items()}
        total = time.perf_counter() - self._t0
        out["other"] = round(max(total - sum(self.seconds.values()), 0.0), digits)
        return out


_current: ContextVar[PhaseTimes | None] = ContextVar("uarbench_phase_times", default=None)
# called with each phase's name when it starts (uarbench.progress shows it as the run's stage)
_listeners: list = []


def listen_to_phases(fn) -> Callable[[], None]:
    """Call ``fn(name)`` at the start of every phase until the returned function is called."""
    _listeners.append(fn)
    return lambda: _listeners.remove(fn) if fn in _listeners else None


def current_times() -> PhaseTimes | None:
    """The collector of the current context, if any."""
    return _current.get()


@contextmanager
def collect() -> Iterator[PhaseTimes]:
    times = PhaseTimes()
    token = _current.set(times)
    try:
        yield times
    finally:
        _current.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    for listener in _listeners:
        listener(name)
    times = _current.get()
    if times is None:
        yield
        return
    frame = [name, time.perf_counter(), 0.0]
    times._stack.append(frame)
    try:
        yield
    finally:
        times._stack.pop()
        spent = time.perf_counter() - frame[1]
        times.seconds[name] = times.seconds.get(name, 0.0) + spent - frame[2]
        if times._stack:
            times._stack[-1][2] += spent
