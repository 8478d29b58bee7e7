"""Stage 1 trained once (uarbench.training.shared_stage1): a two-stage UAR run that takes its
stage 1 from a one-stage run of its stage-1 configuration (ablation row (e)), or the other way
round, ends byte-identical to the run that trains everything itself; a changed setting that
stage 1 depends on is never shared, one it does not depend on is."""
from __future__ import annotations

import json

import pytest
import torch

from uarbench.data.datasets import load_dataset
from uarbench.data.synth import SynthConfig, generate_synth
from uarbench.models.uar import UARConfig
from uarbench.models.uar.config import VQConfig
from uarbench.training.checkpoint import load_checkpoint
from uarbench.training.config import TrainConfig
from uarbench.training.decoding import DecodeConfig
from uarbench.store import SUMMARY_FILE as SUMMARY
from uarbench.training.run import train_uar

UAR = UARConfig.cpu_small(d_model=32, n_heads=2, cra_heads=2, d_ff=64, n_layers=1, basis_size=64,
                          codebook_size=32, vq=VQConfig(hidden=8, embed_dim=8, steps=5))
ROW_E = UAR.replace(tir=False, two_stage=False)
TRAIN = TrainConfig.cpu_small(epochs_stage1=2, epochs_stage2=2, batch_size=8, threads=1,
                              decode=DecodeConfig(beam_size=2, max_len=12),
                              select_decode=DecodeConfig(beam_size=2, max_len=12))
OUTPUTS = ("predictions.jsonl", "metrics.json", "val/predictions.jsonl", "val/metrics.json")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = generate_synth(tmp_path_factory.mktemp("synth") / "s",
                          SynthConfig(n_train=24, n_val=6, n_test=6, size=64, seed=5), progress=False)
    return load_dataset("synth-cxr", root)


def _log(run):
    return [{k: v for k, v in json.loads(l).items() if k != "samples_per_s"}
            for l in (run / "train_log.jsonl").read_text().splitlines()]


def _same(a, b):
    for rel in OUTPUTS:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert _log(a) == _log(b)
    for ckpt in ("best_stage1.pt", "best.pt"):
        wa, wb = (load_checkpoint(r / "checkpoints" / ckpt)["model"] for r in (a, b))
        assert list(wa) == list(wb) and all(torch.equal(wa[k], wb[k]) for k in wa), ckpt


@pytest.fixture(scope="module")
def alone(tiny, tmp_path_factory):
    """UAR and row (e), each training everything itself."""
    root = tmp_path_factory.mktemp("alone")
    for name, cfg in (("uar", UAR), ("e", ROW_E)):
        train_uar(dataset=tiny, model_cfg=cfg, train_cfg=TRAIN, out_dir=root / name,
                  cache_dir=root / "cache", share_stage1=False)
    return root


@pytest.mark.parametrize("first", ["e", "uar"])
def test_a_run_that_takes_stage1_equals_one_that_trains_it(tiny, alone, tmp_path, first):
    cfgs = {"uar": UAR, "e": ROW_E}
    second = "uar" if first == "e" else "e"
    for name in (first, second):
        train_uar(dataset=tiny, model_cfg=cfgs[name], train_cfg=TRAIN, out_dir=tmp_path / name,
                  cache_dir=tmp_path / "cache")
    taken = {n: json.loads((tmp_path / n / SUMMARY).read_text())["shared_stage1"]
             for n in (first, second)}
    assert taken[first]["taken"] is False and taken[second]["taken"] is True
    assert taken[first]["key"] == taken[second]["key"]
    for name in (first, second):
        _same(alone / name, tmp_path / name)
    # the run that took stage 1 trained only what was left
    phases = json.loads((tmp_path / second / SUMMARY).read_text())["phases_s"]
    assert ("train_steps" in phases) == (second == "uar")


def test_what_stage1_depends_on_is_in_the_key(tiny, tmp_path):
    def key(cfg, train):
        out = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
        train_uar(dataset=tiny, model_cfg=cfg, train_cfg=train, out_dir=out,
                  cache_dir=tmp_path / "cache")
        return json.loads((out / SUMMARY).read_text())["shared_stage1"]
    base = key(UAR, TRAIN)
    # stage 2 and the test decoding do not change stage 1: shared
    other = key(UAR.replace(tir_k=10.0, l3=0.5), TRAIN.replace(epochs_stage2=1, decode=DecodeConfig(
        beam_size=3, max_len=12)))
    assert other == {"key": base["key"], "taken": True}
    # row (f) trains the masks from the start; another seed or learning rate is another stage 1
    for cfg, train in ((UAR.replace(two_stage=False), TRAIN), (UAR, TRAIN.replace(seed=1)),
                       (UAR, TRAIN.replace(lr=2e-3))):
        assert key(cfg, train)["key"] != base["key"]
