"""Significance tests on sufficient statistics vs recomputing every metric on every trial.

Two systems on 3,858 reports (the MIMIC-CXR test size): the references are all cleaned IU-Xray
reports of ../shared/data/iu_xray (every split, cycled to 3,858) when present, else the synth-cxr
reports; each system output is, per report, either its reference with one sentence dropped or
another (shuffled) report, system B a little more often the former. Metrics: BLEU-4 (all of
BLEU-1..4 computed), ROUGE-L, CIDEr-D and CE-F1 (the default CE conventions, rule labeler; CE is
skipped with a note when that labeler cannot be imported).

uarbench's path: per-report statistics once, then paired approximate randomization (10,000
trials) and paired bootstrap (1,000 resamples) from summed statistics
(uarbench.stats.randomization / .bootstrap). The reference path does what RadEval's
compare_systems does: rebuild both systems' outputs for each trial and recompute each metric
from the text (here with uarbench's own fast metric code and caches cleared, a faster baseline
than pycocoevalcap), run for --recompute-trials trials and resamples and scaled linearly to
10,000 + 1,000. The same swap masks go to both paths, so their p-values over the trials run must
be identical.

Run: .venv/bin/python benchmarks/bench_significance.py [--recompute-trials 200]
(the recompute path costs ~8 s per trial + resample on 2 cores: 200 takes ~25 minutes,
--recompute-trials 30 about 4).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

from uarbench.metrics import ngrams
from uarbench.metrics.bleu import Bleu
from uarbench.metrics.ce import ce_families
from uarbench.metrics.cider import CiderD
from uarbench.metrics.rouge import RougeL
from uarbench.stats.bootstrap import paired_bootstrap
from uarbench.stats.randomization import at_least_as_extreme, randomization_tests
from uarbench.stats.resample import bootstrap_indices, swap_masks

ROOT = Path(__file__).resolve().parents[1]

N_REPORTS = 3858
IU_XRAY = ROOT.parent / "shared" / "data" / "iu_xray"
REPORTED = ("BLEU-4", "ROUGE-L", "CIDEr", "CE-F1[macro-14-unc0]", "CE-F1[micro-5-unc1]",
            "CE-F1[micro-14-unc1]", "CE-F1[example-14-unc0]")


def references() -> tuple[list[str], str]:
    from uarbench.data.datasets import load_dataset
    if (IU_XRAY / "annotation.json").is_file():
        ds = load_dataset("iu_xray", IU_XRAY, image_check="none")
        source = "IU-Xray"
    else:
        ds = load_dataset("synth-cxr", image_check="none")
        source = "synth-cxr"
    reports = [ds.clean(s.report) for split in ("train", "val", "test") for s in ds.split(split)]
    return [reports[i % len(reports)] for i in range(N_REPORTS)], \
        f"{source} ({len(reports)} cleaned reports, cycled to {N_REPORTS})"


def system(refs: list[str], p_close: float, seed: int) -> list[str]:
    """Per report: the reference minus one sentence (prob. p_close), else another report."""
    rng = random.Random(seed)
    out = []
    for ref in refs:
        if rng.random() < p_close:
            sents = [s for s in ref.split(" . ") if s]
            if len(sents) > 1:
                del sents[rng.randrange(len(sents))]
            out.append(" . ".join(s.rstrip(" .") for s in sents) + " .")
        else:
            out.append(rng.choice(refs))
    return out


def rule_labeler():
    try:
        from uarbench.labeling.rules import RuleLabeler
    except ImportError as e:
        print(f"note: CE skipped, the rule labeler cannot be imported ({e})")
        return None
    return RuleLabeler()


class TextFamily:
    """Recompute path for one family: text -> statistics -> scores, no reuse between calls."""

    def __init__(self, family, labeler=None) -> None:
        self.family, self.labeler = family, labeler

    def stats(self, preds: list[str], refs: list[str], ref_labels=None) -> np.ndarray:
        if self.labeler is None:
            return self.family.stats(preds, refs)
        return self.family.stats_from_labels(self.labeler.label(preds), ref_labels)

    def scores(self, preds: list[str], refs: list[str], ref_labels=None) -> dict[str, float]:
        ngrams.clear_cache()
        cache = getattr(self.labeler, "_cache", None)
        if isinstance(cache, dict):
            cache.clear()   # label the trial's texts afresh, as RadEval does
        return self.family.score_from_stats(self.stats(preds, refs, ref_labels))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--recompute-trials", type=int, default=200,
                    help="trials (and resamples) run by the recompute path, scaled linearly")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    refs, source = references()
    sys_a, sys_b = system(refs, 0.30, seed=1), system(refs, 0.33, seed=2)
    labeler = rule_labeler()
    families = [Bleu(), RougeL(), CiderD()]
    if labeler is not None:
        families += ce_families()
    text = [TextFamily(f, labeler if f.family == "CE" else None) for f in families]
    print(f"{N_REPORTS} reports from {source}; systems A and B; seed {a.seed}\n")

    # ---------------------------------------------------------------- uarbench: statistics once
    t0 = time.perf_counter()
    ngrams.clear_cache()
    ref_labels = labeler.label(refs) if labeler is not None else None
    stats = [(tf.stats(sys_a, refs, ref_labels), tf.stats(sys_b, refs, ref_labels)) for tf in text]
    t_stats = time.perf_counter() - t0
    t0 = time.perf_counter()
    ar, boot = {}, {}
    for fam, (sa, sb) in zip(families, stats):
        ar.update(randomization_tests(sa, {"B": sb}, fam, trials=a.trials, seed=a.seed)["B"])
        res = paired_bootstrap({"A": sa, "B": sb}, fam, n_resamples=a.resamples, seed=a.seed,
                               baseline="A")
        boot.update({m: (res.systems["A"][m], res.systems["B"][m], res.differences["B"][m])
                     for m in fam.names})
    t_tests = time.perf_counter() - t0
    t_ours = t_stats + t_tests

    # ------------------------------------------- recompute path: k trials and k resamples, timed
    k = a.recompute_trials
    masks = swap_masks(N_REPORTS, k, seed=a.seed)
    observed = {m: float(sb_m - sa_m) for fam, (sa, sb) in zip(families, stats)
                for m, sa_m, sb_m in zip(fam.names, fam.score_from_stats(sa).values(),
                                         fam.score_from_stats(sb).values())}
    counts = {m: 0 for m in observed}
    t0 = time.perf_counter()
    for mask in masks:
        a2 = [pb if s else pa for pa, pb, s in zip(sys_a, sys_b, mask)]
        b2 = [pa if s else pb for pa, pb, s in zip(sys_a, sys_b, mask)]
        for tf in text:
            sa_t, sb_t = tf.scores(a2, refs, ref_labels), tf.scores(b2, refs, ref_labels)
            for m in tf.family.names:
                counts[m] += int(at_least_as_extreme(np.array([sb_t[m] - sa_t[m]]),
                                                     observed[m])[0])
    t_ar_k = time.perf_counter() - t0
    t0 = time.perf_counter()
    for idx in bootstrap_indices(N_REPORTS, k, seed=a.seed):
        r2 = [refs[i] for i in idx]
        rl2 = None if ref_labels is None else ref_labels[idx]
        for tf in text:
            tf.scores([sys_a[i] for i in idx], r2, rl2)
            tf.scores([sys_b[i] for i in idx], r2, rl2)
    t_bs_k = time.perf_counter() - t0
    t_recompute = t_ar_k / k * a.trials + t_bs_k / k * a.resamples

    # same masks, same trials: the fast path's p over the first k trials
    fast_k = {}
    for fam, (sa, sb) in zip(families, stats):
        fast_k.update(randomization_tests(sa, {"B": sb}, fam, trials=k, seed=a.seed)["B"])
    p_recompute = {m: (c + 1) / (k + 1) for m, c in counts.items()}
    mismatched = [m for m in counts if fast_k[m].count != counts[m]]

    print(f"{'metric':<24} {'A':>8} {'B':>8} {'B-A':>8} {'95% CI of B-A':>20} "
          f"{'p (AR)':>9} {'p@' + str(k) + ' fast':>11} {'p@' + str(k) + ' recomp':>12}")
    for m in [m for m in REPORTED if m in boot]:
        ia, ib, d = boot[m]
        print(f"{m:<24} {ia.estimate:>8.4f} {ib.estimate:>8.4f} {d.estimate:>+8.4f} "
              f"[{d.lo:+.4f}, {d.hi:+.4f}] {ar[m].p_value:>9.4f} {fast_k[m].p_value:>11.4f} "
              f"{p_recompute[m]:>12.4f}")
    print(f"\nuarbench: statistics {t_stats:.2f} s + AR {a.trials} & bootstrap {a.resamples} "
          f"{t_tests:.2f} s = {t_ours:.2f} s")
    print(f"recompute: {k} AR trials {t_ar_k:.1f} s, {k} bootstrap resamples {t_bs_k:.1f} s "
          f"-> {t_recompute:.0f} s for {a.trials} + {a.resamples} (scaled linearly)")
    ratio = t_recompute / t_ours
    ok = ratio >= 100 and not mismatched
    same = (f"identical for all {len(counts)} metrics" if not mismatched
            else f"DIFFER for {', '.join(mismatched)}")
    print(f"speed-up {ratio:.0f}x (target >= 100x); p-values over the {k} shared trials: "
          f"{same}: {'OK' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
