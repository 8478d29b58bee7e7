"""Paired approximate randomization: uniform p under a simulated null, power on a clear win,
p = (c + 1) / (N + 1), seeded and reproducible."""
from __future__ import annotations

import numpy as np
import pytest

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.metrics.ce import CEConvention, ClinicalEfficacy
from uarbench.metrics.rouge import RougeL
from uarbench.stats.randomization import paired_randomization, randomization_tests

MICRO = ClinicalEfficacy(CEConvention(labels=14, uncertain=1, average="micro"))
F1 = "CE-F1[micro-14-unc1]"


def noisy_copy(rng, ref, flip):
    """A 'system': the reference labels with a fraction ``flip`` of entries redrawn."""
    out = ref.copy()
    redraw = rng.random(ref.shape) < flip
    out[redraw] = rng.choice([1.0, 0.0, -1.0, np.nan], size=int(redraw.sum()))
    return out


def test_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(0)
    ps = []
    for sim in range(200):  # two systems with exchangeable outputs: same noise process
        ref = rng.choice([1.0, 0.0, -1.0, np.nan], size=(60, len(OBSERVATIONS)))
        a, b = noisy_copy(rng, ref, 0.4), noisy_copy(rng, ref, 0.4)
        res = paired_randomization(MICRO.stats_from_labels(a, ref), MICRO.stats_from_labels(b, ref),
                                   MICRO, trials=200, seed=sim)
        ps.append(res[F1].p_value)
    ps = np.array(ps)
    assert 0.01 <= (ps <= 0.05).mean() <= 0.10
    stats = pytest.importorskip("scipy.stats")
    assert stats.kstest(ps, "uniform").pvalue > 0.01


def test_a_clearly_better_system_gets_the_smallest_p_and_formula():
    rng = np.random.default_rng(1)
    ref = rng.choice([1.0, 0.0, -1.0, np.nan], size=(300, len(OBSERVATIONS)))
    a, b = noisy_copy(rng, ref, 0.8), noisy_copy(rng, ref, 0.1)
    sa, sb = MICRO.stats_from_labels(a, ref), MICRO.stats_from_labels(b, ref)
    res = paired_randomization(sa, sb, MICRO, trials=999, seed=0)[F1]
    assert res.count == 0 and res.p_value == 1 / 1000           # (0 + 1) / (999 + 1), never 0
    assert res.difference == pytest.approx(MICRO.score_from_stats(sb)[F1]
                                           - MICRO.score_from_stats(sa)[F1])
    assert res.difference > 0
    # identical systems: every trial ties the observed 0 difference -> p = 1
    same = paired_randomization(sa, sa, MICRO, trials=50, seed=0)[F1]
    assert same.count == 50 and same.p_value == 1.0


def test_seeded_reproducible_seed_zero_differs_from_one_and_systems_share_masks():
    rng = np.random.default_rng(2)
    base = rng.random((80, 4))
    sys1, sys2 = base + rng.normal(0, 0.3, (80, 4)), base + rng.normal(0.02, 0.3, (80, 4))
    fam = RougeL()  # score = mean of column 0
    r0 = randomization_tests(base, {"s1": sys1, "s2": sys2}, fam, trials=300, seed=0)
    again = randomization_tests(base, {"s1": sys1, "s2": sys2}, fam, trials=300, seed=0)
    r1 = randomization_tests(base, {"s1": sys1, "s2": sys2}, fam, trials=300, seed=1)
    assert r0 == again
    assert r0["s1"]["ROUGE-L"].count != r1["s1"]["ROUGE-L"].count \
        or r0["s2"]["ROUGE-L"].count != r1["s2"]["ROUGE-L"].count
    # one table, one set of masks: a system's test does not depend on the others in the table
    alone = randomization_tests(base, {"s2": sys2}, fam, trials=300, seed=0)
    assert alone["s2"] == r0["s2"]


def test_mismatched_statistics_are_rejected():
    with pytest.raises(ValueError, match="same non-empty"):
        paired_randomization(np.zeros((5, 4)), np.zeros((6, 4)), RougeL(), trials=10)
