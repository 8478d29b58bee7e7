"""Holm-Bonferroni step-down correction (Holm, 1979) across the comparisons of one table.

Sorted ascending, p_(1) <= ... <= p_(m), the adjusted values are
``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``; hypothesis i is rejected at level alpha when
``p~_i <= alpha``, which controls the family-wise error rate with no assumption on how the tests
depend on each other. Missing p-values (None / NaN) are left out of m and stay missing.
Hand-written: statsmodels' ``multipletests`` is not a dependency of uarbench.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence, TypeVar

K = TypeVar("K")


def _adjust(p: list[float | None]) -> list[float | None]:
    present = [i for i, v in enumerate(p) if v is not None and not math.isnan(v)]
    for i in present:
        if not 0.0 <= p[i] <= 1.0:  # type: ignore[operator]
            raise ValueError(f"p-value {p[i]!r} (position {i}) is not in [0, 1]")
    order = sorted(present, key=lambda i: p[i])  # stable: ties keep their input order
    m = len(order)
    out: list[float | None] = [None] * len(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))  # type: ignore[operator]
        out[i] = running
    return out


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the input order."""
    return _adjust([None if v is None else float(v) for v in p_values])


def holm_adjust_mapping(p_values: Mapping[K, float | None]) -> dict[K, float | None]:
    """Holm-adjusted p-values of a {comparison: p} mapping."""
    keys = list(p_values)
    return dict(zip(keys, holm_adjust([p_values[k] for k in keys])))


def holm_reject(p_values: Sequence[float | None], alpha: float = 0.05) -> list[bool | None]:
    """Which hypotheses Holm rejects at family-wise level ``alpha`` (None where p is missing)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return [None if q is None else q <= alpha for q in holm_adjust(p_values)]
