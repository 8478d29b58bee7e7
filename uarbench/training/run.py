"""Train one registered model (UAR, Base, R2Gen, R2GenCMN) on one dataset and write everything a
run leaves behind: the library call behind ``uarbench train`` and every trained suite run.

A trainable model class carries ``config_class`` (a frozen config with ``paper()`` /
``cpu_small()`` presets) and ``uses_image_tokens(cfg)`` (True for UAR with LSU: the frozen image
tokenizer then feeds it token ids instead of pixels).

``out_dir`` receives ``config.json`` (resolved model + training config, dataset content hash,
tokenizer hashes, provenance), ``train_log.jsonl``, ``checkpoints/`` (``last.pt`` to resume,
``best.pt`` the validation-selected weights, ``model.pt`` the final checkpoint with its config),
``predictions.jsonl`` (test: id, prediction, cleaned reference) with ``metrics.json`` and
``per_report_stats.csv``, the same for validation under ``val/``, and ``summary.json`` last: a run
is complete only when ``summary.json`` exists.
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from uarbench.data.datasets import Dataset
from uarbench.errors import UarbenchError
from uarbench.evaluate import evaluate
from uarbench.io import atomic_write_json, default_cache_dir, remove_temp_files
from uarbench.models import MODELS
from uarbench.models.uar import UARConfig
from uarbench.progress import RunProgress
from uarbench.provenance import provenance
from uarbench.store import CONFIG_FILE, PREDICTIONS_FILE, SUMMARY_FILE, write_predictions
from uarbench.timing import collect, current_times, phase
from uarbench.training.checkpoint import save_checkpoint
from uarbench.training.config import TrainConfig
from uarbench.training.data import SplitTensors, split_tensors
from uarbench.training.distributed import barrier, init_distributed, main_first
from uarbench.training.image_tokens import (prepare_image_tokenizer, resize_to_crop,
                                           with_cached_tokens)
from uarbench.training.shared_stage1 import SharedStage1, stage1_key
from uarbench.training.trainer import Trainer, resolve_device

def train_uar(*, dataset: Dataset, model_cfg: UARConfig, train_cfg: TrainConfig,
              out_dir: str | Path, cache_dir: str | Path | None = None,
              share_stage1: bool = True) -> dict:
    """Train UAR (any ablation row) with both stages where configured; returns the summary."""
    return train_model(model="uar", dataset=dataset, model_cfg=model_cfg, train_cfg=train_cfg,
                       out_dir=out_dir, cache_dir=cache_dir, share_stage1=share_stage1)


def trainable(name: str) -> bool:
    """Whether the registered model ``name`` is trained (not a floor with fit / predict)."""
    return hasattr(MODELS.get(name), "config_class")


def image_tokenizer_for(dataset: Dataset, model_cfg, seed: int,
                        cache_dir: str | Path | None = None, train: SplitTensors | None = None,
                        device: torch.device | str | None = None):
    """The frozen LSU tokenizer of a run: fitted on ``device`` (default: the CPU) on the
    training split's images at crop size, or loaded from the cache when this dataset, config,
    seed and fit device were seen before (the training images are then not read)."""
    def at_crop() -> torch.Tensor:
        views = train if train is not None else split_tensors(
            dataset, "train", dataset.tokenizer, model_cfg.image_size, cache_dir=cache_dir)
        return resize_to_crop(views.images, model_cfg.crop_size)
    return prepare_image_tokenizer(model_cfg, at_crop, dataset.content_hash,
                                   Path(cache_dir or default_cache_dir()), seed, device=device)


def train_model(*, model: str, dataset: Dataset, model_cfg, train_cfg: TrainConfig,
                out_dir: str | Path, cache_dir: str | Path | None = None,
                progress: RunProgress | None = None, scoring: dict | None = None,
                share_stage1: bool = True) -> dict:
    """Train the registered model ``model`` with ``model_cfg`` (its config_class); returns the
    summary also written to ``out_dir/summary.json``. ``progress``: the run's progress display
    (:class:`uarbench.progress.RunProgress`; default: one named after ``out_dir``). ``scoring``: extra
    :func:`uarbench.evaluate.evaluate` arguments (labeler, labeler_kwargs, radgraph_model).
    ``share_stage1``: take stage 1 from an earlier run with the same key, or publish this run's
    (:mod:`uarbench.training.shared_stage1`; the result is the same either way)."""
    model_cls = MODELS.get(model)
    if not isinstance(model_cfg, model_cls.config_class):
        raise UarbenchError(f"model {model!r} takes a {model_cls.config_class.__name__}, got "
                            f"{type(model_cfg).__name__}.", fix="build the config from the "
                            "model's config_class presets.")
    out_dir = Path(out_dir)
    with ExitStack() as stack:
        times = current_times() or stack.enter_context(collect())
        if progress is None:
            progress = stack.enter_context(RunProgress(out_dir.name))
        return _train_model(model_cls, model, dataset, model_cfg, train_cfg, out_dir, cache_dir,
                            progress, scoring, times, share_stage1)


def _train_model(model_cls, model, dataset, model_cfg, train_cfg, out_dir, cache_dir, progress,
                 scoring, times, share_stage1) -> dict:
    t0 = time.perf_counter()
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    words = dataset.tokenizer
    model_cfg = model_cfg.replace(vocab_size=len(words), max_seq_length=words.max_seq_length,
                                  n_views=dataset.spec.views)
    dist = init_distributed(resolve_device(train_cfg.device))  # world 1 without torchrun
    device = dist.device
    with main_first(dist), phase("data"):   # rank 0 fills the image cache; the others map it
        train = split_tensors(dataset, "train", words, model_cfg.image_size, cache_dir=cache_dir)
        val = split_tensors(dataset, "val", words, model_cfg.crop_size, cache_dir=cache_dir)
        test = split_tensors(dataset, "test", words, model_cfg.crop_size, cache_dir=cache_dir)
    if device.type == "cpu":
        # CPU runs are reproducible to the byte (same machine, seed, thread count): ask torch
        # for its deterministic kernels where it has a choice
        torch.use_deterministic_algorithms(True, warn_only=True)
    image_tok, image_tok_hash = None, None
    if model_cls.uses_image_tokens(model_cfg):
        with main_first(dist), phase("tokenizer"):  # rank 0 fits and caches it; others load it
            image_tok = image_tokenizer_for(dataset, model_cfg, train_cfg.seed, cache_dir, train,
                                            device=device)
        image_tok_hash = image_tok.checkpoint_hash
        image_tok.to(device)
        # encoded in the batches evaluation decodes in (the trainer's eval batch size)
        eval_batch = train_cfg.eval_batch_size_on(device.type)
        with main_first(dist), phase("image_tokens"):
            # the frozen tokenizer's ids of the uncropped evaluation views, encoded once per
            # (tokenizer, image cache entry) and shared by every run that has both
            val, test = (with_cached_tokens(d, image_tok, device, eval_batch, cache_dir)
                         for d in (val, test))
    resolved = {"model_name": model, "model": model_cfg.to_dict(), "train": train_cfg.to_dict(),
                "dataset": {"name": dataset.name, "root": str(dataset.root),
                            "sha256": dataset.content_hash},
                "word_tokenizer": words.content_hash(), "image_tokenizer": image_tok_hash}
    with main_first(dist):
        if dist.is_main:  # a killed run's interrupted writes, before this one writes anything
            remove_temp_files(out_dir, out_dir / "checkpoints", out_dir / "val")
        _claim(out_dir, resolved)
    net = model_cls(model_cfg)
    if image_tok is not None:
        # training crops are encoded on the device per batch (docs/spec.md §10); evaluation
        # batches arrive as cached token ids
        def image_input(x):
            return {"image_tokens": image_tok.encode(x) if x.is_floating_point() else x}
    else:
        def image_input(x):
            return {"images": x}
    shared = None
    if share_stage1 and not dist.parallel:
        key = stage1_key(model_cls, model_cfg, train_cfg, dataset_hash=dataset.content_hash,
                         words_hash=words.content_hash(), image_tokenizer_hash=image_tok_hash,
                         device=device)
        shared = SharedStage1(cache_dir or default_cache_dir(), key, model_cls.stage1_unused)
    trainer = Trainer(net, train_cfg, words, image_input, out_dir, progress=progress, dist=dist,
                      shared_stage1=shared)
    best = trainer.fit(train, val, model_cfg.crop_size)
    if not dist.is_main:  # rank 0 decodes, scores and writes; the others return its summary
        barrier(dist)
        return json.loads((out_dir / SUMMARY_FILE).read_text())
    save_checkpoint(out_dir / "checkpoints" / "model.pt",
                    {**net.to_checkpoint(), "model_name": model, "word_tokenizer": words.to_dict(),
                     "image_tokenizer": image_tok_hash, "selected": best})
    metrics = {}
    for split, data, where in (("val", val, out_dir / "val"), ("test", test, out_dir)):
        # the test split is decoded exactly once, here, with the selected checkpoint
        metrics[split] = _decode_and_score(trainer, data, dataset, split, where, train_cfg,
                                           scoring or {})
    with phase("image_use_probe"):
        image_use = trainer.image_use(val)
    summary = {"selected": best, "metrics": metrics, "image_use_val": image_use,
               "shared_stage1": None if shared is None else {"key": shared.key,
                                                             "taken": trainer.stage1_taken},
               "image_tokenizer": image_tok_hash, "wall_s": round(time.perf_counter() - t0, 1),
               "phases_s": times.rounded(),   # where the time went (uarbench.timing)
               "device": str(device), "world_size": dist.world, "provenance": provenance()}
    atomic_write_json(out_dir / SUMMARY_FILE, summary)
    barrier(dist)
    return summary


def _decode_and_score(trainer: Trainer, data: SplitTensors, dataset: Dataset, split: str,
                      where: Path, cfg: TrainConfig, scoring: dict) -> dict[str, float | None]:
    if split == "val" and cfg.select_decode == cfg.decode and trainer.val_predictions is not None:
        preds = trainer.val_predictions  # model selection decoded these already, the same way
    else:
        with phase(f"decode_{split}"):
            preds = trainer.predict(data, cfg.decode)
    path = write_predictions(where / PREDICTIONS_FILE, data.ids, preds, data.references)
    ev = evaluate(predictions=path, dataset=dataset, split=split, out_dir=where, **scoring)
    return {k: v.value for k, v in ev.metrics.items()}


def _claim(out_dir: Path, resolved: dict) -> None:
    """Write config.json, or check that a resumed run has the same configuration."""
    path = out_dir / CONFIG_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        old.pop("provenance", None)
        if old != json.loads(json.dumps(resolved)):
            raise UarbenchError("this folder holds a run with a different configuration.",
                                file=path, fix="choose another --out, or delete the folder.")
        return
    atomic_write_json(path, {**resolved, "provenance": provenance()})
