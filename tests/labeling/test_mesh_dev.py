"""The rule labeler on real reports: the IU-Xray coders' manual MeSH annotations (train split).

Skips when ../shared/data is absent. Run with ``-s`` to see the per-class table and the 20 most
frequent disagreement sentences (what fails, for the next person). Floors, F1 of present
(positive or uncertain) against the coders: micro-F1 over Cardiomegaly, Pleural Effusion,
Atelectasis, Pneumothorax and Fracture >= 0.92 and each of them >= 0.88; Edema, Pneumonia and
Support Devices >= 0.75. No Finding against MeSH "normal" is printed, not asserted.
"""
from __future__ import annotations

import time

import pytest

from uarbench.labeling.card import load_card, measure_card, same_measurement
from uarbench.labeling.mesh_eval import CODER_NOTES, MICRO_CLASSES, evaluate_mesh, read_mesh
from uarbench.labeling.rules import RuleLabeler


@pytest.fixture(scope="module")
def dev_report(iu_xray_mesh_dev):
    studies = read_mesh(iu_xray_mesh_dev)
    t = time.perf_counter()
    report = evaluate_mesh(RuleLabeler(cache_size=0), studies)
    dt = time.perf_counter() - t
    print(f"\nIU-Xray MeSH dev annotations: {report.n} reports, labelled and explained in "
          f"{dt:.1f} s\n{report.table()}\n\n20 most frequent disagreement sentences:\n"
          f"{report.disagreement_table(20)}\n" + "\n".join(f"note: {n}" for n in CODER_NOTES))
    return report


def test_floors_on_the_coders_annotations(dev_report):
    table = dev_report.table()
    assert dev_report.n == 2069
    assert dev_report.micro_f1 >= 0.92, table
    for obs in MICRO_CLASSES:
        assert dev_report.score(obs).f1 >= 0.88, f"{obs}\n{table}"
    for obs in ("Edema", "Pneumonia", "Support Devices"):
        assert dev_report.score(obs).f1 >= 0.75, f"{obs}\n{table}"


def test_negated_lists_in_real_reports_are_negative(iu_xray_mesh_dev):
    """Every dev sentence that opens with "No" and lists findings joined by "or", with no scope
    boundary or "with" in it, must give only negative mentions (v1 left the later items
    positive)."""
    import re
    labeler = RuleLabeler()
    wrong, n = [], 0
    for study in read_mesh(iu_xray_mesh_dev):
        for sentence in re.split(r"(?<=\.)\s+", study.text):
            if re.match(r"(?i)no\b", sentence) and " or " in sentence and not re.search(
                    r"(?i)\b(but|however|although|which|with|change|otherwise)\b", sentence):
                n += 1
                wrong += [(sentence, m.observation, m.label) for m in labeler.mentions(sentence)
                          if m.label != 0]
    assert n >= 100
    assert not wrong, wrong[:10]


def test_the_stored_labeler_card_is_this_labelers_measurement(iu_xray_mesh_dev):
    """A phrase change that moves any dev count without `uarbench label --card
    --dev-annotations ... --write-card` fails here: the card in the README cannot go stale."""
    assert same_measurement(measure_card(iu_xray_mesh_dev), load_card())
