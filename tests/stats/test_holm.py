"""Holm-Bonferroni on hand-computed cases (statsmodels is not a dependency)."""
from __future__ import annotations

import pytest

from uarbench.stats.holm import holm_adjust, holm_adjust_mapping, holm_reject


def test_hand_computed_step_down():
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 -> max(0.06, 0.04)
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_reject(p, alpha=0.05) == [True, False, False, True]
    # Bonferroni would reject only 0.005 (0.01 * 4 = 0.04 < 0.05 too): Holm is never weaker
    assert sum(holm_reject(p)) >= sum(q * len(p) <= 0.05 for q in p)


def test_capped_at_one_monotone_single_and_ties():
    assert holm_adjust([0.5, 0.6]) == [1.0, 1.0]
    assert holm_adjust([0.2]) == [0.2]
    assert holm_adjust([0.01, 0.01, 0.5]) == pytest.approx([0.03, 0.03, 0.5])
    assert holm_adjust([]) == []


def test_missing_values_stay_missing_and_leave_m():
    assert holm_adjust([0.01, None, 0.02, float("nan")]) == pytest.approx([0.02, None, 0.02, None])
    assert holm_adjust_mapping({"a": 0.04, "b": 0.01}) == pytest.approx({"a": 0.04, "b": 0.02})


def test_invalid_input():
    with pytest.raises(ValueError, match="not in"):
        holm_adjust([1.5])
    with pytest.raises(ValueError, match="alpha"):
        holm_reject([0.1], alpha=0)
