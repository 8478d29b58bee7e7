"""Reading the files people have: one file or two, CSV or JSONL, detected or named columns,
R2Gen's id-less res.csv / gts.csv, metric-summary rows, id mismatches. Reports are invented."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from uarbench.cli import main
from uarbench.errors import UarbenchError
from uarbench.evaluate import evaluate, scoring_job
from uarbench.report_files import ColumnChoice, read_report_texts

REFS = {"s1": "The heart is normal. No effusion.", "s2": "Mild cardiomegaly. Lungs clear.",
        "s3": "No pneumothorax. A 1.2-cm nodule, left apex."}
PREDS = {"s1": "The heart is normal.", "s2": "Cardiomegaly. Lungs are clear.",
         "s3": "No pneumothorax."}
CORE = ["BLEU", "ROUGE-L", "CIDEr"]


def write_csv(path: Path, header: list[str] | None, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if header is not None:
            w.writerow(header)
        w.writerows(rows)
    return path


def released_csv(path: Path, summary_rows: int = 0) -> Path:
    """A CvT2DistilGPT2-style file: dicom_id, study_id, pred_report, labels (+ summary rows)."""
    rows = [["", "", f"BLEU-{k}: 0.1", ""] for k in range(1, summary_rows + 1)]
    rows += [[k, f"st-{k}", PREDS[k], REFS[k].lower()] for k in REFS]
    return write_csv(path, ["dicom_id", "study_id", "pred_report", "labels"], rows)


def test_one_csv_with_detected_columns(tmp_path):
    texts = read_report_texts(released_csv(tmp_path / "out.csv"))
    assert texts.predictions == PREDS
    assert texts.references == {k: v.lower() for k, v in REFS.items()}
    assert texts.info["columns"] == {"id": "dicom_id", "prediction": "pred_report",
                                     "reference": "labels"}


def test_summary_rows_are_an_error_naming_the_row_and_the_flag(tmp_path):
    path = released_csv(tmp_path / "out.csv", summary_rows=2)
    with pytest.raises(UarbenchError) as e:
        read_report_texts(path)
    assert "out.csv: record line 2: empty reference" in str(e.value)
    assert "--skip-empty-references" in str(e.value)
    texts = read_report_texts(path, skip_empty_references=True)
    assert texts.predictions == PREDS and texts.info["skipped_empty_references"] == [
        "line 2", "line 3"]
    # also when the references come from elsewhere (the summary rows still are not reports)
    texts = read_report_texts(path, want_references=False, skip_empty_references=True)
    assert texts.references is None and texts.predictions == PREDS
    assert texts.info["unused_reference_column"] == "labels"


def test_two_jsonl_files_and_named_columns(tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"image_id": k, "gen": v, "score": 0.5}) + "\n"
                             for k, v in PREDS.items()))
    refs = tmp_path / "r.jsonl"
    refs.write_text("".join(json.dumps({"image_id": k, "report": v}) + "\n"
                            for k, v in REFS.items()))
    with pytest.raises(UarbenchError, match="no prediction column .* --pred-col"):
        read_report_texts(preds, refs)
    texts = read_report_texts(preds, refs, columns=ColumnChoice(pred="gen"))
    assert texts.predictions == PREDS and texts.references == REFS
    only = tmp_path / "only.jsonl"        # id + one other column: that column is the text
    only.write_text("".join(json.dumps({"image_id": k, "gen": v}) + "\n"
                            for k, v in PREDS.items()))
    assert read_report_texts(only, refs).predictions == PREDS
    with pytest.raises(UarbenchError, match="no column 'nope'"):
        read_report_texts(preds, refs, columns=ColumnChoice(id="nope", pred="gen"))


def test_ambiguous_columns_are_an_error(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["id", "prediction", "generated_report", "reference"],
                     [["a", "x", "y", "z"]])
    with pytest.raises(UarbenchError, match="several prediction columns: prediction, "
                                            "generated_report. Fix: choose one with --pred-col"):
        read_report_texts(path)


def test_blank_null_and_duplicate_ids(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["id", "prediction", "reference"],
                     [["a", "x", "y"], ["", "x", "y"]])
    with pytest.raises(UarbenchError, match="line 3: blank or missing id"):
        read_report_texts(path)
    j = tmp_path / "x.jsonl"
    j.write_text('{"id": null, "prediction": "x", "reference": "y"}\n')
    with pytest.raises(UarbenchError, match="line 1: blank or missing id"):
        read_report_texts(j)
    j.write_text('{"id": 7, "prediction": "x", "reference": "y"}\n'
                 '{"id": "7", "prediction": "x", "reference": "y"}\n')
    with pytest.raises(UarbenchError, match="line 2: duplicate id '7'"):
        read_report_texts(j)


def annotation(tmp_path: Path) -> Path:
    path = tmp_path / "annotation.json"
    path.write_text(json.dumps({"test": [{"id": k, "report": v} for k, v in REFS.items()],
                                "train": []}))
    return path


@pytest.mark.parametrize("header", [True, False])
def test_r2gen_idless_res_and_gts_in_annotation_order(tmp_path, header):
    res = write_csv(tmp_path / "res.csv", ["0"] if header else None, [[v] for v in PREDS.values()])
    gts = write_csv(tmp_path / "gts.csv", ["0"] if header else None,
                    [[v.lower()] for v in REFS.values()])
    with pytest.raises(UarbenchError, match="no id column .* --order-from"):
        read_report_texts(res, gts)
    texts = read_report_texts(res, gts, order=list(REFS), order_source="annotation.json")
    assert texts.predictions == PREDS
    assert texts.references == {k: v.lower() for k, v in REFS.items()}


def test_idless_file_of_the_wrong_length(tmp_path):
    res = write_csv(tmp_path / "res.csv", None, [["a"], ["b"], ["c"], ["d"], ["e"]])
    with pytest.raises(UarbenchError, match=r"5 lines \(4 if the first is a header\) but .* lists 3 studies"):
        read_report_texts(res, res, order=list(REFS), order_source="annotation.json")


def test_id_mismatch_counts_and_common_ids(tmp_path):
    preds = dict(PREDS, extra="x")
    del preds["s3"]
    with pytest.raises(UarbenchError) as e:
        scoring_job(predictions=preds, references=REFS)
    assert ("3 prediction ids, 3 reference ids, 2 in common; 1 reference id(s) without a "
            "prediction (first: s3); 1 prediction id(s) without a reference (first: extra)"
            in str(e.value)) and "--common-ids" in str(e.value)
    ev = evaluate(predictions=preds, references=REFS, metrics=CORE, labeler=None, bootstrap=0,
                  common_ids=True)
    sig = ev.metrics["BLEU-4"].signature
    assert "|ids:common|n:2|" in sig and ev.inputs["common_ids"] == {
        "scored": 2, "predictions": 3, "references": 3}


def test_cli_eval_one_file_two_files_and_order_from(tmp_path, capsys):
    one = released_csv(tmp_path / "one.csv", summary_rows=1)
    assert main(["eval", str(one), "--labeler", "none", "--bootstrap", "0",
                 "--out", str(tmp_path / "a")]) == 2
    assert "--skip-empty-references" in capsys.readouterr().err
    assert main(["eval", str(one), "--labeler", "none", "--bootstrap", "0",
                 "--skip-empty-references", "--convention", "dotspace",
                 "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "read columns: id = dicom_id, prediction = pred_report, reference = labels" in out
    assert "left out 1 row(s) with an empty reference" in out
    one_file = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert one_file["metrics"]["BLEU-4"]["signature"].startswith("BLEU-4|conv:dotspace|ref:file|n:3|")
    res = write_csv(tmp_path / "res.csv", None, [[v] for v in PREDS.values()])
    gts = write_csv(tmp_path / "gts.csv", None, [[v.lower()] for v in REFS.values()])
    assert main(["eval", str(res), str(gts), "--order-from", str(annotation(tmp_path)),
                 "--labeler", "none", "--bootstrap", "0", "--convention", "dotspace",
                 "--out", str(tmp_path / "b")]) == 0
    two_files = json.loads((tmp_path / "b" / "metrics.json").read_text())
    for name in ("BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"):     # the same texts, the same numbers
        assert two_files["metrics"][name]["value"] == one_file["metrics"][name]["value"]


def test_a_released_file_gives_the_papers_numbers_under_dotspace(tmp_path):
    """The papers' own scoring, written out: pycocoevalcap's scorers on
    re.sub(' +', ' ', text.replace('.', ' .')) of both sides of their released CSV. `uarbench
    eval FILE --convention dotspace` must give exactly those numbers."""
    import re

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    path = released_csv(tmp_path / "released.csv", summary_rows=2)
    assert main(["eval", str(path), "--convention", "dotspace", "--skip-empty-references",
                 "--labeler", "none", "--bootstrap", "0"]) == 0
    got = json.loads((tmp_path / "metrics.json").read_text())["metrics"]

    def theirs(text: str) -> str:
        return re.sub(" +", " ", text.replace(".", " ."))
    gts = {k: [theirs(v.lower())] for k, v in REFS.items()}
    res = {k: [theirs(v)] for k, v in PREDS.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    expected = {f"BLEU-{n + 1}": b for n, b in enumerate(bleu)}
    expected["ROUGE-L"] = Rouge().compute_score(gts, res)[0]
    expected["CIDEr"] = Cider().compute_score(gts, res)[0]
    try:
        from uarbench.metrics import meteor
        if meteor.unavailable_reason() is None:
            from pycocoevalcap.meteor.meteor import Meteor
            expected["METEOR"] = Meteor().compute_score(gts, res)[0]
    except ImportError:
        pass
    for name, value in expected.items():
        assert got[name]["value"] == pytest.approx(value, abs=1e-9), name


def test_json_list_and_mapping_files(tmp_path):
    listed = tmp_path / "outputs.json"
    listed.write_text(json.dumps([{"image_id": k, "prediction": v, "ground_truth": REFS[k]}
                                  for k, v in PREDS.items()], indent=2))
    texts = read_report_texts(listed)
    assert texts.predictions == PREDS and texts.references == REFS
    mapping = tmp_path / "preds.json"
    mapping.write_text(json.dumps(PREDS))
    both = read_report_texts(mapping, listed)
    assert both.predictions == PREDS and both.references == REFS
    assert read_report_texts(mapping, want_references=False).predictions == PREDS
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(UarbenchError, match="bad.json: a .json file must hold a list"):
        read_report_texts(bad)
