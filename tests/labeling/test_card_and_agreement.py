"""MeSH evaluation, the labeler card, the hedge policy and the agreement report, on files the
tests write themselves (no data needed)."""
from __future__ import annotations

import csv
import math

import pytest

from uarbench.cli import main
from uarbench.data.chexpert import OBSERVATIONS
from uarbench.errors import UarbenchError
from uarbench.labeling.agreement import agreement, read_label_csv
from uarbench.labeling.card import card_from_report, format_card, load_card
from uarbench.labeling.mesh_eval import evaluate_mesh, read_mesh
from uarbench.labeling.rules import RuleLabeler

MESH_ROWS = [
    ("s1", "Mild cardiomegaly. No effusion.", "", "Cardiomegaly/mild"),
    ("s2", "No pneumothorax, large effusion, or consolidation.", "Normal.", "normal"),
    ("s3", "Small left pleural effusion.", "Effusion.", "Pleural Effusion/left/small"),
    ("s4", "Heart size normal.", "Possible pneumonia.", "Pneumonia"),
    ("s5", "Right PICC with its tip in the SVC.", "", "Catheters, Indwelling/right"),
]


def _write_mesh(path, rows=MESH_ROWS):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["study_id", "uid", "findings", "impression", "mesh", "problems"])
        for sid, f, i, p in rows:
            w.writerow([sid, sid, f, i, p, p.split("/")[0]])
    return path


def test_mesh_evaluation_counts(tmp_path):
    studies = read_mesh(_write_mesh(tmp_path / "mesh.csv"))
    assert studies[2].present == {"Pleural Effusion"} and studies[1].present == {"No Finding"}
    report = evaluate_mesh(RuleLabeler(), studies)
    cm, pe, pn = (report.score(o) for o in ("Cardiomegaly", "Pleural Effusion", "Pneumonia"))
    assert (cm.tp, cm.fp, cm.fn) == (1, 0, 0) and (pe.tp, pe.fp, pe.fn) == (1, 0, 0)
    # "possible pneumonia" is not asserted under the default hedge policy: a miss here
    assert (pn.tp, pn.fn) == (0, 1)
    assert any(d.observation == "Pneumonia" and d.kind == "FN" for d in report.disagreements)
    assert report.score("Support Devices").tp == 1
    all_hedges = evaluate_mesh(RuleLabeler(hedges="all"), studies).score("Pneumonia")
    assert all_hedges.tp == 1
    card = card_from_report(report, "rules-test", "0" * 64)
    text = format_card(card)
    assert "rules-test" in text and "| Pleural Effusion | 1 | 1 | 0 | 0 | 1.000 |" in text


def test_mesh_file_errors(tmp_path):
    with pytest.raises(UarbenchError, match="file not found"):
        read_mesh(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("study_id,findings\ns1,x\n")
    with pytest.raises(UarbenchError, match="missing column.*impression, problems"):
        read_mesh(bad)


def test_possible_hedges_are_blank_and_never_no_finding():
    lab, chexpert = RuleLabeler(), RuleLabeler(hedges="all")
    text = "Left basilar opacity may represent atelectasis or pneumonia."
    row = dict(zip(OBSERVATIONS, lab.label_report(text)))
    assert row["Lung Opacity"] == 1 and math.isnan(row["Atelectasis"]) and math.isnan(row["Pneumonia"])
    row = dict(zip(OBSERVATIONS, chexpert.label_report(text)))
    assert row["Atelectasis"] == -1 and row["Pneumonia"] == -1
    for text in ("Pneumothorax cannot be excluded.", "Blunting of the left costophrenic angle."):
        row = dict(zip(OBSERVATIONS, lab.label_report(text)))
        assert math.isnan(row["No Finding"]), text      # a possibility is not a normal report
        assert not (lab.label_report(text) == -1).any()
    assert lab.label_report("Probable left lower lobe pneumonia.")[OBSERVATIONS.index("Pneumonia")] == -1
    assert lab.label_report("Atelectasis versus scarring.")[OBSERVATIONS.index("Atelectasis")] == -1
    # vascular congestion is not Edema, but the report is not normal either
    row = dict(zip(OBSERVATIONS, lab.label_report("Mild pulmonary vascular congestion.")))
    assert math.isnan(row["Edema"]) and math.isnan(row["No Finding"])


def test_the_stored_card_describes_the_default_labeler():
    card = load_card()
    assert card["labeler"] == RuleLabeler().version
    assert set(card["classes"]) >= {"Cardiomegaly", "Edema", "Support Devices", "No Finding"}


def _labels_csv(path, rows, id_col="id", columns=OBSERVATIONS):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([id_col, *columns])
        for sid, values in rows:
            w.writerow([sid, *("" if v is None else v for v in values)])
    return path


def test_agreement_kappa_and_f1(tmp_path):
    cols = ("Cardiomegaly", "Edema")
    a = _labels_csv(tmp_path / "a.csv", [("1", (1, 0)), ("2", (0, None)), ("3", (1, -1)),
                                         ("4", (None, 1))], columns=cols)
    b = _labels_csv(tmp_path / "b.csv", [("4", (None, 1)), ("3", (1, -1)), ("2", (0, None)),
                                         ("1", (0, 0)), ("9", (1, 1))], "study_id",
                    ("Edema", "Cardiomegaly")[::-1])
    rows = {r.observation: r for r in agreement(read_label_csv(a), read_label_csv(b))}
    assert set(rows) == set(cols) and rows["Edema"].n == 4
    assert rows["Edema"].kappa == pytest.approx(1.0) and rows["Edema"].f1 == 1.0
    # Cardiomegaly: a says present in 1 and 3, b only in 3 -> F1 2/3; kappa by hand
    assert rows["Cardiomegaly"].f1 == pytest.approx(2 / 3)
    po, pe = 3 / 4, (2 / 4 * 1 / 4 + 1 / 4 * 2 / 4 + 1 / 4 * 1 / 4)     # classes 1, 0, blank
    assert rows["Cardiomegaly"].kappa == pytest.approx((po - pe) / (1 - pe))


def test_agreement_file_errors(tmp_path):
    bad = _labels_csv(tmp_path / "bad.csv", [("1", (2,))], columns=("Edema",))
    with pytest.raises(UarbenchError, match=r"bad.csv: record 1 \(row 2\): 'Edema' is '2'"):
        read_label_csv(bad)
    noid = tmp_path / "noid.csv"
    noid.write_text("Reports,Edema\nx,1\n")
    with pytest.raises(UarbenchError, match="no id column"):
        read_label_csv(noid)


def test_cli_label_compare_with_and_card(tmp_path, capsys):
    reports = tmp_path / "r.jsonl"
    reports.write_text('{"id": "a", "report": "Mild cardiomegaly. No effusion."}\n'
                       '{"id": "b", "report": "Normal heart. Small left effusion."}\n')
    other = _labels_csv(tmp_path / "chexbert.csv",
                        [("a", [None, None, 1] + [None] * 11), ("b", [None] * 14)])
    assert main(["label", "--reports", str(reports), "--out", str(tmp_path / "l.csv"),
                 "--compare-with", str(other)]) == 0
    out = capsys.readouterr().out
    assert "kappa" in out and "Cardiomegaly" in out and "chexbert.csv" in out
    assert main(["label", "--card"]) == 0
    assert "Labeler card: `rules-v2(" in capsys.readouterr().out
    assert main(["label", "--card", "--dev-annotations", str(_write_mesh(tmp_path / "m.csv")),
                 "--hedges", "all"]) == 0
    out = capsys.readouterr().out
    assert "hedges:all" in out and "differs" not in out   # not the stored card's labeler: no note
    assert main(["label", "--out", str(tmp_path / "x.csv")]) == 2
