"""One significance table: CIs, paired differences, AR p-values, Holm over the table, signatures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.metrics.ce import CEConvention, ClinicalEfficacy
from uarbench.metrics.cider import CiderD
from uarbench.metrics.rouge import RougeL
from uarbench.metrics.signature import Signature
from uarbench.stats.compare import compare_systems, stats_from_frame
from uarbench.stats.holm import holm_adjust


def table_inputs():
    rng = np.random.default_rng(0)
    n = 120
    ref = rng.choice([1.0, 0.0, np.nan], size=(n, len(OBSERVATIONS)))
    ce = ClinicalEfficacy(CEConvention(labels=14, uncertain=0, average="micro"))

    def labels(flip):
        out = ref.copy()
        redraw = rng.random(ref.shape) < flip
        out[redraw] = rng.choice([1.0, 0.0, np.nan], size=int(redraw.sum()))
        return out
    base_r = rng.random(n)
    systems = {}
    for name, flip, shift in (("base", 0.5, 0.0), ("same", 0.5, 0.0), ("better", 0.05, 0.2)):
        r = np.clip(base_r + shift + rng.normal(0, 0.05, n), 0, 1)
        systems[name] = {"ce": ce.stats_from_labels(labels(flip), ref),
                         "rouge": np.column_stack([r, r, r, r]),
                         "cider": (r * 3)[:, None]}
    return systems, {"ce": ce, "rouge": RougeL(), "cider": CiderD()}


def test_table_of_systems_against_a_baseline():
    systems, families = table_inputs()
    cmp = compare_systems(systems, families, baseline="base", n_resamples=300, trials=500, seed=0)
    frame = cmp.to_frame()
    metrics = ["CE-P[micro-14-unc0]", "CE-R[micro-14-unc0]", "CE-F1[micro-14-unc0]", "ROUGE-L",
               "CIDEr"]
    assert list(dict.fromkeys(frame.metric)) == metrics and len(frame) == 3 * len(metrics)
    base = frame[frame.system == "base"]
    assert base.difference.isna().all() and base.p_value.isna().all()
    tested = frame[frame.system != "base"]
    # Holm across all 10 comparisons of the table, flags at alpha 0.05
    assert list(tested.p_holm) == pytest.approx(holm_adjust(list(tested.p_value)))
    assert list(tested.significant) == [q <= 0.05 for q in tested.p_holm]
    better = tested[tested.system == "better"].set_index("metric")
    assert better.loc["CE-F1[micro-14-unc0]", "significant"]
    assert better.loc["ROUGE-L", "significant"]
    assert better.loc["ROUGE-L", "p_value"] == 1 / 501
    lo, hi = better.loc["ROUGE-L", "difference_ci"]
    assert lo <= better.loc["ROUGE-L", "difference"] <= hi and lo > 0
    sig = dict(Signature.parse(cmp.signatures["CIDEr"]).fields)
    assert (sig["trials"], sig["seed"], sig["bs"], sig["df"], sig["holm"]) == (
        "500", "0", "300", "full-test", "table(m=10)")
    assert "df" not in dict(Signature.parse(cmp.signatures["ROUGE-L"]).fields)
    # one signature format for the one test, here and in `uarbench compare`'s tables
    assert (sig["test"], sig["p"], sig["seeds"]) == ("paired-ar", "(c+1)/(N+1)", "per-seed-mean")
    text = cmp.table()
    assert "better" in text and "p (Holm)" in text and cmp.signatures["ROUGE-L"] in text


def test_holm_per_metric_scope_and_bad_baseline():
    systems, families = table_inputs()
    cmp = compare_systems(systems, {"rouge": families["rouge"]}, baseline="base",
                          n_resamples=50, trials=100, seed=1, holm_scope="metric")
    assert "holm:metric(m=2)" in cmp.signatures["ROUGE-L"]
    with pytest.raises(ValueError, match="baseline"):
        compare_systems(systems, families, baseline="nope")


def test_stats_from_per_report_frame_columns():
    ce = ClinicalEfficacy()
    frame = pd.DataFrame(np.arange(2 * len(ce.stat_names)).reshape(2, -1), columns=ce.columns())
    frame["ROUGE-L.rouge_l"] = 1.0
    assert stats_from_frame(ce, frame).shape == (2, len(ce.stat_names))
    with pytest.raises(ValueError, match="lack ROUGE-L columns"):
        stats_from_frame(RougeL(), frame)


def test_compare_runs_from_evaluation_folders(toy_release, tmp_path):
    from uarbench.errors import UarbenchError
    from uarbench.evaluate import evaluate
    from uarbench.compare.evaluations import compare_runs
    good = {f"test{i}": t for i, t in enumerate(["the heart is normal . the lungs are clear .",
                                                  "mild cardiomegaly . no pleural effusion .",
                                                  "the lungs are clear . no pneumothorax .",
                                                  "the heart is normal ."])}
    bad = {k: "no pneumothorax ." for k in good}
    for name, preds in (("good", good), ("bad", bad)):
        evaluate(predictions=preds, dataset="iu_xray", data_root=toy_release,
                 metrics=["BLEU", "ROUGE-L", "CIDEr"], labeler=None, bootstrap=0,
                 out_dir=tmp_path / name)
    cmp = compare_runs({"bad": tmp_path / "bad", "good": tmp_path / "good"}, baseline="bad",
                       n_resamples=50, trials=100, seed=0)
    rows = cmp.to_frame().set_index(["metric", "system"])
    assert rows.loc[("ROUGE-L", "good"), "difference"] > 0
    assert set(cmp.signatures) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"}
    # a number with another signature (here: another uarbench version) is not comparable
    path = tmp_path / "good" / "metrics.json"
    path.write_text(path.read_text().replace("version:uarbench-", "version:uarbench-9"))
    with pytest.raises(UarbenchError, match="not comparable"):
        compare_runs({"bad": tmp_path / "bad", "good": tmp_path / "good"}, baseline="bad")
    with pytest.raises(UarbenchError, match="baseline"):
        compare_runs({"good": tmp_path / "good"}, baseline="bad")
