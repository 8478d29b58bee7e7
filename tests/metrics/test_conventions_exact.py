"""The fast per-report statistics stay exact under every scoring convention.

For each convention (r2gen, r2gen_compat, dotspace, dotspace-lower, ptb) both sides are prepared
with the convention and scored twice: by :func:`uarbench.metrics.nlg.score_nlg` and by
pycocoevalcap 1.2 called directly on the same strings (``gts={i: [ref]}, res={i: [pred]}``,
no PTB tokenizer, except that under ``ptb`` the strings pycocoevalcap scores come from calling
its ``PTBTokenizer`` here, once per side, as COCO's evaluation does). Corpus values and every
per-report number pycocoevalcap exposes must agree to 1e-9.

Data: the raw IU-Xray test reports as references (read in place through the ``iu_xray_root``
fixture, CC BY-NC-ND: no report text is copied here), each paired with the raw report of another
study (a fixed interleaving of train and test reports), with edge-case predictions injected at
fixed positions. A synthetic corpus written here covers the same edge cases where
../shared/data is absent, so exactness is tested on every machine.
"""
from __future__ import annotations

import re
import shutil
import threading

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu as CocoBleu
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider import Cider as CocoCider
from pycocoevalcap.rouge.rouge import Rouge as CocoRouge
from pycocoevalcap.rouge.rouge import my_lcs

from uarbench.conventions import ORDER, make_convention
from uarbench.metrics.bleu import Bleu
from uarbench.metrics.meteor import Meteor
from uarbench.metrics.nlg import score_nlg

TOL = 1e-9
FAST = ("BLEU", "ROUGE-L", "CIDEr")
BLEU_NAMES = tuple(f"BLEU-{k}" for k in range(1, 5))
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="java not found on PATH")

# Edge-case predictions (None: the prediction is its own reference).
EDGE_PREDICTIONS = {
    "empty": "",
    "mixed case": "The HEART is Normal.",
    "commas attached": "Heart size normal,lungs clear, no effusion,no pneumothorax.",
    "hyphens": "Left-sided pleural effusion. Non-specific right-lower-lobe opacity - likely "
               "atelectasis.",
    "numbers": "A 1.2-cm nodule and a 3 x 4 mm granuloma. T11-T12 level, 0.5cm.",
    "double spaces": "The heart  is   normal.  Lungs clear.",
    "edge spaces": "  Leading and trailing spaces.  ",
    "newline and tab": "First line.\nSecond line.\tTabbed item.",
    "dot runs": "Normal... no change... ..",
    "only dots": "...",
    "equals its reference": None,
}
EDGE_STEP = 41          # edge case j replaces the prediction at position 3 + EDGE_STEP * j

# Synthetic reports written for this file (no IU-Xray text).
SYNTH_REFERENCES = [
    "The heart is normal in size. The lungs are clear.",
    "Mild cardiomegaly. No pleural effusion, no pneumothorax.",
    "A 1.2-cm nodule in the right upper lobe. T11-T12 degenerative change.",
    "Stable 3 x 4 mm granuloma... No acute cardiopulmonary disease.",
    "Low lung volumes.  Bibasilar atelectasis, left greater than right.",
    "",
    "HEART SIZE NORMAL. Lungs Clear.",
]
# characters that str.split() splits on but split(" ") does not, or that Java reads as a line
# end in PTBTokenizer / the METEOR jar: both tokenisations must still agree with pycocoevalcap
SYNTH_ODD = [
    "heart\rnormal. lungs clear.",
    "heart\x0bnormal\x0cclear.",
    "heart\x85normal\u2028lungs\u2029clear.",
    "heart\xa0normal\x1clungs\u3000clear.",
    "\n",
    "\t",
    "   ",
]


# --------------------------------------------------------------------------- helpers

def coco(preds: list[str], refs: list[str]) -> dict:
    """pycocoevalcap on the given strings: corpus scores and its per-report numbers."""
    gts = {i: [r] for i, r in enumerate(refs)}
    res = {i: [p] for i, p in enumerate(preds)}
    bleu, bleu_per_report = CocoBleu(4).compute_score(gts, res, verbose=0)
    out = {name: bleu[k] for k, name in enumerate(BLEU_NAMES)}
    out["bleu_per_report"] = np.array(bleu_per_report).T              # (n, 4)
    # BleuScorer's cooked statistics per report, added exactly as Bleu.compute_score adds them
    scorer = BleuScorer(n=4)
    for i, ref_list in gts.items():
        scorer += (res[i][0], ref_list)
    out["bleu_cooked"] = np.array(
        [[c["testlen"], c["reflen"][0], *c["guess"], *c["correct"]] for c in scorer.ctest],
        dtype=np.float64).reshape(len(preds), 10)
    rouge, rouge_per_report = CocoRouge().compute_score(gts, res)
    out["ROUGE-L"], out["rouge_per_report"] = float(rouge), np.asarray(rouge_per_report)
    out["rouge_lcs"] = np.array([[my_lcs(r.split(" "), p.split(" ")), len(p.split(" ")),
                                  len(r.split(" "))] for p, r in zip(preds, refs)],
                                dtype=np.float64).reshape(len(preds), 3)
    cider, cider_per_report = CocoCider().compute_score(gts, res)
    out["CIDEr"], out["cider_per_report"] = float(cider), np.asarray(cider_per_report)
    return out


def assert_fast_families_exact(preds: list[str], refs: list[str],
                               theirs: dict | None = None) -> None:
    """score_nlg's BLEU-1..4 / ROUGE-L / CIDEr and per-report statistics = pycocoevalcap's."""
    theirs = coco(preds, refs) if theirs is None else theirs
    results, stats = score_nlg(preds, refs, families=FAST, signature_base={})
    for name in (*BLEU_NAMES, "ROUGE-L", "CIDEr"):
        assert abs(results[name].value - theirs[name]) <= TOL, (name, results[name].value,
                                                                 theirs[name])
    # BLEU: the per-report statistics are pycocoevalcap's cooked counts, and each row alone
    # gives pycocoevalcap's per-report BLEU-1..4 (its second return value)
    family = Bleu()
    bleu_stats = stats[[f"BLEU.{s}" for s in family.stat_names]].to_numpy()
    np.testing.assert_array_equal(bleu_stats, theirs["bleu_cooked"])
    per_report = np.array([[family.score_from_stats(bleu_stats[[i]])[name] for name in BLEU_NAMES]
                           for i in range(len(preds))])
    np.testing.assert_allclose(per_report, theirs["bleu_per_report"], rtol=0, atol=TOL)
    # ROUGE-L: per-report F and the LCS / lengths it comes from
    np.testing.assert_allclose(stats["ROUGE-L.rouge_l"].to_numpy(), theirs["rouge_per_report"],
                               rtol=0, atol=TOL)
    np.testing.assert_array_equal(stats[["ROUGE-L.lcs", "ROUGE-L.len_c", "ROUGE-L.len_r"]]
                                  .to_numpy(), theirs["rouge_lcs"])
    # CIDEr-D: per-report values (document frequencies of this corpus)
    np.testing.assert_allclose(stats["CIDEr.cider"].to_numpy(), theirs["cider_per_report"],
                               rtol=0, atol=TOL)


def papers_dotspace(text: str, lower: bool) -> str:
    """The line the CvT2DistilGPT2 / MLRG repositories run before pycocoevalcap."""
    out = re.sub(" +", " ", text.replace(".", " ."))
    return out.lower() if lower else out


def ptb_direct(texts: list[str]) -> list[str]:
    """pycocoevalcap's PTBTokenizer called here, once for these texts (one side)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    out = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts)})
    return [out[i][0] for i in range(len(texts))]


def one_line(text: str) -> str:
    """What can reach pycocoevalcap's METEOR at all: it writes each SCORE line as is, and a
    ``\\r`` or ``\\n`` (Java's line ends) desynchronises it from the jar. uarbench documents
    the same replacement; every other character must go through unchanged on both sides."""
    return text.replace("\r", " ").replace("\n", " ")


def skip_unless_available(name: str) -> None:
    reason = make_convention(name, dataset=None).unavailable_reason() if name == "ptb" else None
    if reason is not None:
        pytest.skip(reason)


def synthetic_pairs() -> tuple[list[str], list[str]]:
    """Cross-pairs of the synthetic reports, every edge case, odd whitespace, one identity."""
    refs_pool = SYNTH_REFERENCES
    m = len(refs_pool)
    preds, refs = [], []
    for i in range(m):                                   # cross-study: another report
        preds.append(refs_pool[(i + 2) % m])
        refs.append(refs_pool[i])
    for j, text in enumerate([*EDGE_PREDICTIONS.values(), *SYNTH_ODD]):
        ref = refs_pool[j % m]
        preds.append(ref if text is None else text)
        refs.append(ref)
    preds.append("Lungs clear.")                         # odd whitespace in a reference
    refs.append("lungs\tclear\n.  \u2028")
    return preds, refs


# --------------------------------------------------------------------------- IU-Xray corpus

@pytest.fixture(scope="module")
def iu_dataset(iu_xray_root):
    from uarbench.data.datasets import load_dataset
    return load_dataset("iu_xray", iu_xray_root, image_check="none")


@pytest.fixture(scope="module")
def iu_raw_pairs(iu_dataset) -> tuple[list[str], list[str], dict[str, int]]:
    """Raw test reports as references; as predictions the raw report of another study (even
    positions: a train report, odd: the test report 5 further on), edge cases injected."""
    test = [s.report for s in iu_dataset.split("test")]
    train = [s.report for s in iu_dataset.split("train")]
    n = len(test)
    assert n > 3 + EDGE_STEP * len(EDGE_PREDICTIONS)
    refs = list(test)
    preds = [train[(7 * i + 3) % len(train)] if i % 2 == 0 else test[(i + 5) % n]
             for i in range(n)]
    where = {}
    for j, (name, text) in enumerate(EDGE_PREDICTIONS.items()):
        i = 3 + EDGE_STEP * j
        preds[i] = refs[i] if text is None else text
        where[name] = i
    assert not any("\r" in t for t in preds + refs)     # ptb: PTBTokenizer misaligns on '\r'
    return preds, refs, where


@pytest.fixture(scope="module")
def iu_prepared(iu_dataset, iu_raw_pairs) -> dict:
    """name -> (ours: convention-prepared preds, refs; theirs: the strings pycocoevalcap is
    given under that convention), each built once for the module."""
    preds, refs, _ = iu_raw_pairs
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            conv = make_convention(name, dataset=iu_dataset)
            ours = (conv.prepare(preds), conv.prepare_references(refs))
            if name == "ptb":
                theirs = (ptb_direct(preds), ptb_direct(refs))
            elif name.startswith("dotspace"):
                lower = name == "dotspace-lower"
                theirs = ([papers_dotspace(t, lower) for t in preds],
                          [papers_dotspace(t, lower) for t in refs])
            else:            # r2gen, r2gen_compat: the convention is the definition
                theirs = ours
            cache[name] = (ours, theirs)
        return cache[name]
    return get


@pytest.mark.parametrize("name", ORDER)
def test_fast_metrics_exact_on_iu_xray_under_convention(name, iu_prepared, iu_raw_pairs):
    """BLEU-1..4, ROUGE-L, CIDEr-D corpus values and per-report statistics from score_nlg equal
    pycocoevalcap's on the IU-Xray test set with cross-study and edge-case predictions."""
    skip_unless_available(name)
    (p_ours, r_ours), (p_theirs, r_theirs) = iu_prepared(name)
    assert p_ours == p_theirs and r_ours == r_theirs      # same strings reach both scorers
    where = iu_raw_pairs[2]
    # the edge cases reach the scorer as the convention says
    if name == "dotspace":
        assert "HEART" in p_ours[where["mixed case"]]
        assert "1 .2-cm" in p_ours[where["numbers"]]
        assert "\n" in p_ours[where["newline and tab"]]
    if name in ("dotspace-lower", "ptb", "r2gen"):
        assert "heart" in p_ours[where["mixed case"]].split()
    same = where["equals its reference"]
    if name != "r2gen_compat":                # there the reference is cut and <unk>-mapped
        assert p_ours[same] == r_ours[same]
    assert p_ours[where["empty"]] == ""
    assert_fast_families_exact(p_ours, r_ours)


def test_r2gen_compat_references_differ_from_r2gen(iu_prepared):
    """r2gen_compat scores truncated, <unk>-mapped references (else its test above would be
    the r2gen test again)."""
    (p_compat, r_compat), _ = iu_prepared("r2gen_compat")
    (p_r2gen, r_r2gen), _ = iu_prepared("r2gen")
    assert p_compat == p_r2gen
    assert r_compat != r_r2gen
    assert any("<unk>" in r for r in r_compat) or any(
        len(a.split()) < len(b.split()) for a, b in zip(r_compat, r_r2gen))


# --------------------------------------------------------------------------- ptb guard

@needs_java
def test_ptb_prepare_keeps_captions_aligned_across_line_ends():
    """A '\\r' (or another character PTBTokenizer reads as a line end) inside one text makes
    PTBTokenizer itself put tokens onto the following captions; ``prepare`` gives each text the
    tokens PTBTokenizer gives it without those characters, and the next captions stay put."""
    skip_unless_available("ptb")
    texts = ["The heart is normal.", "Left\rright lung, clear.", "Mild\x0bcardiomegaly.",
             "No\x0ceffusion.", "Stable\u2028granuloma\u2029here.", "Lungs are CLEAR.",
             "A 1.2-cm nodule, 3 x 4 mm.", ""]
    prepared = make_convention("ptb").prepare(texts)
    spaced = [re.sub("[\r\x0b\x0c\u2028\u2029]", " ", t) for t in texts]
    assert prepared == ptb_direct(spaced)
    assert prepared[1] == "left right lung clear"
    assert prepared[-3:] == ["lungs are clear", "a 1.2-cm nodule 3 x 4 mm", ""]
    # why the guard exists: pycocoevalcap's own call shifts the captions after the '\r'
    raw = ptb_direct(texts[:3])
    assert raw[1] == "left" and raw[2] == "right lung clear"


# --------------------------------------------------------------------------- synthetic

@pytest.mark.parametrize("name", ["dotspace", "dotspace-lower", "r2gen"])
def test_fast_metrics_exact_on_synthetic_edge_cases(name):
    """No data, no Java needed: the same edge cases (and whitespace that split() and
    split(" ") treat differently) under the conventions that run everywhere."""
    preds, refs = synthetic_pairs()
    conv = make_convention(name)
    p, r = conv.prepare(preds), conv.prepare_references(refs)
    if name.startswith("dotspace"):
        lower = name == "dotspace-lower"
        assert p == [papers_dotspace(t, lower) for t in preds]
        assert r == [papers_dotspace(t, lower) for t in refs]
    assert_fast_families_exact(p, r)


# --------------------------------------------------------------------------- METEOR

@pytest.fixture(scope="module", autouse=True)
def _early_jvms(request):
    """When this module's METEOR tests are selected, start both METEOR JVMs (pycocoevalcap's
    and uarbench's) at once in the background: their start-up overlaps the other tests."""
    started: dict = {}
    wanted = any(item.get_closest_marker("java") is not None
                 for item in request.session.items if item.module is request.module)
    if wanted and shutil.which("java") is not None:
        from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor
        started["coco"] = CocoMeteor()            # Popen: the jar loads while tests run
        threading.Thread(target=Meteor().compute, daemon=True,
                         kwargs={"predictions": ["a"], "references": ["a"]}).start()
    yield started


def assert_meteor_exact(coco_meteor, preds: list[str], refs: list[str]) -> None:
    """score_nlg's METEOR and its per-report statistics = pycocoevalcap's Meteor."""
    results, stats = score_nlg(preds, refs, families=("METEOR",), signature_base={})
    family = Meteor()
    mine = stats[[f"METEOR.{s}" for s in family.stat_names]].to_numpy()
    seg, corpus = family.segment_and_corpus(mine)
    p_coco, r_coco = [one_line(t) for t in preds], [one_line(t) for t in refs]
    theirs, theirs_seg = coco_meteor.compute_score({i: [r] for i, r in enumerate(r_coco)},
                                                   {i: [p] for i, p in enumerate(p_coco)})
    assert abs(results["METEOR"].value - theirs) <= TOL
    assert abs(corpus - theirs) <= TOL
    np.testing.assert_allclose(seg, theirs_seg, rtol=0, atol=TOL)
    # the per-report statistics are the jar's answers to pycocoevalcap's own SCORE lines
    with coco_meteor.lock:
        cooked = np.array([[float(v) for v in coco_meteor._stat(p, [r]).split()]
                           for p, r in zip(p_coco, r_coco)])
    np.testing.assert_allclose(mine, cooked, rtol=0, atol=TOL)


@pytest.mark.java
@needs_java
def test_meteor_exact_on_iu_xray_all_conventions_one_corpus(coco_meteor, iu_prepared,
                                                            iu_raw_pairs):
    """One modest corpus: every 13th IU-Xray pair and all edge cases, under each convention."""
    n = len(iu_raw_pairs[1])
    idx = sorted(set(range(0, n, 13)) | set(iu_raw_pairs[2].values()))
    skip_unless_available("ptb")
    preds, refs = [], []
    for name in ORDER:
        (p, r), (p_theirs, r_theirs) = iu_prepared(name)
        assert p == p_theirs and r == r_theirs
        preds += [p[i] for i in idx]
        refs += [r[i] for i in idx]
    assert_meteor_exact(coco_meteor, preds, refs)


@pytest.mark.java
@needs_java
def test_meteor_exact_on_synthetic_edge_cases(coco_meteor):
    """The synthetic edge cases under dotspace and dotspace-lower in one corpus; vertical tab,
    U+0085, U+2028, U+001C ... are sent to the jar as pycocoevalcap sends them."""
    preds, refs = synthetic_pairs()
    all_p, all_r = [], []
    for name in ("dotspace", "dotspace-lower"):
        conv = make_convention(name)
        all_p += conv.prepare(preds)
        all_r += conv.prepare_references(refs)
    assert_meteor_exact(coco_meteor, all_p, all_r)
