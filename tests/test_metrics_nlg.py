"""NLG metrics against pycocoevalcap 1.2 itself (torchmetrics style): batch by batch, on the
whole corpus, on resampled rows, and on edge cases; sacrebleu as a second reference for BLEU.

pycocoevalcap is called as every paper does without the PTB tokenizer:
``gts={i: [reference]}, res={i: [prediction]}``.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu as CocoBleu
from pycocoevalcap.cider.cider import Cider as CocoCider
from pycocoevalcap.rouge.rouge import Rouge as CocoRouge

from uarbench.errors import UarbenchError
from uarbench.metrics import meteor as meteor_mod
from uarbench.metrics import ngrams, rouge
from uarbench.metrics.bleu import Bleu
from uarbench.metrics.cider import CiderD
from uarbench.metrics.meteor import Meteor, MeteorError
from uarbench.metrics.nlg import NLG_FAMILIES, metric_versions, score_nlg
from uarbench.metrics.rouge import RougeL
from uarbench.metrics.signature import Signature

ANNOTATION = Path(__file__).resolve().parents[1].parent / "shared/data/iu_xray/annotation.json"
TOL = 1e-9
SIG = {"tok": "r2gen-iu", "ref": "clean"}
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="java not found on PATH")


# --------------------------------------------------------------------------- helpers

def _simple_clean(text: str) -> str:
    sentences = [re.sub(r"[^\w\s]", "", s).strip() for s in text.lower().split(". ")]
    return " . ".join(" ".join(s.split()) for s in sentences if s) + " ."


try:
    from uarbench.data.cleaning import clean_report_iu_xray as _clean
except ImportError:  # the project's cleaner is not there: a simple stand-in is enough here
    _clean = _simple_clean


def coco(preds: list[str], refs: list[str]) -> dict:
    """pycocoevalcap's corpus scores and per-report ROUGE-L / CIDEr arrays."""
    gts = {i: [r] for i, r in enumerate(refs)}
    res = {i: [p] for i, p in enumerate(preds)}
    bleu = CocoBleu(4).compute_score(gts, res, verbose=0)[0]
    rouge_c, rouge_r = CocoRouge().compute_score(gts, res)
    out = {f"BLEU-{k + 1}": bleu[k] for k in range(4)}
    out["ROUGE-L"], out["rouge_per_report"] = float(rouge_c), np.asarray(rouge_r)
    try:
        cider_c, cider_r = CocoCider().compute_score(gts, res)
        out["CIDEr"], out["cider_per_report"] = float(cider_c), np.asarray(cider_r)
    except ValueError:  # pycocoevalcap: max() of an empty df table when no reference has a word
        out["CIDEr"] = out["cider_per_report"] = None
    return out


def ours(preds: list[str], refs: list[str]) -> dict:
    out = {}
    for family in (Bleu(), RougeL(), CiderD()):
        stats = family.stats(preds, refs)
        out.update(family.score_from_stats(stats))
        if family.family == "ROUGE-L":
            out["rouge_per_report"] = stats[:, 0]
        if family.family == "CIDEr":
            out["cider_per_report"] = stats[:, 0]
    return out


def assert_same(mine: dict, theirs: dict, tol: float = TOL) -> None:
    for name in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"):
        if theirs[name] is None:
            continue
        assert abs(mine[name] - theirs[name]) <= tol, (name, mine[name], theirs[name])
    np.testing.assert_allclose(mine["rouge_per_report"], theirs["rouge_per_report"], rtol=0,
                               atol=tol)
    if theirs["cider_per_report"] is not None:
        np.testing.assert_allclose(mine["cider_per_report"], theirs["cider_per_report"], rtol=0,
                                   atol=tol)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def _early_jvms(request):
    """When METEOR tests are selected, start both JVMs (pycocoevalcap's and ours) now, in the
    background: their ~10 s start-up then overlaps the other tests of this module."""
    started: dict = {}
    wanted = any(item.get_closest_marker("java") is not None
                 for item in request.session.items if item.module is request.module)
    if wanted and shutil.which("java") is not None:
        from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor
        started["coco"] = CocoMeteor()            # Popen: loads while other tests run
        warm = threading.Thread(target=Meteor().compute, daemon=True,
                                kwargs={"predictions": ["a"], "references": ["a"]})
        warm.start()                              # holds our JVM's lock until it answers
    yield started

@pytest.fixture(scope="session")
def iu_reports() -> list[str]:
    if not ANNOTATION.is_file():
        pytest.skip(f"IU-Xray annotation not found at {ANNOTATION}")
    data = json.loads(ANNOTATION.read_text())
    return [_clean(e["report"]) for e in data["test"]]


@pytest.fixture(scope="session")
def iu_pairs(iu_reports: list[str]) -> tuple[list[str], list[str]]:
    """Realistic partial overlap: each test report paired with another report, a truncated
    copy of itself, or itself with another report's last sentence."""
    refs = list(iu_reports)
    n = len(refs)
    preds = []
    for i, ref in enumerate(refs):
        other = refs[(i + 1) % n]
        if i % 3 == 0:
            preds.append(other)
        elif i % 3 == 1:
            words = ref.split()
            preds.append(" ".join(words[: max(1, len(words) // 2)]))
        else:
            preds.append(ref.rsplit(" . ", 1)[0] + " . " + other.split(" . ")[-1])
    return preds, refs


# ------------------------------------------------------------------- IU-Xray vs pycocoevalcap

def test_whole_corpus_equals_pycocoevalcap(iu_pairs):
    preds, refs = iu_pairs
    assert_same(ours(preds, refs), coco(preds, refs))


def test_whole_corpus_is_bit_identical(iu_pairs):
    """Stronger than the 1e-9 contract: same operations in the same order, same bits."""
    preds, refs = iu_pairs
    mine, theirs = ours(preds, refs), coco(preds, refs)
    for name in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"):
        assert mine[name] == theirs[name], name
    assert np.array_equal(mine["cider_per_report"], theirs["cider_per_report"])
    assert np.array_equal(mine["rouge_per_report"], theirs["rouge_per_report"])


def test_batches_of_50_equal_pycocoevalcap(iu_pairs):
    preds, refs = iu_pairs
    for start in range(0, len(preds), 50):
        p, r = preds[start:start + 50], refs[start:start + 50]
        assert_same(ours(p, r), coco(p, r))


def test_resampled_rows_equal_pycocoevalcap_on_the_resample(iu_pairs):
    preds, refs = iu_pairs
    rng = np.random.default_rng(12345)
    idx = rng.integers(0, len(preds), size=len(preds))     # a bootstrap resample
    sub_p, sub_r = [preds[i] for i in idx], [refs[i] for i in idx]
    theirs = coco(sub_p, sub_r)
    bleu = Bleu().score_from_stats(Bleu().stats(preds, refs)[idx])
    for name, value in bleu.items():
        assert abs(value - theirs[name]) <= TOL, name
    rouge_l = RougeL().score_from_stats(RougeL().stats(preds, refs)[idx])["ROUGE-L"]
    assert abs(rouge_l - theirs["ROUGE-L"]) <= TOL
    # CIDEr: df stays fixed at the full set's (signature df:corpus); it equals the mean of the
    # full-set per-report values of the resampled rows, not pycocoevalcap re-run on the
    # resample (which recomputes df and log N from the resample).
    full = coco(preds, refs)["cider_per_report"]
    cider = CiderD().score_from_stats(CiderD().stats(preds, refs)[idx])["CIDEr"]
    assert abs(cider - float(np.mean(full[idx]))) <= TOL
    assert CiderD.signature_fields == (("df", "corpus"),)


def test_subset_without_replacement(iu_pairs):
    preds, refs = iu_pairs
    idx = np.sort(np.random.default_rng(7).choice(len(preds), size=120, replace=False))
    theirs = coco([preds[i] for i in idx], [refs[i] for i in idx])
    stats = Bleu().stats(preds, refs)
    for name, value in Bleu().score_from_stats(stats[idx]).items():
        assert abs(value - theirs[name]) <= TOL
    stats = RougeL().stats(preds, refs)
    assert abs(RougeL().score_from_stats(stats[idx])["ROUGE-L"] - theirs["ROUGE-L"]) <= TOL


def test_bleu_equals_sacrebleu(iu_pairs):
    sacrebleu = pytest.importorskip("sacrebleu")
    preds, refs = iu_pairs
    mine = Bleu().compute(predictions=preds, references=refs)
    for k in range(1, 5):
        metric = sacrebleu.metrics.BLEU(max_ngram_order=k, tokenize="none", smooth_method="none",
                                        force=True)
        theirs = metric.corpus_score(preds, [refs]).score / 100
        assert abs(mine[f"BLEU-{k}"] - theirs) <= TOL, k


# --------------------------------------------------------------------------- edge cases

_rng = np.random.default_rng(0)
_WORDS = [f"w{i}" for i in range(40)]
_LONG_A = " ".join(_rng.choice(_WORDS, size=500))
_LONG_B = " ".join(_rng.choice(_WORDS, size=500))
_MID = " ".join(_rng.choice(_WORDS, size=100))

EDGE_PAIRS = {
    "empty prediction": ("", "the heart is normal ."),
    "no overlap": ("pneumothorax left apex", "the heart is normal ."),
    "one-word prediction": ("heart", "the heart is normal ."),
    "one-word reference": ("the heart is normal .", "heart"),
    "very long (500 words)": (_LONG_A, _LONG_B),
    "long reference, short prediction": (_MID[:150], _MID),
    "long prediction, short reference": (_MID, _MID[:150]),
    "non-ascii": ("pleural effusión — 5 mm", "pleural effusion — 5 mm"),
    "cjk": ("心脏 大小 正常 。 肺 清晰", "心脏 正常 。 肺 清晰 。"),
    "repeated tokens": ("the the the the the the", "the cat the the"),
    "identical": ("no acute cardiopulmonary abnormality .",
                  "no acute cardiopulmonary abnormality ."),
    "double and edge spaces": (" the  heart is\tnormal ", "the heart  is normal "),
    "both empty": ("", ""),
}


@pytest.mark.parametrize("case", sorted(EDGE_PAIRS))
def test_edge_case_as_single_report_corpus(case):
    pred, ref = EDGE_PAIRS[case]
    assert_same(ours([pred], [ref]), coco([pred], [ref]))


def test_edge_cases_in_one_corpus():
    preds = [p for p, _ in EDGE_PAIRS.values()]
    refs = [r for _, r in EDGE_PAIRS.values()]
    assert_same(ours(preds, refs), coco(preds, refs))


def test_cider_when_no_reference_has_a_word():
    # pycocoevalcap raises (max() of an empty document-frequency table); no n-gram can match
    gts, res = {0: [""]}, {0: ["the heart"]}
    with pytest.raises(ValueError):
        CocoCider().compute_score(gts, res)
    assert CiderD().compute(predictions=["the heart"], references=[""]) == {"CIDEr": 0.0}


def test_large_code_fallback_and_python_lcs_path(iu_pairs, monkeypatch):
    """The int64-overflow fallback of the n-gram codes and the Python-int LCS give the same."""
    preds, refs = iu_pairs
    preds, refs = preds[:120], refs[:120]
    expected = coco(preds, refs)
    ngrams.clear_cache()
    monkeypatch.setattr(ngrams, "_INT64_SAFE", 1 << 20)
    monkeypatch.setattr(rouge, "_WORD", 0)             # every pair through Python ints
    assert_same(ours(preds, refs), expected)
    monkeypatch.setattr(rouge, "_WORD", 63)
    monkeypatch.setattr(rouge, "_CHUNK", 7)            # small vectorised batches, and
    monkeypatch.setattr(rouge, "_MAX_STEPS", 20)       # long other sides through Python ints
    assert_same(ours(preds, refs), expected)
    ngrams.clear_cache()


def test_score_from_stats_rejects_bad_matrices():
    for family in (Bleu(), RougeL(), CiderD()):
        with pytest.raises(ValueError):
            family.score_from_stats(np.zeros((0, len(family.stat_names))))
        with pytest.raises(ValueError):
            family.score_from_stats(np.zeros((3, len(family.stat_names) + 1)))


# --------------------------------------------------------------------------- score_nlg

def test_score_nlg_results_signatures_and_stats(iu_pairs):
    preds, refs = iu_pairs
    results, stats = score_nlg(preds, refs, families=("BLEU", "ROUGE-L", "CIDEr"),
                               signature_base=SIG)
    assert list(results) == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"]
    theirs = coco(preds, refs)
    for name, res in results.items():
        assert abs(res.value - theirs[name]) <= TOL
        assert res.unavailable is None and res.higher_is_better
    n = len(preds)
    assert results["BLEU-4"].signature == (
        f"BLEU-4|tok:r2gen-iu|ref:clean|n:{n}|impl:uarbench-fast=pycocoevalcap-1.2"
        f"|version:uarbench-0.1.0")
    assert dict(Signature.parse(results["CIDEr"].signature).fields)["df"] == "corpus"
    assert stats.shape[0] == n
    assert {"BLEU.testlen", "BLEU.correct_4", "ROUGE-L.rouge_l", "CIDEr.cider"} <= set(stats)
    assert np.array_equal(stats["CIDEr.cider"].to_numpy(), theirs["cider_per_report"])


def test_score_nlg_validates_inputs():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        score_nlg(["a", "b"], ["a"], signature_base=SIG)
    with pytest.raises(ValueError, match="not a string"):
        score_nlg(["a", None], ["a", "b"], signature_base=SIG)
    with pytest.raises(ValueError, match="not a single str"):
        score_nlg("a b", "a b", signature_base=SIG)
    with pytest.raises(ValueError, match="no reports"):
        score_nlg([], [], signature_base=SIG)
    with pytest.raises(UarbenchError):
        score_nlg(["a"], ["a"], families=["BLEU-9"], signature_base=SIG)


def test_metric_versions():
    versions = metric_versions()
    assert versions["pycocoevalcap"] == "1.2"
    assert versions["meteor"] == "1.5"
    assert set(versions) == {"pycocoevalcap", "meteor", "java"}
    assert NLG_FAMILIES == ("BLEU", "METEOR", "ROUGE-L", "CIDEr")


# --------------------------------------------------------------------------- METEOR

def test_meteor_unavailable_without_java(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    results, stats = score_nlg(["the heart is normal ."], ["the heart is normal ."],
                               families=["METEOR", "BLEU"], signature_base=SIG)
    res = results["METEOR"]
    assert res.value is None
    assert res.unavailable == "unavailable: java not found on PATH"
    assert "impl:meteor-1.5.jar(pycocoevalcap-1.2)" in res.signature
    assert results["BLEU-1"].value is not None
    assert not any(c.startswith("METEOR.") for c in stats.columns)


def test_meteor_stuck_process_raises_instead_of_hanging():
    proc = meteor_mod._JarProcess([sys.executable, "-c", "import time; time.sleep(60)"],
                                  None, timeout_s=0.5)
    try:
        with pytest.raises(MeteorError, match="no answer within"):
            proc.request(["SCORE ||| a ||| b"], 1)
    finally:
        proc.kill()


@pytest.mark.java
@needs_java
def test_meteor_equals_pycocoevalcap(coco_meteor, iu_pairs):
    preds, refs = iu_pairs[0][:200], iu_pairs[1][:200]
    family = Meteor()
    stats = family.stats(preds, refs)
    assert stats.shape == (200, len(family.stat_names))
    seg, corpus = family.segment_and_corpus(stats)
    theirs, theirs_seg = coco_meteor.compute_score({i: [r] for i, r in enumerate(refs)},
                                                   {i: [p] for i, p in enumerate(preds)})
    # the jar prints full-precision doubles and parses our repr() back to the same doubles
    assert abs(corpus - theirs) <= TOL
    np.testing.assert_allclose(seg, theirs_seg, rtol=0, atol=TOL)
    # resampling rows of the stats = pycocoevalcap on that subset
    idx = np.arange(0, 200, 3)
    sub = coco_meteor.compute_score({j: [refs[i]] for j, i in enumerate(idx)},
                                    {j: [preds[i]] for j, i in enumerate(idx)})[0]
    assert abs(family.score_from_stats(stats[idx])["METEOR"] - sub) <= TOL


@pytest.mark.java
@needs_java
def test_meteor_empty_hypothesis_and_odd_inputs(coco_meteor):
    preds = ["", "the heart ||| is normal", "heart", "", "pleural effusión — 5 mm 心脏"]
    refs = ["the heart is normal .", "the heart is normal .", "", "", "pleural effusion 5 mm"]
    family = Meteor()
    seg, corpus = family.segment_and_corpus(family.stats(preds, refs))
    theirs, theirs_seg = coco_meteor.compute_score({i: [r] for i, r in enumerate(refs)},
                                                   {i: [p] for i, p in enumerate(preds)})
    assert abs(corpus - theirs) <= TOL
    np.testing.assert_allclose(seg, theirs_seg, rtol=0, atol=TOL)
    assert seg[0] == 0.0


@pytest.mark.java
@needs_java
def test_meteor_newlines_do_not_hang():
    family = Meteor()
    with_newlines = family.compute(predictions=["the heart\nis normal", "lungs\r\nclear"],
                                   references=["heart normal\n", "the lungs are\rclear ."])
    flat = family.compute(predictions=["the heart is normal", "lungs  clear"],
                          references=["heart normal ", "the lungs are clear ."])
    assert with_newlines == flat
    results, _ = score_nlg(["a\nb"], ["a b"], families=["METEOR"], signature_base=SIG)
    assert results["METEOR"].value is not None and results["METEOR"].value > 0
