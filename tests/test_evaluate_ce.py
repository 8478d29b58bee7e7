"""evaluate(): clinical efficacy with a labeler, label files, CE statistics and bootstrap CIs in
metrics.json; CE reported as unavailable (not 0, not a crash) when the labeler is missing."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.errors import UarbenchError
from uarbench.evaluate import evaluate
from uarbench.labeling.base import LABELERS, Labeler
from uarbench.metrics.signature import Signature

CORE = ["BLEU", "ROUGE-L", "CIDEr"]
CARDIO, EFFUSION = OBSERVATIONS.index("Cardiomegaly"), OBSERVATIONS.index("Pleural Effusion")


class KeywordLabeler(Labeler):
    """Cardiomegaly positive when named; Pleural Effusion negative after "no"; else blank."""
    name = "test-keywords"

    def __init__(self, effusion_value: float = 0.0) -> None:
        self.effusion_value = effusion_value

    @property
    def version(self) -> str:
        return "keywords-v0"

    def label(self, reports):
        out = np.full((len(reports), len(OBSERVATIONS)), np.nan)
        for i, text in enumerate(reports):
            if "cardiomegaly" in text:
                out[i, CARDIO] = 1
            if "no pleural effusion" in text:
                out[i, EFFUSION] = self.effusion_value
        return out


class BrokenLabeler(KeywordLabeler):
    name = "test-missing-weights"

    def unavailable_reason(self):
        return "unavailable: no checkpoint given"


for _cls in (KeywordLabeler, BrokenLabeler):
    if _cls.name not in LABELERS:
        LABELERS.register(_cls.name)(_cls)

# toy test split (tests/conftest.py): test1 is "Mild cardiomegaly. No pleural effusion."
PREDS = {f"test{i}": "Mild cardiomegaly." for i in range(4)}


def test_ce_metrics_labels_statistics_and_intervals_are_written(toy_release, tmp_path):
    out = tmp_path / "out"
    ev = evaluate(predictions=PREDS, dataset="iu_xray", data_root=toy_release, metrics=CORE,
                  labeler="test-keywords", bootstrap=200, out_dir=out)
    written = json.loads((out / "metrics.json").read_text())["metrics"]
    # Cardiomegaly predicted in 4 reports, present in 1: TP 1, FP 3, FN 0 -> P .25, R 1, F1 .4
    micro = written["CE-F1[micro-14-unc1]"]
    assert micro["value"] == pytest.approx(0.4)
    assert written["CE-P[micro-14-unc1]"]["value"] == pytest.approx(0.25)
    sig = dict(Signature.parse(micro["signature"]).fields)
    assert (sig["labeler"], sig["unc"], sig["labels"], sig["avg"], sig["n"]) == (
        "keywords-v0", "1", "14", "micro", "4")
    for name in ("BLEU-4", "CIDEr", "CE-F1[macro-14-unc0]"):    # NLG keys unchanged, CIs added
        assert {"value", "signature", "higher_is_better"} <= set(written[name])
        lo, hi = written[name]["ci"]
        assert lo <= hi and "bs:200" in written[name]["ci_signature"]
    assert "df:full-test" in written["CIDEr"]["ci_signature"]
    assert written["CE-F1[micro-14-unc1]"]["ci"] == list(ev.intervals["CE-F1[micro-14-unc1]"])
    stats = pd.read_csv(out / "per_report_stats.csv", index_col="id")
    assert list(stats.index) == ["test0", "test1", "test2", "test3"]
    assert "BLEU.testlen" in stats.columns
    assert stats["CE.14-unc1-blank0.cardiomegaly.tp"].tolist() == [0, 1, 0, 0]
    assert stats["CE.14-unc1-blank0.cardiomegaly.fp"].tolist() == [1, 0, 1, 1]
    ref = pd.read_csv(out / "labels_ref.csv", index_col="id")
    pred = pd.read_csv(out / "labels_pred.csv", index_col="id")
    assert list(ref.columns) == list(OBSERVATIONS) == list(pred.columns)
    assert ref.loc["test1", "Cardiomegaly"] == 1 and ref.loc["test1", "Pleural Effusion"] == 0
    assert np.isnan(ref.loc["test0", "Cardiomegaly"]) and (pred["Cardiomegaly"] == 1).all()


def test_bootstrap_zero_means_no_intervals_and_seeds_reproduce(toy_release):
    ev = evaluate(predictions=PREDS, dataset="iu_xray", data_root=toy_release, metrics=CORE,
                  labeler="test-keywords", bootstrap=0)
    assert "ci" not in ev.to_dict()["metrics"]["BLEU-4"] and not ev.intervals
    a = evaluate(predictions=PREDS, dataset="iu_xray", data_root=toy_release, metrics=CORE,
                 labeler=None, bootstrap=300, bootstrap_seed=0)
    b = evaluate(predictions=PREDS, dataset="iu_xray", data_root=toy_release, metrics=CORE,
                 labeler=None, bootstrap=300, bootstrap_seed=0)
    assert a.intervals == b.intervals and "CIDEr" in a.intervals
    assert not any(k.startswith("CE") for k in a.metrics)
    with pytest.raises(UarbenchError, match="bootstrap"):
        evaluate(predictions=PREDS, dataset="iu_xray", data_root=toy_release, metrics=CORE,
                 bootstrap=-1)


def test_labeler_kwargs_reach_the_labeler(toy_release):
    ev = evaluate(predictions=PREDS, dataset="iu_xray", data_root=toy_release, metrics=CORE,
                  labeler="test-keywords", labeler_kwargs={"effusion_value": -1.0}, bootstrap=0)
    assert ev.labels["ref"].loc["test1", "Pleural Effusion"] == -1


@pytest.mark.parametrize("labeler, reason", [
    ("test-missing-weights", "unavailable: no checkpoint given"),
    ("no-such-labeler", "unavailable: labeler 'no-such-labeler' is not registered"),
])
def test_a_missing_labeler_makes_ce_unavailable_not_zero(toy_release, tmp_path, labeler, reason):
    ev = evaluate(predictions=PREDS, dataset="iu_xray", data_root=toy_release, metrics=CORE,
                  labeler=labeler, bootstrap=50, out_dir=tmp_path)
    ce = {k: v for k, v in ev.metrics.items() if k.startswith("CE-")}
    assert "CE-F1[macro-14-unc0]" in ce and "CE-F1[micro-5-unc1]" in ce
    assert all(r.value is None and r.unavailable.startswith(reason) for r in ce.values())
    assert ev.metrics["BLEU-4"].value is not None and "BLEU-4" in ev.intervals
    assert "CE-F1[macro-14-unc0]" not in ev.intervals
    written = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert written["CE-F1[macro-14-unc0]"]["value"] is None
    assert written["CE-F1[macro-14-unc0]"]["unavailable"].startswith(reason)
    assert not (tmp_path / "labels_pred.csv").exists()
    assert "unavailable" in ev.table()
