"""METEOR scored from its statistics in numpy (uarbench.metrics.meteor) equals the jar.

data/meteor_jar.json holds the jar's own answers: the statistics of 75 reports of the ablation
suite's runs and of 10 edge cases (empty hypothesis, perfect matches, stem and synonym matches,
function words only, a repeated hypothesis), the jar's per-report ``EVAL`` scores, and for
subsets of those rows (with repeats, as bootstrap draws) the jar's corpus score and the score the
jar gives the subset's summed statistics sent as one segment (the previous resampling). The tests
without Java check the numpy scoring against those recorded answers; the ``java`` tests ask the
jar again, on those rows and on statistics of fresh text.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from uarbench.metrics import meteor as meteor_mod
from uarbench.metrics.meteor import (
    CHUNKS,
    Meteor,
    MeteorJar,
    corpus_rows,
    meteor_scores,
)
from uarbench.stats import compare as stats_compare
from uarbench.stats.bootstrap import paired_bootstrap, resampled_scores
from uarbench.stats.compare import seed_mean_comparison
from uarbench.stats.randomization import randomization_tests, trial_differences
from uarbench.stats.resample import bootstrap_indices, swap_masks

DATA = json.loads((Path(__file__).parent / "data" / "meteor_jar.json").read_text())
STATS = np.array(DATA["stats"], dtype=np.float64)
ULP = 4e-16          # the jar's Math.pow and numpy's power may differ in the last bit
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="java not found on PATH")


def test_per_report_and_corpus_scores_equal_the_jars_answers(no_jvm):
    family = Meteor()
    np.testing.assert_allclose(family.segment_scores(STATS), DATA["jar_segments"], rtol=0,
                               atol=ULP)
    for sub in DATA["subsets"]:
        rows = STATS[sub["rows"]]
        assert family.score_from_stats(rows)["METEOR"] == pytest.approx(sub["jar_corpus"],
                                                                        abs=ULP, rel=0)
        summed = family.summable_stats(rows).sum(axis=0)[None, :]
        assert family.score_from_sums(summed, len(rows))["METEOR"][0] == pytest.approx(
            sub["jar_corpus"], abs=ULP, rel=0)


def test_the_previous_resampling_is_reproduced_and_was_not_the_corpus_score(no_jvm):
    """A subset's raw summed statistics scored as one segment is what the jar answered before
    (so the formula is the jar's); it differs from the corpus score where perfectly matched
    reports are in the subset, as the jar's corpus adds no chunk for them."""
    worst = 0.0
    for sub in DATA["subsets"]:
        rows = STATS[sub["rows"]]
        assert meteor_scores(rows.sum(axis=0))[0] == pytest.approx(
            sub["jar_one_summed_segment"], abs=ULP, rel=0)
        worst = max(worst, abs(sub["jar_corpus"] - sub["jar_one_summed_segment"]))
    assert worst > 1e-3


def test_corpus_rows_zero_only_the_chunk_of_perfect_matches():
    rows = corpus_rows(STATS)
    perfect = rows[:, CHUNKS] != STATS[:, CHUNKS]
    assert perfect.sum() >= 20
    # a perfect match: every word of both sides matched, one chunk
    test_matches = STATS[:, [4 + 4 * k + j for k in range(4) for j in (0, 2)]].sum(axis=1)
    ref_matches = STATS[:, [5 + 4 * k + j for k in range(4) for j in (0, 2)]].sum(axis=1)
    want = (test_matches == STATS[:, 0]) & (ref_matches == STATS[:, 1]) & (STATS[:, CHUNKS] == 1)
    assert (perfect == want).all()
    assert (rows[perfect, CHUNKS] == 0).all()
    np.testing.assert_array_equal(np.delete(rows, CHUNKS, axis=1),
                                  np.delete(STATS, CHUNKS, axis=1))
    np.testing.assert_array_equal(corpus_rows(rows), rows)                     # idempotent
    np.testing.assert_array_equal(meteor_scores(rows), meteor_scores(STATS))   # per report


def test_resamples_and_swaps_equal_the_corpus_score_of_the_rows(no_jvm):
    """The fast paths (summed statistics of all resamples / trials at once) equal scoring each
    resampled or swapped set of rows on its own."""
    family = Meteor()
    a, b = STATS[:40], STATS[40:80]
    fast = resampled_scores({"a": a}, family, n_resamples=30, seed=5)["a"]["METEOR"]
    for k, idx in enumerate(bootstrap_indices(len(a), 30, seed=5)):
        assert fast[k] == pytest.approx(family.score_from_stats(a[idx])["METEOR"], abs=1e-15)
    masks = swap_masks(len(a), 30, seed=6)
    diffs = trial_differences(a, b, family, masks)["METEOR"]
    for t, m in enumerate(masks):
        want = (family.score_from_stats(np.where(m[:, None], a, b))["METEOR"]
                - family.score_from_stats(np.where(m[:, None], b, a))["METEOR"])
        assert diffs[t] == pytest.approx(want, abs=1e-15)


def test_scoring_statistics_needs_no_java(no_jvm, monkeypatch):
    """On a machine without Java METEOR cannot be computed from text, but CIs and tests of
    stored statistics can."""
    monkeypatch.setattr(meteor_mod.shutil, "which", lambda name: None)
    family = Meteor()
    assert family.unavailable_reason() is not None
    assert family.resampling_unavailable_reason() is None
    assert MeteorJar().resampling_unavailable_reason() is not None
    res = paired_bootstrap({"a": STATS[:40], "b": STATS[40:80]}, family, n_resamples=50,
                           baseline="a")
    assert res.systems["a"]["METEOR"].lo < res.systems["a"]["METEOR"].estimate
    ar = randomization_tests(STATS[:40], {"b": STATS[40:80]}, family, trials=50)
    assert 0 < ar["b"]["METEOR"].p_value <= 1
    est = seed_mean_comparison({"a": [STATS[:40]], "b": [STATS[40:80], STATS[45:85]]}, family,
                               baseline="a", n_resamples=50, trials=50)
    assert est["b"]["METEOR"].p_value is not None


def test_the_signature_says_how_resamples_are_scored():
    kwargs = {"n_resamples": 1000, "trials": 10000, "seed": 0, "confidence": 0.95,
              "alpha": 0.05, "holm_m": 3}
    sign = stats_compare.test_signature
    assert "|resample:sums=meteor-1.5-corpus" in sign("METEOR", Meteor(), **kwargs)
    assert "resample:" not in sign("METEOR", MeteorJar(), **kwargs)
    # the number itself is the same number: its signature does not change
    assert Meteor().signature("METEOR", 5, {}) == MeteorJar().signature("METEOR", 5, {})


# --------------------------------------------------------------------------- with the jar
@pytest.mark.java
@needs_java
def test_the_recorded_answers_are_the_jars():
    jar = MeteorJar()
    seg, corpus = jar.segment_and_corpus(STATS)
    np.testing.assert_array_equal(seg, DATA["jar_segments"])
    assert corpus == DATA["subsets"][0]["jar_corpus"]
    sub = DATA["subsets"][3]
    assert jar.score_from_sums(STATS[sub["rows"]].sum(axis=0)[None, :], 85)["METEOR"][0] == \
        sub["jar_one_summed_segment"]


@pytest.mark.java
@needs_java
def test_numpy_equals_the_jar_on_fresh_text_with_perfect_matches():
    refs = ["the heart is normal in size . the lungs are clear .",
            "no pleural effusion or pneumothorax .", "mild cardiomegaly . no focal consolidation .",
            "the mediastinum is unremarkable .", "there is a small left pleural effusion ."]
    preds = ["the heart is normal in size . the lungs are clear .",       # perfect
             "no pleural effusions or a pneumothorax .", "cardiomegaly is mild .",
             "the mediastinum is unremarkable .",                          # perfect
             "small effusion on the left . heart size normal ."]
    family = Meteor()
    stats = family.stats(preds * 4, refs * 4)
    seg, corpus = family.segment_and_corpus(stats)
    assert family.score_from_stats(stats)["METEOR"] == pytest.approx(corpus, abs=ULP, rel=0)
    np.testing.assert_allclose(family.segment_scores(stats), seg, rtol=0, atol=ULP)
    fast = resampled_scores({"s": stats}, family, n_resamples=8, seed=2)["s"]["METEOR"]
    for k, idx in enumerate(bootstrap_indices(len(stats), 8, seed=2)):
        assert fast[k] == pytest.approx(family.segment_and_corpus(stats[idx])[1], abs=ULP,
                                        rel=0)


@pytest.mark.java
@needs_java
def test_evaluate_stores_the_statistics_it_scored(tmp_path):
    """per_report_stats.csv holds the jar's statistics of every report (computed once, when the
    run is scored), and metrics.json's METEOR is their corpus score, the jar's to 1 ulp."""
    from uarbench.conventions import DEFAULT_CONVENTION, make_convention
    from uarbench.evaluate import evaluate
    from uarbench.store import read_metrics, read_per_report
    refs = {f"s{i}": r for i, r in enumerate(["the heart is normal in size .",
                                               "no pleural effusion .", "mild cardiomegaly .",
                                               "the lungs are clear ."])}
    preds = {"s0": "the heart is normal in size .", "s1": "no effusion .",
             "s2": "the heart is mildly enlarged .", "s3": "the lungs are clear ."}
    evaluate(predictions=preds, references=refs, metrics=["METEOR"], labeler=None,
             out_dir=tmp_path, bootstrap=0)
    family = Meteor()
    stored = read_per_report(tmp_path)[[f"METEOR.{s}" for s in family.stat_names]]
    conv = make_convention(DEFAULT_CONVENTION, dataset=None)
    again = family.stats(conv.prepare([preds[k] for k in stored.index]),
                         conv.prepare_references([refs[k] for k in stored.index]))
    np.testing.assert_array_equal(stored.to_numpy(), again)
    value = read_metrics(tmp_path)["METEOR"]["value"]
    assert value == family.score_from_stats(stored.to_numpy())["METEOR"]
    assert value == pytest.approx(family.segment_and_corpus(again)[1], abs=ULP, rel=0)
