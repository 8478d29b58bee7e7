"""Paired bootstrap percentile CIs: coverage near 95% on simulated data, paired differences,
point estimates from the full set, seeded."""
from __future__ import annotations

import numpy as np
import pytest

from uarbench.metrics.bleu import Bleu
from uarbench.metrics.rouge import RougeL
from uarbench.stats.bootstrap import paired_bootstrap

FAM = RougeL()   # its score is the mean of statistics column 0: a plain mean to cover


def mean_stats(x: np.ndarray) -> np.ndarray:
    return np.column_stack([x, np.ones_like(x), np.ones_like(x), np.ones_like(x)])


def test_coverage_of_a_mean_is_near_95_percent():
    rng = np.random.default_rng(0)
    covered = 0
    for sim in range(200):
        x = rng.exponential(0.3, size=100)         # skewed, like per-report scores; true mean 0.3
        ci = paired_bootstrap({"s": mean_stats(x)}, FAM, n_resamples=1000, seed=sim)
        iv = ci.systems["s"]["ROUGE-L"]
        covered += iv.lo <= 0.3 <= iv.hi
    assert 0.90 <= covered / 200 <= 0.99


def test_estimate_is_the_full_set_score_and_paired_difference():
    rng = np.random.default_rng(1)
    x = rng.random(50)
    res = paired_bootstrap({"base": mean_stats(x), "better": mean_stats(x + 0.1)}, FAM,
                           n_resamples=200, seed=0, baseline="base")
    base = res.systems["base"]["ROUGE-L"]
    assert base.estimate == pytest.approx(x.mean()) and base.lo < base.estimate < base.hi
    diff = res.differences["better"]["ROUGE-L"]   # paired: the constant shift has no spread
    assert (diff.estimate, diff.lo, diff.hi) == pytest.approx((0.1, 0.1, 0.1))
    assert "base" not in res.differences
    assert "bs:200" in res.signature and "seed:0" in res.signature and "0.95" in res.signature


def test_seeded_and_corpus_level_bleu_interval():
    rng = np.random.default_rng(2)
    n = 40
    stats = np.zeros((n, 10))
    stats[:, 0] = stats[:, 1] = rng.integers(5, 30, n)               # lengths
    for k in range(4):
        stats[:, 2 + k] = np.maximum(0, stats[:, 0] - k)              # guesses
        stats[:, 6 + k] = np.floor(stats[:, 2 + k] * rng.random(n) * 0.6)   # matches
    a = paired_bootstrap({"s": stats}, Bleu(), n_resamples=300, seed=0).systems["s"]["BLEU-4"]
    b = paired_bootstrap({"s": stats}, Bleu(), n_resamples=300, seed=0).systems["s"]["BLEU-4"]
    c = paired_bootstrap({"s": stats}, Bleu(), n_resamples=300, seed=1).systems["s"]["BLEU-4"]
    assert a == b and (a.lo, a.hi) != (c.lo, c.hi)
    assert a.estimate == Bleu().score_from_stats(stats)["BLEU-4"]
    assert a.lo < a.estimate < a.hi


def test_bad_arguments():
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap({"s": mean_stats(np.ones(3))}, FAM, confidence=95)
    with pytest.raises(ValueError, match="baseline"):
        paired_bootstrap({"s": mean_stats(np.ones(3))}, FAM, baseline="x")
