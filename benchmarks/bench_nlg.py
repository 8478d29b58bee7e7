"""uarbench's NLG metrics vs pycocoevalcap 1.2: same numbers, how much faster.

3,858 report pairs (the MIMIC-CXR test size), built from the IU-Xray reports of
../shared/data/iu_xray/annotation.json when present (cycled and shifted), else from synthetic
reports. Each timing is the best of 3 in this process; uarbench's caches are cleared before
every run so that nothing is reused between runs. METEOR is timed once (JVM start included).

Run: .venv/bin/python benchmarks/bench_nlg.py
"""
from __future__ import annotations

import json
import random
import shutil
import sys
import time
from pathlib import Path

N_PAIRS = 3858
REPEATS = 3
ANNOTATION = Path(__file__).resolve().parents[1].parent / "shared/data/iu_xray/annotation.json"


def _clean(text: str) -> str:
    try:
        from uarbench.data.cleaning import clean_report_iu_xray
    except ImportError:  # simple stand-in: lowercase, drop punctuation, " . " between sentences
        import re
        sentences = [re.sub(r"[^\w\s]", "", s).strip() for s in text.lower().split(". ")]
        return " . ".join(" ".join(s.split()) for s in sentences) + " ."
    return clean_report_iu_xray(text)


def synthetic_reports(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    findings = ["the heart is normal in size", "the mediastinum is unremarkable",
                "the lungs are clear", "there is no pneumothorax or pleural effusion",
                "no focal airspace disease", "mild cardiomegaly is present",
                "there is a small right pleural effusion", "degenerative changes of the spine",
                "stable appearance of the chest", "no acute cardiopulmonary abnormality",
                "low lung volumes with bibasilar atelectasis", "calcified granuloma in the left "
                "upper lobe", "the osseous structures are intact", "the trachea is midline"]
    out = []
    for _ in range(n):
        k = rng.randint(1, 8)
        sents = rng.sample(findings, k)
        if rng.random() < 0.3:
            sents.append(" ".join(rng.choice(findings).split()[::-1]))
        out.append(" . ".join(sents) + " .")
    return out


def report_pairs() -> tuple[list[str], list[str], str]:
    if ANNOTATION.is_file():
        data = json.loads(ANNOTATION.read_text())
        reports = [_clean(e["report"]) for split in ("train", "val", "test") for e in data[split]]
        source = f"IU-Xray ({len(reports)} reports, cycled)"
    else:
        reports = synthetic_reports(3000)
        source = "synthetic reports (../shared/data not found)"
    u = len(reports)
    refs = [reports[i % u] for i in range(N_PAIRS)]
    # shift by 1 in the first cycle, by 2 in the next, ...: every pair differs
    preds = [reports[(i + 1 + i // u) % u] for i in range(N_PAIRS)]
    return preds, refs, source


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    from pycocoevalcap.bleu.bleu import Bleu as CocoBleu
    from pycocoevalcap.cider.cider import Cider as CocoCider
    from pycocoevalcap.rouge.rouge import Rouge as CocoRouge

    from uarbench.metrics import ngrams
    from uarbench.metrics.nlg import score_nlg

    preds, refs, source = report_pairs()
    gts = {i: [r] for i, r in enumerate(refs)}
    res = {i: [p] for i, p in enumerate(preds)}
    print(f"{len(preds)} pairs from {source}; best of {REPEATS}\n")

    def coco_bleu():
        return dict(zip([f"BLEU-{k}" for k in range(1, 5)],
                        CocoBleu(4).compute_score(gts, res, verbose=0)[0]))

    def coco_rouge():
        return {"ROUGE-L": float(CocoRouge().compute_score(gts, res)[0])}

    def coco_cider():
        return {"CIDEr": float(CocoCider().compute_score(gts, res)[0])}

    def ours(*families):
        def run():
            ngrams.clear_cache()
            results, _ = score_nlg(preds, refs, families=families, signature_base={})
            return {k: r.value for k, r in results.items()}
        return run

    def coco_all():
        return {**coco_bleu(), **coco_rouge(), **coco_cider()}

    rows = [("BLEU-1..4", coco_bleu, ours("BLEU")),
            ("ROUGE-L", coco_rouge, ours("ROUGE-L")),
            ("CIDEr", coco_cider, ours("CIDEr")),
            ("BLEU+ROUGE-L+CIDEr", coco_all, ours("BLEU", "ROUGE-L", "CIDEr"))]
    header = (f"{'metric':<20} {'pycocoevalcap s':>15} {'uarbench s':>11} {'speed-up':>9}"
              "  max |diff|")
    print(header)
    print("-" * len(header))
    ratio_all, worst = 0.0, 0.0
    for label, theirs_fn, ours_fn in rows:
        t_theirs, theirs = best_of(theirs_fn)
        t_ours, mine = best_of(ours_fn)
        diff = max(abs(mine[k] - theirs[k]) for k in theirs)
        worst = max(worst, diff)
        ratio = t_theirs / t_ours
        if label.startswith("BLEU+"):
            ratio_all = ratio
        print(f"{label:<20} {t_theirs:>15.3f} {t_ours:>11.3f} {ratio:>8.1f}x  {diff:.1e}")
        for k in theirs:
            print(f"    {k:<16} pycocoevalcap {theirs[k]:.17g}  uarbench {mine[k]:.17g}")

    if shutil.which("java") is not None:
        from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor
        t0 = time.perf_counter()
        coco = CocoMeteor()
        theirs = coco.compute_score(gts, res)[0]
        t_theirs = time.perf_counter() - t0
        t0 = time.perf_counter()
        mine = ours("METEOR")()["METEOR"]
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours("METEOR")()
        t_warm = time.perf_counter() - t0
        diff = abs(mine - theirs)
        worst = max(worst, diff)
        print(f"{'METEOR (once)':<20} {t_theirs:>15.3f} {t_ours:>11.3f} {t_theirs / t_ours:>8.1f}x"
              f"  {diff:.1e}   (JVM start included; uarbench again, warm JVM: {t_warm:.3f} s)")
        print(f"    {'METEOR':<16} pycocoevalcap {theirs:.17g}  uarbench {mine:.17g}")
        coco.meteor_p.stdin.close()
        coco.meteor_p.kill()
        coco.meteor_p.wait()
    else:
        print("METEOR: skipped (java not found on PATH)")

    ok = worst <= 1e-9 and ratio_all >= 10
    print(f"\nBLEU+ROUGE-L+CIDEr speed-up {ratio_all:.1f}x (target >= 10x); "
          f"max |diff| {worst:.1e} (target <= 1e-9): {'OK' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
