"""Data-parallel training: ``torchrun`` with 2 CPU processes (gloo) logs the same losses step by step
and ends with the same weights as one process on the same data, the ranks agree on the selected
checkpoint, and only rank 0 writes. Run as a script, this file is the torchrun worker.

Scoring is stubbed out in both runs: it runs on rank 0 only, after training, and is tested in
tests/training/test_trainer.py; here it would only add METEOR's JVM start-up.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from uarbench.data.datasets import load_dataset
from uarbench.errors import UarbenchError
from uarbench.models.uar import UARConfig
from uarbench.models.uar.config import VQConfig
from uarbench.store import SUMMARY_FILE
from uarbench.training import run
from uarbench.training.config import TrainConfig
from uarbench.training.decoding import DecodeConfig
from uarbench.training.distributed import DistInfo, init_distributed

REPO = Path(__file__).resolve().parents[2]
# L_Global off: its hardest negatives are drawn per rank, the one term that legitimately differs
MODEL = UARConfig.cpu_small(d_model=32, n_heads=2, cra_heads=2, d_ff=64, n_layers=1, basis_size=64,
                            codebook_size=32, vq=VQConfig(hidden=8, embed_dim=8, steps=5),
                            cra_global_loss=False, dropout=0.0)
# 17 studies in batches of 8: 8, 8, 1 -> shards of 4 + 4 rows with unequal token counts, and a
# last batch that leaves rank 1 with no rows at all
TRAIN = TrainConfig.cpu_small(epochs_stage1=2, epochs_stage2=1, batch_size=8, threads=1,
                              decode=DecodeConfig(beam_size=2, max_len=12),
                              select_decode=DecodeConfig(method="greedy", max_len=12))
TERMS = ("loss", "ce", "global_", "mask", "lr")


def _train(data_root: Path, out_dir: Path, cache_dir: Path) -> dict:
    return run.train_uar(dataset=load_dataset("synth-cxr", data_root), model_cfg=MODEL,
                         train_cfg=TRAIN, out_dir=out_dir, cache_dir=cache_dir)


def _rows(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    from uarbench.data.synth import SynthConfig, generate_synth
    return generate_synth(tmp_path_factory.mktemp("synth") / "s",
                          SynthConfig(n_train=17, n_val=6, n_test=6, size=64, seed=3), progress=False)


@pytest.mark.slow
def test_two_gloo_processes_train_like_one(synth_root, tmp_path, monkeypatch):
    monkeypatch.setattr(run, "_decode_and_score", lambda *a, **k: {})  # see the docstring
    one = _train(synth_root, tmp_path / "one", tmp_path / "cache1")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         __file__, str(synth_root), str(tmp_path / "two"), str(tmp_path / "cache2")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # every rank returns rank 0's summary, so the ranks agree on the selected checkpoint
    summaries = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert summaries[0] == summaries[1] and summaries[0]["world_size"] == 2
    assert one["world_size"] == 1

    log1, log2 = _rows(tmp_path / "one" / "train_log.jsonl"), _rows(tmp_path / "two" / "train_log.jsonl")
    steps1, steps2 = [r for r in log1 if "ce" in r], [r for r in log2 if "ce" in r]
    # rank 0 alone logs: one row per step, not one per rank
    assert [(r["stage"], r["epoch"], r["step"]) for r in steps2] == \
        [(r["stage"], r["epoch"], r["step"]) for r in steps1]
    assert len(steps1) == 9 and {r["stage"] for r in steps1} == {1, 2}
    for a, b in zip(steps1, steps2):
        for k in TERMS:
            assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-6), (a["step"], k)
    assert len([r for r in log2 if "val_bleu4" in r]) == 3

    w1 = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)["model"]
    w2 = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert w1.keys() == w2.keys()
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5, msg=k)
    assert (tmp_path / "two" / SUMMARY_FILE).is_file()


def test_without_torchrun_the_world_is_one_process(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed("cpu")
    assert info == DistInfo(device=torch.device("cpu")) and info.is_main and not info.parallel


def test_a_partial_torchrun_environment_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for var in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UarbenchError, match="RANK"):
        init_distributed("cpu")


if __name__ == "__main__":  # the torchrun worker: data_root out_dir cache_dir
    root, out, cache = map(Path, sys.argv[1:4])
    run._decode_and_score = lambda *a, **k: {}  # see the module docstring
    summary = _train(root, out, cache)
    (out.parent / f"rank{os.environ['RANK']}.json").write_text(json.dumps(summary))
