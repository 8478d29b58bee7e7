"""CE metric against scikit-learn's precision_recall_fscore_support(zero_division=0), on random
label vectors and on resampled rows, plus the conventions' edge cases and signatures."""
from __future__ import annotations

import numpy as np
import pytest

from uarbench.data.chexpert import FIVE, OBSERVATIONS
from uarbench.metrics.ce import (CEConvention, ClinicalEfficacy, binarize, default_ce_conventions,
                                 score_ce, unavailable_ce)
from uarbench.metrics.signature import Signature

sklearn_metrics = pytest.importorskip("sklearn.metrics")
SK_AVERAGE = {"micro": "micro", "macro": "macro", "weighted": "weighted", "example": "samples"}
CONVENTIONS = [CEConvention(labels=k, uncertain=u, average=a)
               for k in (14, 5) for u in (0, 1) for a in SK_AVERAGE]


def random_labels(rng: np.random.Generator, n: int, p=(0.15, 0.25, 0.1, 0.5)) -> np.ndarray:
    return rng.choice([1.0, 0.0, -1.0, np.nan], size=(n, len(OBSERVATIONS)), p=p)


def sklearn_prf(pred: np.ndarray, ref: np.ndarray, conv: CEConvention) -> tuple[float, ...]:
    """scikit-learn on the same binarisation, done here independently of uarbench."""
    cols = [OBSERVATIONS.index(o) for o in (OBSERVATIONS if conv.labels == 14 else FIVE)]

    def binary(x):
        x = x[:, cols]
        return np.where(np.isnan(x), 0, np.where(x == -1, conv.uncertain, x)).astype(int)
    return sklearn_metrics.precision_recall_fscore_support(
        binary(ref), binary(pred), average=SK_AVERAGE[conv.average], zero_division=0)[:3]


def scores(conv: CEConvention, pred: np.ndarray, ref: np.ndarray) -> tuple[float, ...]:
    fam = ClinicalEfficacy(conv)
    out = fam.score_from_stats(fam.stats_from_labels(pred, ref))
    return tuple(out[name] for name in fam.names)


@pytest.mark.parametrize("conv", CONVENTIONS, ids=lambda c: c.key)
def test_equals_sklearn_on_random_labels_and_resampled_rows(conv):
    rng = np.random.default_rng(7)
    cases = ((200, (0.15, 0.25, 0.1, 0.5)), (40, (0.02, 0.3, 0.03, 0.65)), (3, (0.3,) * 3 + (0.1,)))
    for n, p in cases:
        pred, ref = random_labels(rng, n, p), random_labels(rng, n, p)
        assert scores(conv, pred, ref) == pytest.approx(sklearn_prf(pred, ref, conv), abs=1e-12)
        fam = ClinicalEfficacy(conv)
        stats = fam.stats_from_labels(pred, ref)
        for _ in range(3):  # a resample (with repeats) of the rows scores like sklearn on it
            idx = rng.integers(0, n, size=n)
            got = fam.score_from_stats(stats[idx])
            want = sklearn_prf(pred[idx], ref[idx], conv)
            assert tuple(got[k] for k in fam.names) == pytest.approx(want, abs=1e-12)


def test_edge_cases_zero_division_perfect_and_no_positives():
    rng = np.random.default_rng(0)
    ref = random_labels(rng, 20)
    for conv in CONVENTIONS:
        # identical labels: every observation with a positive is perfect
        p, r, f = scores(conv, ref, ref)
        sk = sklearn_prf(ref, ref, conv)
        assert (p, r, f) == pytest.approx(sk, abs=1e-12)
    blank = np.full((5, 14), np.nan)
    for conv in CONVENTIONS:  # nothing positive anywhere: 0 by zero_division=0, as sklearn
        assert scores(conv, blank, blank) == (0.0, 0.0, 0.0)
        assert sklearn_prf(blank, blank, conv) == pytest.approx((0.0, 0.0, 0.0))


def test_uncertain_mapping_changes_the_count():
    pred = np.full((1, 14), np.nan)
    ref = np.full((1, 14), np.nan)
    ref[0, OBSERVATIONS.index("Edema")] = 1
    pred[0, OBSERVATIONS.index("Edema")] = -1       # "possible edema"
    assert scores(CEConvention(uncertain=1, average="micro"), pred, ref) == (1.0, 1.0, 1.0)
    assert scores(CEConvention(uncertain=0, average="micro"), pred, ref) == (0.0, 0.0, 0.0)


def test_five_label_set_is_selected_by_name():
    conv = CEConvention(labels=5, average="micro")
    assert set(conv.observations) == set(FIVE)
    pred = np.full((1, 14), np.nan)
    ref = np.full((1, 14), np.nan)
    pred[0, OBSERVATIONS.index("Fracture")] = 1     # not in the 5 set: ignored
    pred[0, OBSERVATIONS.index("Cardiomegaly")] = 1
    ref[0, OBSERVATIONS.index("Cardiomegaly")] = 1
    assert scores(conv, pred, ref) == (1.0, 1.0, 1.0)
    assert scores(CEConvention(labels=14, average="micro"), pred, ref)[0] == 0.5
    assert binarize(pred, conv).shape == (1, 5)


@pytest.mark.parametrize("kwargs", [{"labels": 13}, {"uncertain": -1}, {"blank": 1},
                                    {"average": "samples"}])
def test_invalid_conventions_are_rejected(kwargs):
    with pytest.raises(ValueError):
        CEConvention(**kwargs)


def test_invalid_label_values_are_rejected_with_the_place():
    bad = np.zeros((2, 14))
    bad[1, 3] = 2
    with pytest.raises(ValueError, match="report 1, 'Lung Opacity' is 2.0"):
        ClinicalEfficacy().stats_from_labels(bad, np.zeros((2, 14)))
    with pytest.raises(ValueError, match=r"\(n_reports, 14\)"):
        ClinicalEfficacy().stats_from_labels(np.zeros((2, 13)), np.zeros((2, 13)))


def test_score_ce_signatures_names_and_per_report_columns():
    rng = np.random.default_rng(1)
    pred, ref = random_labels(rng, 30), random_labels(rng, 30)
    results, per_report = score_ce(pred, ref, labeler_version="rules-v1",
                                   signature_base={"tok": "r2gen-iu", "ref": "clean"})
    keys = {c.key for c in default_ce_conventions()}
    assert {"macro-14-unc0", "micro-5-unc1", "micro-14-unc1", "example-14-unc0"} <= keys
    r2gen = results["CE-F1[macro-14-unc0]"]
    sig = dict(Signature.parse(r2gen.signature).fields)
    assert r2gen.signature.startswith("CE-F1|labeler:rules-v1|")
    assert (sig["unc"], sig["blank"], sig["labels"], sig["avg"], sig["n"]) == ("0", "0", "14",
                                                                            "macro", "30")
    assert sig["tok"] == "r2gen-iu"
    assert dict(Signature.parse(results["CE-F1[micro-5-unc1]"].signature).fields)["labels"] == "5"
    conv = CEConvention(labels=14, uncertain=0, average="macro")
    assert r2gen.value == pytest.approx(sklearn_prf(pred, ref, conv)[2], abs=1e-12)
    assert len(per_report) == 30 and all(c.startswith("CE.") for c in per_report.columns)
    # one binarisation, one set of columns: 14-unc0 (2 conventions), 5-unc1, 14-unc1
    assert len(per_report.columns) == 2 * (4 * 14 + 3) + (4 * 5 + 3)
    fam = ClinicalEfficacy(conv)
    again = fam.score_from_stats(per_report[fam.columns()].to_numpy())
    assert again["CE-F1[macro-14-unc0]"] == r2gen.value
    missing = unavailable_ce("unavailable: no labeler", 30, labeler_version="rules",
                             signature_base={})
    assert set(missing) == set(results) and all(r.value is None for r in missing.values())


def test_convention_keys_round_trip_to_families():
    from uarbench.metrics.ce import ce_family_of
    for conv in CONVENTIONS:
        assert CEConvention.from_key(conv.key) == conv
        assert ce_family_of(f"CE-F1[{conv.key}]").convention == conv
    assert ce_family_of("BLEU-4") is None
    with pytest.raises(ValueError, match="not a CE convention key"):
        CEConvention.from_key("macro14")
