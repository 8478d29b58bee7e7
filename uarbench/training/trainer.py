"""The trainer: AdamW with per-group learning rates, step decay, grad-norm clipping, the two
stages of UAR §3.5, validation-only model selection (BLEU-4) and resumable epochs.

Stage 1 trains with the TIR masks absent; stage 2 starts from the best stage-1 checkpoint with a
fresh optimiser and the masks in use (l3 weighs L_Mask). A model without two stages trains one
stage. After every epoch the validation split is decoded and scored; ``last.pt`` holds
everything needed to resume (model, optimiser, schedule, RNG, best so far), so an interrupted
run continues from its last finished epoch and ends with the same result on CPU. The test split
is decoded once, at the end, with the selected checkpoint.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from uarbench.data.tokenizer import WordTokenizer
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_text
from uarbench.metrics.bleu import Bleu
from uarbench.training.checkpoint import load_checkpoint, save_checkpoint
from uarbench.training.config import TrainConfig
from uarbench.training.data import SplitTensors, eval_batches, to_unit, train_batches
from uarbench.training.decoding import DecodeConfig, decode

LOSS_TERMS = ("loss", "ce", "global_", "mask")


class TrainingDiverged(UarbenchError):
    """A loss term became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UarbenchError("device cuda requested but torch sees no GPU.", fix="use --device cpu.")
    return torch.device(name)


@dataclass
class RunFiles:
    root: Path

    @property
    def log(self) -> Path:
        return self.root / "train_log.jsonl"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    def best(self, stage: int | None = None) -> Path:
        return self.root / "checkpoints" / ("best.pt" if stage is None else f"best_stage{stage}.pt")


class Trainer:
    """Trains ``model`` (forward(batch) -> loss terms; encode / decode_step for decoding).

    ``image_input`` maps float views (B, V, 1, S, S) on the device to what the model reads
    (UAR with LSU: frozen tokenizer ids under ``image_tokens``; otherwise ``images``).
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, tokenizer: WordTokenizer,
                 image_input: Callable[[Tensor], dict[str, Tensor]], out_dir: str | Path,
                 progress: dict | None = None) -> None:
        self.model, self.cfg, self.tok, self.image_input = model, cfg, tokenizer, image_input
        self.progress = {"desc": "train", **(progress or {})}
        self.files = RunFiles(Path(out_dir))
        self.device = resolve_device(cfg.device)
        self.model.to(self.device)
        two_stage = getattr(getattr(model, "cfg", None), "two_stage", False) and \
            getattr(model, "tir", None) is not None
        self.stages = (1, 2) if two_stage else (1,)

    # --- optimiser ---
    def _optimiser(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        image_side = {id(p) for p in getattr(self.model, "image_side_parameters", lambda: [])()}
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if id(p) not in image_side], "lr": self.cfg.lr},
                  {"params": [p for p in params if id(p) in image_side], "lr": self.cfg.lr_image}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]],
                                weight_decay=self.cfg.weight_decay)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=self.cfg.lr_decay)

    def _clip(self) -> None:
        # L_Mask's raw sum has a large gradient: clip the masks apart from everything else so it
        # does not shrink the CE gradients through one shared norm
        tir = getattr(self.model, "tir", None)
        masks = {id(p) for p in tir.parameters()} if tir is not None else set()
        rest = [p for p in self.model.parameters() if p.grad is not None and id(p) not in masks]
        nn.utils.clip_grad_norm_(rest, self.cfg.grad_clip)
        if masks:
            nn.utils.clip_grad_norm_([p for p in tir.parameters() if p.grad is not None],
                                     self.cfg.grad_clip)

    # --- one training step ---
    def _step(self, opt, images: Tensor, tokens: Tensor, step: int) -> dict[str, float]:
        self.model.train()
        batch = {**self.image_input(images.to(self.device, non_blocking=True)),
                 "ids": tokens.to(self.device, non_blocking=True)}
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                            enabled=self.device.type == "cuda"):
            out = self.model(batch)
        values = {k: float(out[k].detach()) for k in LOSS_TERMS}
        for name, v in values.items():
            if not math.isfinite(v):
                raise TrainingDiverged(f"loss term {name!r} is {v} at step {step}.",
                                       fix="lower the learning rate or check the inputs.")
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        self._clip()
        opt.step()
        return values

    # --- decoding and selection ---
    @torch.no_grad()
    def predict(self, data: SplitTensors, dcfg: DecodeConfig) -> list[str]:
        self.model.eval()
        texts: list[str] = []
        for _, images in eval_batches(data, self.cfg.eval_batch_size):
            inputs = self.image_input(images.to(self.device))
            x = next(iter(inputs.values()))
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                                enabled=self.device.type == "cuda"):
                seqs = decode(self.model, x, dcfg, bos_id=self.tok.bos_id, eos_id=self.tok.eos_id,
                              pad_id=self.tok.pad_id)
            texts += [self.tok.decode(s) for s in seqs]
        return texts

    @torch.no_grad()
    def image_use(self, data: SplitTensors, seed: int = 0) -> dict[str, float]:
        """Teacher-forced CE with each study's own images vs with the images of another study
        (a fixed permutation). A gap near 0 means the model ignores the image and writes the same
        text whatever it sees, which BLEU does not reveal (a known failure of RRG models)."""
        self.model.eval()
        perm = torch.randperm(len(data.ids), generator=torch.Generator().manual_seed(seed))
        totals = {"matched": 0.0, "shuffled": 0.0}
        for idx, images in eval_batches(data, self.cfg.eval_batch_size):
            tokens = data.tokens[idx].to(self.device)
            for key, imgs in (("matched", images), ("shuffled", to_unit(data.images[perm[idx]]))):
                batch = {**self.image_input(imgs.to(self.device)), "ids": tokens}
                totals[key] += float(self.model(batch)["ce"]) * len(idx)
        ce = {k: v / len(data.ids) for k, v in totals.items()}
        return {"ce": ce["matched"], "ce_shuffled_images": ce["shuffled"],
                "gap": ce["shuffled"] - ce["matched"]}

    def validate(self, val: SplitTensors) -> float:
        preds = self.predict(val, self.cfg.select_decode)
        return Bleu().compute(predictions=preds, references=val.references)["BLEU-4"]

    # --- the run ---
    def fit(self, train: SplitTensors, val: SplitTensors, crop: int) -> dict:
        """Train every stage (resuming from last.pt if present); returns the selection record."""
        state = load_checkpoint(self.files.last) if self.files.last.is_file() else None
        best = state["best"] if state else {"bleu4": -1.0, "stage": None, "epoch": None}
        stage_best = state["stage_best"] if state else {}  # stage -> best validation BLEU-4
        step = state["step"] if state else 0
        self._trim_log(step)
        total = sum(self._epochs(s) for s in self.stages) * math.ceil(len(train.ids) / self.cfg.batch_size)
        bar = tqdm(total=total, initial=0, unit="step", dynamic_ncols=True, disable=None,
                   **self.progress)
        for stage in self.stages:
            if state and stage < state["stage"]:
                continue
            resume_here = state is not None and state["stage"] == stage
            if not resume_here and stage == 2:
                # §3.5: stage 2 starts from the best stage-1 checkpoint, fresh optimiser
                self.model.load_state_dict(load_checkpoint(self.files.best(1))["model"])
            self.model.set_stage(stage)
            opt, sched = self._optimiser()
            first = 0
            if resume_here:
                self.model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                torch.set_rng_state(state["rng"])
                first = state["epochs_done"]
            bar.update(first * math.ceil(len(train.ids) / self.cfg.batch_size))
            for epoch in range(first, self._epochs(stage)):
                gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + stage * 1009 + epoch)
                for _, images, tokens in train_batches(train, self.cfg.batch_size, crop, gen):
                    t0 = time.perf_counter()
                    step += 1
                    values = self._step(opt, images, tokens, step)
                    lrs = [g["lr"] for g in opt.param_groups]
                    self._log({"stage": stage, "epoch": epoch, "step": step, **values,
                               "lr": lrs[0], "lr_image": lrs[-1],
                               "samples_per_s": len(tokens) / (time.perf_counter() - t0)})
                    bar.update(1)
                    bar.set_postfix(stage=stage, ce=f"{values['ce']:.3f}")
                sched.step()
                bleu4 = self.validate(val)
                self._log({"stage": stage, "epoch": epoch, "step": step, "val_bleu4": bleu4})
                if bleu4 > best["bleu4"]:
                    best = {"bleu4": bleu4, "stage": stage, "epoch": epoch}
                    save_checkpoint(self.files.best(), {"model": self.model.state_dict(), "best": best})
                if bleu4 > stage_best.get(str(stage), -1.0):
                    stage_best[str(stage)] = bleu4
                    save_checkpoint(self.files.best(stage), {"model": self.model.state_dict()})
                save_checkpoint(self.files.last, {
                    "model": self.model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
                    "stage": stage, "epochs_done": epoch + 1, "step": step, "best": best,
                    "stage_best": stage_best})
        bar.close()
        self.model.load_state_dict(load_checkpoint(self.files.best())["model"])
        self.model.set_stage(best["stage"])
        return best

    def _epochs(self, stage: int) -> int:
        return self.cfg.epochs_stage1 if stage == 1 else self.cfg.epochs_stage2

    def _log(self, row: dict) -> None:
        self.files.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.files.log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def _trim_log(self, step: int) -> None:
        """Drop log rows written after the checkpoint we resume from (an interrupted epoch)."""
        if not self.files.log.is_file():
            return
        rows = [l for l in self.files.log.read_text().splitlines()
                if l.strip() and json.loads(l)["step"] <= step]
        atomic_write_text(self.files.log, "".join(r + "\n" for r in rows))
