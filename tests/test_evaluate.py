import json

import pandas as pd
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from uarbench.cli import main
from uarbench.data.cleaning import clean_report_iu_xray
from uarbench.errors import UarbenchError
from uarbench.evaluate import evaluate

CORE = ["BLEU", "ROUGE-L", "CIDEr"]


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_evaluate_against_dataset_equals_pycocoevalcap_on_cleaned_text(toy_release, tmp_path):
    from uarbench.data.datasets import load_dataset
    ds = load_dataset("iu_xray", toy_release)
    preds = {s.id: "The heart is normal. No effusion." for s in ds.split("test")}
    ev = evaluate(predictions=preds, dataset=ds, metrics=CORE, out_dir=tmp_path / "out")
    gts = {s.id: [clean_report_iu_xray(s.report)] for s in ds.split("test")}
    res = {i: [clean_report_iu_xray(p)] for i, p in preds.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert ev.metrics["BLEU-4"].value == pytest.approx(bleu[3], abs=1e-12)
    assert ev.metrics["ROUGE-L"].value == pytest.approx(Rouge().compute_score(gts, res)[0], abs=1e-12)
    assert ev.metrics["CIDEr"].value == pytest.approx(Cider().compute_score(gts, res)[0], abs=1e-9)
    sig = ev.metrics["BLEU-4"].signature
    assert sig.startswith("BLEU-4|") and "conv:r2gen|clean:r2gen-iu|ref:dataset|n:4|" in sig
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["metrics"]["BLEU-4"]["signature"] == sig
    assert written["inputs"]["dataset_sha256"] == ds.content_hash
    assert written["provenance"]["versions"]["uarbench"]
    stats = pd.read_csv(tmp_path / "out" / "per_report_stats.csv", index_col="id")
    assert list(stats.index) == [s.id for s in ds.split("test")]


def test_reference_file_and_csv_predictions(tmp_path):
    refs = _write_jsonl(tmp_path / "refs.jsonl", [{"id": "a", "reference": "No effusion."},
                                                  {"id": "b", "reference": "Heart is normal."}])
    preds = tmp_path / "preds.csv"
    preds.write_text("id,prediction\na,no effusion .\nb,heart is big .\n")
    ev = evaluate(predictions=preds, references=refs, metrics=CORE)
    assert ev.metrics["BLEU-1"].value == pytest.approx(6 / 7, abs=1e-6)  # 6 of 7 unigrams match
    assert ev.inputs["predictions_sha256"]


@pytest.mark.parametrize("preds, message", [
    ({"test0": "x", "test1": "x", "test2": "x"},
     "3 prediction ids, 4 reference ids (references: iu_xray / test), 3 in common; "
     "1 reference id(s) without a prediction (first: test3)"),
    ({"test0": "x", "test1": "x", "test2": "x", "test3": "x", "zzz": "x"},
     "1 prediction id(s) without a reference (first: zzz)"),
])
def test_id_mismatches_are_errors(toy_release, preds, message):
    with pytest.raises(UarbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(predictions=preds, dataset="iu_xray", data_root=toy_release, metrics=CORE)


def test_needs_a_reference_source(toy_release):
    with pytest.raises(UarbenchError, match="nothing to score against"):
        evaluate(predictions={"a": "x"}, metrics=CORE)


def test_cli_eval_writes_metrics_and_exits_2_on_bad_input(toy_release, tmp_path, capsys):
    preds = _write_jsonl(tmp_path / "run" / "predictions.jsonl",
                         [{"id": f"test{i}", "prediction": "the lungs are clear ."} for i in range(4)])
    assert main(["eval", "--predictions", str(preds), "--dataset", "iu_xray",
                 "--data-root", str(toy_release)]) == 0
    out = capsys.readouterr().out
    for name in ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr"):
        assert name in out
    assert (tmp_path / "run" / "metrics.json").is_file()
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    bad = tmp_path / "run" / "bad.jsonl"
    bad.write_bytes(b'{"id": "test0", "prediction": "\xff"}\n')
    assert main(["eval", "--predictions", str(bad), "--dataset", "iu_xray",
                 "--data-root", str(toy_release)]) == 2
    assert "bad.jsonl: not valid UTF-8" in capsys.readouterr().err
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before  # nothing overwritten


def test_cli_predict_constant_then_eval(toy_release, tmp_path, capsys):
    out = tmp_path / "c" / "predictions.jsonl"
    assert main(["predict", "--model", "constant", "--dataset", "iu_xray",
                 "--data-root", str(toy_release), "--out", str(out)]) == 0
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    # toy train split: the normal report appears 4 times, the others twice
    assert {r["prediction"] for r in rows} == {"the heart is normal . the lungs are clear ."}
    assert rows[0]["reference"] == clean_report_iu_xray(
        "The heart is normal. The lungs are clear.")


def test_version_lists_metric_versions(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert "uarbench 0.1.0" in out and "pycocoevalcap" in out
