"""Seed variance: mean +/- sample sd over training seeds, labelled, missing stays missing."""
from __future__ import annotations

import statistics

import pytest

from uarbench.stats.seeds import seed_variance


def test_mean_and_sample_sd_over_seeds():
    runs = {0: {"BLEU-4": 0.16, "CIDEr": 0.5}, 1: {"BLEU-4": 0.17, "CIDEr": 0.45},
            2: {"BLEU-4": 0.15, "CIDEr": 0.55}}
    out = seed_variance(runs)
    assert out["BLEU-4"].mean == pytest.approx(0.16)
    assert out["BLEU-4"].sd == pytest.approx(statistics.stdev([0.16, 0.17, 0.15]))
    assert out["CIDEr"].n_seeds == 3 and out["CIDEr"].seeds == ("0", "1", "2")
    text = str(out["BLEU-4"])
    assert "seed variance" in text and "3 training seeds" in text and "±" in text
    assert out["BLEU-4"].to_dict()["label"] == "seed variance"


def test_one_seed_has_no_sd_and_a_missing_metric_is_missing():
    assert seed_variance({7: {"BLEU-4": 0.2}})["BLEU-4"].sd is None
    out = seed_variance({0: {"BLEU-4": 0.2, "METEOR": 0.18}, 1: {"BLEU-4": 0.21},
                         2: {"BLEU-4": 0.19, "METEOR": None}})
    assert out["METEOR"].mean is None and out["METEOR"].missing == ("1", "2")
    assert "missing" in str(out["METEOR"])
    with pytest.raises(ValueError):
        seed_variance({})


def test_seed_level_p_values_are_scipys_ttest_bit_for_bit():
    """The seed-level test computes ttest_1samp's p-value with scipy.special (no scipy.stats
    import in ``compare``): the same float on paired and one-seed-baseline cases."""
    import numpy as np
    from scipy import stats

    from uarbench.stats.seeds import seed_level_test
    rng = np.random.default_rng(0)
    for _ in range(2000):
        n = int(rng.integers(2, 7))
        row = list(rng.normal(0.3, 10 ** rng.uniform(-4, -1), n))
        base = list(rng.normal(0.3, 10 ** rng.uniform(-4, -1), n if rng.random() < 0.7 else 1))
        diffs = [a - b for a, b in zip(row, base)] if len(base) == n else \
            [a - base[0] for a in row]
        assert seed_level_test(row, base).p_value == float(stats.ttest_1samp(diffs, 0.0).pvalue)
