"""synth-cxr: config, determinism, layout, report/label agreement, finding locations, learnability.

Orientation convention checked here: the frontal view is PA in radiological convention, so the
patient's RIGHT is on the image LEFT (small x); the lateral view has anterior on the image left.
"""
from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.data.synth import SynthConfig, contact_sheet, ensure_synth, generate_synth
from uarbench.data.synth import build as synth_build
from uarbench.data.synth.findings import (
    Atelectasis, Devices, Edema, Effusion, Fracture, Nodule, Opacity, Pneumothorax,
    StudyFindings, label_vector, sample_findings,
)
from uarbench.data.synth.grammar import plan_report, report_text
from uarbench.data.synth.render import render_frontal, render_lateral, sample_anatomy
from uarbench.data.synth.seeding import FINDINGS, GRAMMAR, StudyKey
from uarbench.errors import UarbenchError

TINY = SynthConfig(n_train=5, n_val=2, n_test=3, size=64, seed=3)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    return generate_synth(tmp_path_factory.mktemp("synth") / "tiny", TINY)


def _sampled(n: int, seed: int = 11):
    """(findings, plan) for n studies without rendering images."""
    out = []
    for i in range(n):
        key = StudyKey(seed, "train", i)
        f = sample_findings(key.rng(FINDINGS))
        out.append((f, plan_report(f, key.rng(GRAMMAR))))
    return out


# --- config -------------------------------------------------------------------------------------
def test_config_validation_and_cache_key():
    assert SynthConfig().cache_key() == SynthConfig().cache_key()
    assert len(SynthConfig().cache_key()) == 16
    keys = {SynthConfig().cache_key(), SynthConfig(seed=1).cache_key(),
            SynthConfig(size=64).cache_key(), SynthConfig(n_test=10).cache_key()}
    assert len(keys) == 4
    for bad in (dict(size=60), dict(size=100), dict(size=56), dict(n_train=0), dict(n_test=-1),
                dict(seed=-1), dict(size=128.0), dict(version="synth-cxr-v0")):
        with pytest.raises(UarbenchError):
            SynthConfig(**bad)
    with pytest.raises(Exception):
        SynthConfig().seed = 2    # frozen


# --- determinism and layout ---------------------------------------------------------------------
def test_same_seed_identical_bytes_other_seed_differs(tiny_build, tmp_path):
    again = generate_synth(tmp_path / "again", TINY)
    a, b = _files(tiny_build), _files(again)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)
    other = _files(generate_synth(tmp_path / "other", replace(TINY, seed=4)))
    assert other["annotation.json"] != a["annotation.json"]
    pngs = [k for k in a if k.endswith(".png")]
    assert sum(other[k] != a[k] for k in pngs) == len(pngs)


def test_study_does_not_depend_on_other_split_sizes():
    a = synth_build.make_study(TINY, "test", 1, "x")
    b = synth_build.make_study(replace(TINY, n_train=50, n_val=7), "test", 1, "y")
    assert a.report == b.report and a.labels == b.labels
    assert np.array_equal(a.frontal, b.frontal) and np.array_equal(a.lateral, b.lateral)


def test_r2gen_layout(tiny_build):
    ann = json.loads((tiny_build / "annotation.json").read_text())
    assert list(ann) == ["train", "val", "test"]
    assert [len(ann[s]) for s in ann] == [5, 2, 3]
    ids = [it["id"] for s in ann for it in ann[s]]
    assert ids == [f"synth_{i:06d}" for i in range(10)]
    for split, items in ann.items():
        for it in items:
            assert set(it) == {"id", "report", "image_path", "split", "labels", "findings"}
            assert it["split"] == split
            assert it["image_path"] == [f"{it['id']}/0.png", f"{it['id']}/1.png"]
            assert list(it["labels"]) == list(OBSERVATIONS)
            assert all(v in (1, 0, -1, None) for v in it["labels"].values())
            assert 0.3 < it["findings"]["ctr"] < 0.8
            for rel in it["image_path"]:
                im = Image.open(tiny_build / "images" / rel)
                assert im.mode == "L" and im.size == (64, 64)
    rows = list(csv.DictReader((tiny_build / "labels.csv").open()))
    assert [r["id"] for r in rows] == ids
    first = ann["train"][0]["labels"]
    assert {o: (None if rows[0][o] == "" else int(rows[0][o])) for o in OBSERVATIONS} == first
    meta = json.loads((tiny_build / "synth_config.json").read_text())
    assert meta["config"] == TINY.to_dict() and meta["cache_key"] == TINY.cache_key()
    assert not [p for p in tiny_build.parent.iterdir() if ".partial-" in p.name]


def test_build_reads_with_the_r2gen_reader(tiny_build):
    from uarbench.data.r2gen import read_annotation
    ann = read_annotation(tiny_build / "annotation.json", tiny_build / "images", views=2,
                          image_check="open")
    assert [len(ann.splits[s]) for s in ("train", "val", "test")] == [5, 2, 3]


def test_existing_folder_interrupted_build_and_overwrite(tiny_build, tmp_path, monkeypatch):
    with pytest.raises(UarbenchError, match="already exists"):
        generate_synth(tiny_build, TINY)
    calls = {"n": 0}
    real = synth_build.make_study

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synth_build, "make_study", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_synth(tmp_path / "broken", TINY)
    assert list(tmp_path.iterdir()) == []       # nothing that looks complete, no leftovers
    monkeypatch.setattr(synth_build, "make_study", real)
    target = generate_synth(tmp_path / "b", replace(TINY, seed=9))
    generate_synth(target, TINY, overwrite=True)
    assert _files(target) == _files(tiny_build)
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


def test_ensure_synth_caches_by_config(tmp_path, monkeypatch):
    monkeypatch.setenv("UARBENCH_CACHE", str(tmp_path / "env-cache"))
    cfg = replace(TINY, n_train=2, n_val=1, n_test=1)
    root = ensure_synth(cfg)
    assert root == tmp_path / "env-cache" / "synth-cxr" / cfg.cache_key()
    assert (root / "annotation.json").is_file()

    def boom(*args, **kwargs):
        raise AssertionError("rebuilt a cached build")

    monkeypatch.setattr(synth_build, "_write_build", boom)
    assert ensure_synth(cfg) == root
    assert ensure_synth(cfg, tmp_path / "env-cache") == root
    with pytest.raises(AssertionError):
        ensure_synth(replace(cfg, seed=5), tmp_path / "elsewhere")


def test_contact_sheet(tiny_build, tmp_path):
    out = contact_sheet(tiny_build, tmp_path / "sheet.png", n=6)
    im = Image.open(out)
    assert im.size[0] > 300 and im.size[1] > 150
    with pytest.raises(UarbenchError):
        contact_sheet(tmp_path, tmp_path / "x.png")


# --- labels and reports ---------------------------------------------------------------------------
def test_label_vectors_prevalence_and_report_length():
    studies = _sampled(400)
    words, counts = [], {o: 0 for o in OBSERVATIONS}
    for f, plan in studies:
        labels = label_vector(plan)
        assert list(labels) == list(OBSERVATIONS)
        assert all(v in (1, 0, -1, None) for v in labels.values())
        assert labels["No Finding"] in (1, None)
        assert (labels["No Finding"] == 1) == (not f.has_pathology)
        for o, v in labels.items():
            counts[o] += v in (1, -1)
        text = report_text(plan)
        assert re.fullmatch(r"([A-Z][^.]*\.)( [A-Z][^.]*\.)*", text), text
        words.append(len(text.split()))
    mean = float(np.mean(words))
    print(f"mean report words {mean:.1f}")
    assert 25 <= mean <= 35
    prevalence = {o: c / len(studies) for o, c in counts.items()}
    assert 0.22 <= prevalence["No Finding"] <= 0.38
    for o in ("Cardiomegaly", "Pleural Effusion", "Atelectasis", "Edema", "Support Devices"):
        assert 0.12 <= prevalence[o] <= 0.38, (o, prevalence[o])
    opacity_group = np.mean([any(label_vector(p)[o] in (1, -1)
                                 for o in ("Lung Opacity", "Consolidation", "Pneumonia"))
                             for _, p in studies])
    assert 0.12 <= opacity_group <= 0.38
    for o in ("Lung Lesion", "Pneumothorax", "Fracture", "Enlarged Cardiomediastinum"):
        assert 0.02 <= prevalence[o] <= 0.2, (o, prevalence[o])


# An independent reading of the report text: which observation a sentence talks about
# (keywords) and how (an uncertainty cue, else a negation cue, else positive).
KEYWORDS = {
    "Enlarged Cardiomediastinum": r"mediastin",
    "Cardiomegaly": r"cardiomegaly|\bheart\b|cardiac silhouette",
    "Lung Opacity": r"opacit|infiltrat|airspace disease",
    "Lung Lesion": r"nodule|\bmass\b",
    "Edema": r"edema|congestion",
    "Consolidation": r"consolidat",
    "Pneumonia": r"pneumonia|infection",
    "Atelectasis": r"atelecta",
    "Pneumothorax": r"pneumothora",
    "Pleural Effusion": r"effusion",
    "Pleural Other": r"pleural thickening",
    "Fracture": r"fracture",
    "Support Devices": r"\btube\b|catheter|\bpicc\b|central line",
}
UNCERTAIN = (r"\b(possible|possibly|cannot be excluded|may represent|may reflect|questionable"
             r"|borderline)\b")
NEGATED = r"\b(no|not|without|normal|unremarkable|clear|negative|free of)\b"


def _read_labels(report: str) -> dict[str, int | None]:
    found: dict[str, int | None] = {o: None for o in OBSERVATIONS}
    rank = {1: 3, -1: 2, 0: 1}
    for sentence in re.split(r"(?<=\.)\s+", report.lower()):
        value = -1 if re.search(UNCERTAIN, sentence) else 0 if re.search(NEGATED, sentence) else 1
        for obs, pattern in KEYWORDS.items():
            if re.search(pattern, sentence) and (found[obs] is None
                                                 or rank[value] > rank[found[obs]]):
                found[obs] = value
    pathology = [o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices")]
    found["No Finding"] = None if any(found[o] in (1, -1) for o in pathology) else 1
    return found


def test_report_text_agrees_with_labels():
    seen = {1: 0, 0: 0, -1: 0}
    for f, plan in _sampled(500, seed=5):
        report, labels = report_text(plan), label_vector(plan)
        assert _read_labels(report) == labels, report
        for v in labels.values():
            if v is not None:
                seen[v] += 1
    assert min(seen.values()) > 20       # all three kinds of statement occur


def test_report_words_locations_and_severity():
    f = StudyFindings(ctr=0.62, effusion=Effusion("left", "moderate"),
                      opacity=Opacity("consolidation", "right", "lower", "possible"),
                      pneumothorax=Pneumothorax("right", "small"))
    for seed in range(10):
        plan = plan_report(f, np.random.default_rng(seed))
        text = report_text(plan).lower()
        assert "moderate left pleural effusion" in text
        assert "right lower lobe" in text and "small right" in text
        labels = label_vector(plan)
        assert labels["Pneumonia"] == -1 and labels["Consolidation"] == 1
        assert labels["Cardiomegaly"] == 1 and labels["No Finding"] is None


# --- images -------------------------------------------------------------------------------------
def _diff(f: StudyFindings, seed: int, size: int = 128, view=render_frontal) -> np.ndarray:
    """Pixel difference made by the findings in ``f``, same anatomy, texture and noise."""
    a = sample_anatomy(np.random.default_rng(seed))
    return view(f, a, size).astype(float) - view(StudyFindings(ctr=f.ctr), a, size).astype(float)


def _centroid(weight: np.ndarray) -> tuple[float, float]:
    """(x, y) centre of mass in image fractions (x to the right, y down)."""
    h, w = weight.shape
    ys, xs = np.mgrid[0:h, 0:w]
    total = weight.sum()
    assert total > 0
    return float((weight * xs).sum() / total / w), float((weight * ys).sum() / total / h)


def _half_means(d: np.ndarray, y0: float, y1: float) -> tuple[float, float]:
    """Mean difference in the image-left and image-right halves between rows y0..y1."""
    h, w = d.shape
    band = d[int(y0 * h):int(y1 * h)]
    return float(band[:, : w // 2].mean()), float(band[:, w // 2:].mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_findings_drawn_at_the_stated_side_and_level(seed):
    # right effusion: brighter lower image-LEFT lung field, other side untouched
    d = _diff(StudyFindings(effusion=Effusion("right", "moderate")), seed)
    left, right = _half_means(d, 0.55, 0.85)
    assert left > 3.0 and abs(right) < 0.5
    x, y = _centroid(np.clip(d, 0, None))
    assert x < 0.45 and y > 0.55
    # left effusion, mirrored; lateral view: fluid in the posterior (image-right) sulcus
    d = _diff(StudyFindings(effusion=Effusion("left", "large")), seed)
    left, right = _half_means(d, 0.55, 0.85)
    assert right > 3.0 and abs(left) < 0.5
    x, y = _centroid(np.clip(_diff(StudyFindings(effusion=Effusion("left", "large")), seed,
                                   view=render_lateral), 0, None))
    assert x > 0.5 and y > 0.55
    # left pneumothorax: darker image-RIGHT apex and lateral lung (no markings), pleural line
    d = _diff(StudyFindings(pneumothorax=Pneumothorax("left", "moderate")), seed)
    left, right = _half_means(d, 0.05, 0.5)
    assert right < -1.0 and abs(left) < 0.5
    x, y = _centroid(np.clip(-d, 0, None))
    assert x > 0.55 and y < 0.5
    # consolidations in the stated lobe
    rul = StudyFindings(opacity=Opacity("consolidation", "right", "upper"))
    x, y = _centroid(np.clip(_diff(rul, seed), 0, None))
    assert x < 0.45 and y < 0.45
    lll = StudyFindings(opacity=Opacity("consolidation", "left", "lower"))
    x, y = _centroid(np.clip(_diff(lll, seed), 0, None))
    assert x > 0.55 and y > 0.5
    # nodule: a small bright spot on the stated side
    d = _diff(StudyFindings(nodule=Nodule("left", "upper", 20)), seed)
    x, y = _centroid(np.clip(d, 0, None))
    assert x > 0.55 and y < 0.5 and d.max() > 20
    # edema: bilateral perihilar haze
    left, right = _half_means(_diff(StudyFindings(edema=Edema("moderate")), seed), 0.3, 0.7)
    assert left > 2.0 and right > 2.0
    # atelectasis at the right base, rib fracture on the left, ETT in the midline above the carina
    x, y = _centroid(np.clip(_diff(StudyFindings(atelectasis=Atelectasis("right", "plate-like")),
                                   seed), 0, None))
    assert x < 0.45 and y > 0.55
    x, _ = _centroid(np.abs(_diff(StudyFindings(fracture=Fracture("left", (6, 7))), seed)))
    assert x > 0.6
    x, y = _centroid(np.clip(_diff(StudyFindings(devices=Devices(ett_cm=4)), seed), 0, None))
    assert abs(x - 0.5) < 0.05 and y < 0.35


def test_a_finding_changes_only_its_own_pixels():
    """Texture and noise do not depend on which other findings a study has."""
    a = sample_anatomy(np.random.default_rng(3))
    nodule = StudyFindings(nodule=Nodule("left", "upper", 20))
    both = replace(nodule, opacity=Opacity("consolidation", "right", "upper"),
                   effusion=Effusion("left", "small"))
    alone = replace(both, nodule=None)
    for view in (render_frontal, render_lateral):
        added = view(both, a, 96).astype(int) - view(nodule, a, 96).astype(int)
        by_itself = view(alone, a, 96).astype(int) - view(StudyFindings(), a, 96).astype(int)
        assert np.abs(added).max() > 20
        assert np.abs(added - by_itself).max() <= 2


def test_heart_width_follows_the_cardiothoracic_ratio():
    a = sample_anatomy(np.random.default_rng(4))
    small = render_frontal(StudyFindings(ctr=0.42), a, 128).astype(float)
    big = render_frontal(StudyFindings(ctr=0.66), a, 128).astype(float)
    d = big - small
    x, _ = _centroid(np.clip(d, 0, None))
    assert x > 0.5          # the heart grows mostly to the patient's left (image right)
    # widest row of the brighter area spans about (0.66 - 0.42) * thoracic width
    cols = (d > 40).sum(axis=1).max() / 128
    assert 0.5 * 0.24 * a.thorax_w < cols < 1.3 * 0.24 * a.thorax_w


def test_images_vary_between_studies_and_look_like_radiographs(tiny_build):
    ims = [np.asarray(Image.open(p)) for p in sorted((tiny_build / "images").glob("*/0.png"))]
    assert len({im.tobytes() for im in ims}) == len(ims)
    for im in ims:
        h, w = im.shape
        lungs = np.r_[im[h // 3: 2 * h // 3, w // 8: w // 3].ravel(),
                      im[h // 3: 2 * h // 3, 2 * w // 3: 7 * w // 8].ravel()]
        spine = im[h // 3: 2 * h // 3, w // 2 - 2: w // 2 + 2]
        assert lungs.mean() + 40 < spine.mean()          # dark lungs, bright mediastinum
        assert im[-h // 8:, w // 4: 3 * w // 4].mean() > lungs.mean() + 40   # abdomen


# --- learnability ---------------------------------------------------------------------------------
def _auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUROC, positives = label 1, negatives = 0 (ties get mid-ranks)."""
    from scipy.stats import rankdata
    ranks = rankdata(scores)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_cardiomegaly_and_effusion_are_learnable_from_pixels(tmp_path):
    """About 16 s on 2 idle cores: 801 studies at 64 px, 8 epochs of a tiny CNN, one thread."""
    import torch
    from torch import nn

    cfg = SynthConfig(n_train=600, n_val=1, n_test=200, size=64, seed=1)
    t0 = time.perf_counter()
    root = generate_synth(tmp_path / "learn", cfg)
    t_gen = time.perf_counter() - t0
    ann = json.loads((root / "annotation.json").read_text())
    targets = ("Cardiomegaly", "Pleural Effusion")

    def load(split):
        items = ann[split]
        x = np.stack([np.asarray(Image.open(root / "images" / it["image_path"][0]))
                      for it in items]).astype(np.float32)[:, None] / 255.0
        y = np.array([[{1: 1, -1: -1}.get(it["labels"][t], 0) for t in targets] for it in items],
                     dtype=np.float32)
        return torch.from_numpy(x), torch.from_numpy(y)

    x_tr, y_tr = load("train")
    x_te, y_te = load("test")
    mu, sd = x_tr.mean(), x_tr.std()
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    known = (y_tr != -1).float()          # uncertain labels are left out of the loss
    y01 = (y_tr == 1).float()

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # one thread is faster than two on a shared 2-core machine

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                nn.MaxPool2d(2)]

    net = nn.Sequential(*block(1, 8), *block(8, 16), *block(16, 32), *block(32, 32),
                        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, len(targets)))
    epochs, batch = 8, 32
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3,
                                                total_steps=epochs * -(-len(x_tr) // batch))
    try:
        for _ in range(epochs):
            net.train()
            perm = torch.randperm(len(x_tr))
            for i in range(0, len(x_tr), batch):
                b = perm[i:i + batch]
                loss = (nn.functional.binary_cross_entropy_with_logits(
                    net(x_tr[b]), y01[b], reduction="none") * known[b]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        with torch.no_grad():
            scores = net(x_te).numpy()
    finally:
        torch.set_num_threads(threads)
    aurocs = {}
    for k, t in enumerate(targets):
        keep = y_te[:, k].numpy() != -1
        aurocs[t] = _auroc(scores[keep, k], y_te[keep, k].numpy())
    print(f"generated {cfg.n_total} studies at {cfg.size} px in {t_gen:.1f} s, trained in "
          f"{time.perf_counter() - t0 - t_gen:.1f} s; held-out AUROC:",
          {t: round(v, 3) for t, v in aurocs.items()})
    assert aurocs["Cardiomegaly"] >= 0.9
    assert aurocs["Pleural Effusion"] >= 0.9
