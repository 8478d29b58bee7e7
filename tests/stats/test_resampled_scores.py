"""The fast path (summed statistics of all resamples at once) equals recomputing each metric from
scratch on the resampled reports: pycocoevalcap for BLEU-4, ROUGE-L and CIDEr-D (document
frequencies fixed from the full test set's references), scikit-learn for CE; bootstrap resamples
and approximate-randomization swaps alike."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu as CocoBleu
from pycocoevalcap.cider.cider_scorer import CiderScorer
from pycocoevalcap.rouge.rouge import Rouge as CocoRouge

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.metrics.base import MetricFamily
from uarbench.metrics.bleu import Bleu
from uarbench.metrics.ce import CEConvention, ClinicalEfficacy
from uarbench.metrics.cider import CiderD
from uarbench.metrics.rouge import RougeL
from uarbench.stats.bootstrap import resampled_scores
from uarbench.stats.randomization import trial_differences
from uarbench.stats.resample import bootstrap_indices, swap_masks

N = 60
R = 4   # resamples / trials checked one by one
WORDS = ("the heart is normal size lungs are clear no pleural effusion pneumothorax mild "
         "cardiomegaly small right left basilar atelectasis stable . focal airspace "
         "disease").split()


def corpus(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 25))) for _ in range(N)]


REFS, PRED_A, PRED_B = corpus(1), corpus(2), corpus(3)
PRED_B[:10] = REFS[:10]      # some exact matches so that higher n-grams count


def coco(scorer, preds, refs):
    gts = {i: [r] for i, r in enumerate(refs)}
    res = {i: [p] for i, p in enumerate(preds)}
    return scorer.compute_score(gts, res, **({"verbose": 0} if isinstance(scorer, CocoBleu)
                                             else {}))[0]


def cider_fixed_df(preds, refs):
    """pycocoevalcap's CIDEr-D on (preds, refs) with df (and N) of the full test references."""
    full = CiderScorer(n=4, sigma=6.0)
    for p, r in zip(PRED_A, REFS):
        full.cook_append(p, [r])
    full.compute_doc_freq()
    scorer = CiderScorer(n=4, sigma=6.0)
    for p, r in zip(preds, refs):
        scorer.cook_append(p, [r])
    scorer.document_frequency = full.document_frequency   # len(crefs) == N: same log N
    return float(np.mean(scorer.compute_cider()))


RECOMPUTE = {
    "BLEU-4": lambda p, r: coco(CocoBleu(4), p, r)[3],
    "ROUGE-L": lambda p, r: coco(CocoRouge(), p, r),
    "CIDEr": cider_fixed_df,
}
FAMILIES = {"BLEU-4": Bleu(), "ROUGE-L": RougeL(), "CIDEr": CiderD()}


@pytest.mark.parametrize("metric", list(RECOMPUTE))
def test_nlg_bootstrap_and_swaps_equal_recomputation(metric):
    family = FAMILIES[metric]
    sa, sb = family.stats(PRED_A, REFS), family.stats(PRED_B, REFS)
    fast = resampled_scores({"A": sa}, family, n_resamples=R, seed=3)["A"][metric]
    for b, idx in enumerate(bootstrap_indices(N, R, seed=3)):
        want = RECOMPUTE[metric]([PRED_A[i] for i in idx], [REFS[i] for i in idx])
        assert fast[b] == pytest.approx(want, abs=1e-9, rel=1e-12)
    masks = swap_masks(N, R, seed=4)
    diffs = trial_differences(sa, sb, family, masks)[metric]
    for t, mask in enumerate(masks):
        a2 = [pb if m else pa for pa, pb, m in zip(PRED_A, PRED_B, mask)]
        b2 = [pa if m else pb for pa, pb, m in zip(PRED_A, PRED_B, mask)]
        want = RECOMPUTE[metric](b2, REFS) - RECOMPUTE[metric](a2, REFS)
        assert diffs[t] == pytest.approx(want, abs=1e-9)


def labels(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice([1.0, 0.0, -1.0, np.nan], size=(N, len(OBSERVATIONS)),
                      p=(0.2, 0.3, 0.1, 0.4))


@pytest.mark.parametrize("average", ["micro", "macro", "example", "weighted"])
def test_ce_bootstrap_and_swaps_equal_sklearn(average):
    prf = pytest.importorskip("sklearn.metrics").precision_recall_fscore_support
    conv = CEConvention(labels=14, uncertain=1, average=average)
    fam = ClinicalEfficacy(conv)
    ref, la, lb = labels(1), labels(2), labels(3)
    sk_avg = "samples" if average == "example" else average

    def f1(pred, gold):
        bin_ = lambda x: np.where(np.isnan(x), 0, np.where(x == -1, 1, x)).astype(int)  # noqa: E731
        return prf(bin_(gold), bin_(pred), average=sk_avg, zero_division=0)[2]
    name = f"CE-F1[{conv.key}]"
    sa, sb = fam.stats_from_labels(la, ref), fam.stats_from_labels(lb, ref)
    fast = resampled_scores({"A": sa}, fam, n_resamples=R, seed=0)["A"][name]
    for b, idx in enumerate(bootstrap_indices(N, R, seed=0)):
        assert fast[b] == pytest.approx(f1(la[idx], ref[idx]), abs=1e-12)
    masks = swap_masks(N, R, seed=0)
    diffs = trial_differences(sa, sb, fam, masks)[name]
    for t, m in enumerate(masks):
        a2, b2 = np.where(m[:, None], lb, la), np.where(m[:, None], la, lb)
        assert diffs[t] == pytest.approx(f1(b2, ref) - f1(a2, ref), abs=1e-12)


class MeanOfFirst(MetricFamily):
    """Not registered, no score_from_sums, not a function of one row of sums: slow exact path."""
    family, names, stat_names = "test-mean", ("M",), ("x", "y")

    def stats(self, predictions, references):
        raise NotImplementedError

    def score_from_stats(self, stats):
        return {"M": float(np.mean(stats[:, 0]) + np.sum(stats[:, 1]) / 1e3)}


class SumRatio(MeanOfFirst):
    """A function of column sums that does not say so (no score_from_sums): slow exact path."""
    family = "test-ratio"

    def score_from_stats(self, stats):
        s = stats.sum(axis=0)
        return {"M": float(s[0] / s[1])}


@pytest.mark.parametrize("family", [MeanOfFirst(), SumRatio()], ids=lambda f: f.family)
def test_families_without_score_from_sums_are_still_exact(family):
    rng = np.random.default_rng(0)
    sa, sb = rng.random((N, 2)) + 0.5, rng.random((N, 2)) + 0.5
    assert not family.scores_from_sums()
    fast = resampled_scores({"A": sa}, family, n_resamples=R, seed=1)["A"]["M"]
    for b, idx in enumerate(bootstrap_indices(N, R, seed=1)):
        assert fast[b] == pytest.approx(family.score_from_stats(sa[idx])["M"], rel=1e-12)
    masks = swap_masks(N, R, seed=1)
    diffs = trial_differences(sa, sb, family, masks)["M"]
    for t, m in enumerate(masks):
        want = (family.score_from_stats(np.where(m[:, None], sa, sb))["M"]
                - family.score_from_stats(np.where(m[:, None], sb, sa))["M"])
        assert diffs[t] == pytest.approx(want, rel=1e-12)


@pytest.mark.java
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="java not found on PATH")
def test_meteor_resamples_from_summed_statistics_equal_the_jar_on_the_rows():
    """Against the jar's corpus score of the resampled / swapped rows themselves; PRED_B's
    exact copies of their references are perfect matches, whose chunks the jar's corpus score
    leaves out (tests/metrics/test_meteor_sums.py)."""
    from uarbench.metrics.meteor import Meteor
    family = Meteor()
    sa, sb = family.stats(PRED_A[:20], REFS[:20]), family.stats(PRED_B[:20], REFS[:20])
    fast = resampled_scores({"B": sb}, family, n_resamples=3, seed=0)["B"]["METEOR"]
    for b, idx in enumerate(bootstrap_indices(20, 3, seed=0)):
        assert fast[b] == pytest.approx(family.segment_and_corpus(sb[idx])[1], abs=1e-15)
    masks = swap_masks(20, 3, seed=1)
    diffs = trial_differences(sa, sb, family, masks)["METEOR"]
    for t, m in enumerate(masks):
        want = (family.segment_and_corpus(np.where(m[:, None], sa, sb))[1]
                - family.segment_and_corpus(np.where(m[:, None], sb, sa))[1])
        assert diffs[t] == pytest.approx(want, abs=1e-15)


def test_every_builtin_family_owns_its_decomposition():
    """score_from_sums of the column sums of the family's summable rows is score_from_stats
    (each family, in its module); the summable rows are computed row by row."""
    import json
    from pathlib import Path

    from uarbench.metrics.meteor import Meteor
    from uarbench.metrics.radgraph import RadGraphF1
    rng = np.random.default_rng(4)
    families = [Bleu(), RougeL(), CiderD(), Meteor(), RadGraphF1(),
                *(ClinicalEfficacy(CEConvention(average=a)) for a in
                  ("micro", "macro", "example", "weighted"))]
    meteor_stats = np.array(json.loads((Path(__file__).parents[1] / "metrics" / "data" /
                                        "meteor_jar.json").read_text())["stats"], dtype=float)
    for family in families:
        assert family.scores_from_sums(), family.family
        if isinstance(family, ClinicalEfficacy):
            ref = rng.choice([1.0, 0.0, np.nan], size=(N, len(OBSERVATIONS)))
            stats = family.stats_from_labels(np.roll(ref, 1, axis=0), ref)
        elif isinstance(family, RadGraphF1):
            stats = rng.random((N, len(family.stat_names)))
        elif isinstance(family, Meteor):
            stats = meteor_stats
        else:
            stats = family.stats(PRED_A, REFS)
        rows = family.summable_stats(stats)
        assert len(rows) == len(stats)
        np.testing.assert_array_equal(family.summable_stats(stats[5:9]), rows[5:9])
        full = family.score_from_stats(stats)
        summed = family.score_from_sums(rows.sum(axis=0)[None, :], len(stats))
        for name in family.names:
            assert summed[name][0] == pytest.approx(full[name], rel=1e-12, abs=1e-15), name
    assert CiderD().resampling_fields() == (("df", "full-test"),) and Bleu().resampling_fields() == ()
    assert Meteor().resampling_fields() == (("resample", "sums=meteor-1.5-corpus"),)


@pytest.mark.parametrize("average", ["micro", "macro", "example", "weighted"])
def test_ce_resamples_only_the_columns_its_average_reads(average):
    """micro: TP, FP, FN summed over the observations (3 columns), example: the report's P, R,
    F1 (3), macro and weighted: TP, FP, FN per observation; resampled scores on the 5-label set
    equal scikit-learn's (the 14-label set: test_ce_bootstrap_and_swaps_equal_sklearn)."""
    prf = pytest.importorskip("sklearn.metrics").precision_recall_fscore_support
    conv = CEConvention(labels=5, uncertain=1, average=average)
    fam = ClinicalEfficacy(conv)
    ref, pred = labels(5), labels(6)
    stats = fam.stats_from_labels(pred, ref)
    assert fam.summable_stats(stats).shape == (N, 3 if average in ("micro", "example") else 15)
    cols = [OBSERVATIONS.index(o) for o in conv.observations]

    def f1(p, g):
        def bin_(x):
            return np.where(np.isnan(x), 0, np.where(x == -1, 1, x)).astype(int)
        return prf(bin_(g[:, cols]), bin_(p[:, cols]),
                   average="samples" if average == "example" else average, zero_division=0)[2]
    fast = resampled_scores({"A": stats}, fam, n_resamples=R, seed=2)["A"][f"CE-F1[{conv.key}]"]
    for b, idx in enumerate(bootstrap_indices(N, R, seed=2)):
        assert fast[b] == pytest.approx(f1(pred[idx], ref[idx]), abs=1e-12)
