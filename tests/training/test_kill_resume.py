"""Resume under SIGKILL: a `uarbench train` of UAR (3 stage-1 and 2 stage-2 epochs) is killed at
an exact point by :mod:`uarbench.faults` (mid-epoch in either stage, inside a checkpoint write,
during scoring), leaves nothing that looks complete, and its rerun in the same folder ends with
the predictions, metrics, per-report statistics and training log of an uninterrupted run."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from uarbench.cli import main

N_TRAIN, BATCH, E1, E2 = 64, 8, 3, 2
STEPS = N_TRAIN // BATCH  # optimiser steps per epoch
TRAIN = [f"epochs_stage1={E1}", f"epochs_stage2={E2}", f"batch_size={BATCH}", "eval_batch_size=8"]
MODEL = ["d_model=32", "n_heads=2", "cra_heads=2", "d_ff=64", "n_layers=1", "basis_size=64",
         "codebook_size=32", "image_size=40", "crop_size=32"]  # crop 32: a ~10 s VQ-VAE fit


def _env(cache: Path, fault: str | None = None) -> dict:
    """The test session's environment with its own cache, ``UARBENCH_FAULT``, and without java on
    PATH: METEOR (a JVM start, ~5 s per scored split) is then "n/a" in every run, which changes
    nothing here."""
    env = {k: v for k, v in os.environ.items() if k != "UARBENCH_FAULT"}
    env["UARBENCH_CACHE"] = str(cache)
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                  if d and not os.path.exists(os.path.join(d, "java")))
    return {**env, "UARBENCH_FAULT": fault} if fault else env


def _train(data: Path, out: Path, cache: Path, fault: str | None = None
           ) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "uarbench", "train", "--model", "uar", "--data-root", str(data),
           "--device", "cpu", "--out", str(out)]
    cmd += [a for t in TRAIN for a in ("--train-set", t)] + [a for m in MODEL for a in ("--set", m)]
    return subprocess.run(cmd, env=_env(cache, fault), capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kill") / "synth"
    assert main(["data", "synth", "--out", str(root), "--n-train", str(N_TRAIN), "--n-val", "8",
                 "--n-test", "8", "--size", "64"]) == 0
    return root


@pytest.fixture(scope="module")
def reference(data) -> Path:
    """The uninterrupted run (it also fits and caches the image tokenizer the others load)."""
    out = data.parent / "reference"
    r = _train(data, out, data.parent / "cache")
    assert r.returncode == 0, r.stderr[-3000:]
    log = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "val_bleu4" in r] == [STEPS * (i + 1) for i in range(E1 + E2)]
    # the test predictions come from stage 2 weights: a resume that changed stage 2 shows there
    assert json.loads((out / "summary.json").read_text())["selected"]["stage"] == 2
    return out


@pytest.fixture
def cache(data, reference, tmp_path) -> Path:
    """The reference's cache (its image tokenizer) without a published stage 1
    (uarbench.training.shared_stage1), so that every killed run trains both stages itself."""
    return Path(shutil.copytree(data.parent / "cache", tmp_path / "cache",
                                ignore=shutil.ignore_patterns("stage1")))


def _strip(log: Path) -> list[dict]:
    rows = [json.loads(l) for l in log.read_text().splitlines()]
    for r in rows:
        r.pop("samples_per_s", None)
    return rows


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


def _values(metrics: Path) -> dict:
    return {k: v["value"] for k, v in json.loads(metrics.read_text())["metrics"].items()}


# id: (point, N): killed at the N-th arrival at the point (uarbench/faults.py). Checkpoint
# writes of an epoch: best.pt and best_stage<s>.pt when validation improves, then last.pt; the
# reference improves at stage 2 epoch 0, so best.pt is then ahead of last.pt.
KILLS = {
    "mid_epoch_stage1": ("mid_epoch", STEPS + 3),                        # stage 1, epoch 1
    "mid_epoch_stage2": ("mid_epoch", (E1 + 1) * STEPS + 5),             # stage 2, epoch 1
    "checkpoint_write_stage1": ("checkpoint_write:last.pt", E1),         # end of stage 1
    "checkpoint_write_stage2": ("checkpoint_write:best_stage2.pt", 1),   # stage 2, epoch 0
    "scoring": ("scoring", 2),                                           # test (val is first)
}


@pytest.mark.slow
@pytest.mark.parametrize("where", list(KILLS))
def test_sigkill_then_rerun_equals_the_uninterrupted_run(where, data, reference, cache, tmp_path):
    point, nth = KILLS[where]
    out = tmp_path / "run"
    killed = _train(data, out, cache, f"{point}:{nth}")
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-3000:])
    # nothing that looks complete: no summary.json (the run's marker), no test metrics.json
    assert not (out / "summary.json").exists() and not (out / "metrics.json").exists()
    log = _strip(out / "train_log.jsonl")
    if point == "mid_epoch":  # rows are written in batches: a prefix of the steps done, no gap
        steps = [r["step"] for r in log if "val_bleu4" not in r]
        assert steps == list(range(1, len(steps) + 1)) and steps[-1] <= nth
    elif point.startswith("checkpoint_write:"):  # its temporary file written, not renamed
        assert list((out / "checkpoints").glob(f".{point.split(':')[1]}.*.tmp")), _files(out)
        assert "val_bleu4" in log[-1] and log[-1]["step"] % STEPS == 0
    else:  # validation scored, test predictions written, their metrics not
        assert (out / "val" / "metrics.json").is_file() and (out / "predictions.jsonl").is_file()

    resumed = _train(data, out, cache)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _files(out) == _files(reference)  # no temporary file of an interrupted write is left
    for split in ("", "val"):
        a, b = reference / split, out / split
        for name in ("predictions.jsonl", "per_report_stats.csv"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), (split, name)
        assert _values(a / "metrics.json") == _values(b / "metrics.json"), split
    assert _strip(reference / "train_log.jsonl") == _strip(out / "train_log.jsonl")
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (reference, out))
    assert (sa["selected"], sa["metrics"]) == (sb["selected"], sb["metrics"])
