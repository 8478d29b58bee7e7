"""The trainer: AdamW with per-group learning rates, step decay, grad-norm clipping, the two
stages of UAR §3.5, validation-only model selection (BLEU-4) and resumable epochs.

Stage 1 trains with the TIR masks absent; stage 2 starts from the best stage-1 checkpoint with a
fresh optimiser and the masks in use (l3 weighs L_Mask). A model without two stages trains one
stage. After every epoch the validation split is decoded and scored; ``last.pt`` holds
everything needed to resume (model, optimiser, schedule, RNG, best so far), so an interrupted
run continues from its last finished epoch and ends with the same result on CPU. The test split
is decoded once, at the end, with the selected checkpoint.

Data parallel (``torchrun``, :mod:`uarbench.training.distributed`): every rank draws the same
global batch order and crops, takes rows ``rank::world`` of each batch and runs forward / backward
through DistributedDataParallel, which averages the gradients. Each rank's CE (a mean over its
real target tokens) is weighted by ``rank tokens * world / global tokens`` and L_Global by ``rank
rows * world / batch rows``, so the averaged gradient of CE and L_Mask is the single-process
gradient (up to float rounding) and the logged terms are the global ones. What is not identical to
one process: L_Global's hardest in-batch negatives are drawn within each rank's shard; BatchNorm
(the Base path's ResNet) normalises with per-rank statistics on CPU (SyncBatchNorm on CUDA);
dropout masks come from a per-rank stream reseeded every epoch. Only rank 0 validates, logs,
writes checkpoints and shows the progress bar; the others take its validation BLEU-4 (so every
selection agrees) and read the checkpoints it wrote (stage 2's start, resume, the selected
weights), which needs a folder every rank sees.
"""
from __future__ import annotations

import json
import math
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from uarbench import faults
from uarbench.data.tokenizer import WordTokenizer
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_text
from uarbench.store import TRAIN_LOG
from uarbench.metrics.bleu import Bleu
from uarbench.progress import LOGGER, RunProgress
from uarbench.models.base import TrainableModel
from uarbench.timing import phase
from uarbench.training.checkpoint import load_checkpoint, save_checkpoint
from uarbench.training.config import TrainConfig
from uarbench.training.data import SplitTensors, eval_batches, to_device_unit, train_batches
from uarbench.training.decoding import DecodeConfig, decode
from uarbench.training.distributed import (DistInfo, all_reduce_sum_tensor, barrier,
                                           broadcast_from_main)
from uarbench.training.shared_stage1 import SharedStage1

LOSS_TERMS = ("loss", "ce", "global_", "mask")
SILENT = logging.getLogger("uarbench.silent")  # ranks > 0 report nothing
SILENT.disabled = True


class TrainingDiverged(UarbenchError):
    """A loss term became NaN or infinite."""


class LaggedScalars:
    """Loss terms read one step late, so a training step never waits for the device.

    :meth:`push` takes step n's terms as a device tensor and starts their copy to (pinned) host
    memory without waiting; it returns step n-1's values, whose copy was queued a whole step ago
    and is done by now. :meth:`flush` returns the last pending values (at the end of an epoch,
    before validation and checkpoints, so a NaN is always caught before anything is saved).
    On the CPU the copy is immediate and the lag changes nothing but the order of the calls."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._pending: tuple[dict, Tensor, object] | None = None

    def push(self, meta: dict, values: Tensor) -> tuple[dict, dict[str, float]] | None:
        ready = self.flush()
        if values.device.type == "cuda":
            host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            host.copy_(values, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = values, None
        self._pending = (meta, host, event)
        return ready

    def flush(self) -> tuple[dict, dict[str, float]] | None:
        if self._pending is None:
            return None
        meta, host, event = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()
        return meta, dict(zip(self.names, host.tolist(), strict=True))


def stage_leaves_parameters_unused(model: TrainableModel, stage: int) -> bool:
    """Whether training ``stage`` leaves some of ``model``'s parameters without a gradient: stage
    1 of a two-stage model with parameters named in its ``stage1_unused`` (UAR's TIR masks)."""
    prefixes = tuple(model.stage1_unused)
    return (stage == 1 and len(tuple(model.training_stages())) > 1 and bool(prefixes)
            and any(name.startswith(prefixes) for name, _ in model.named_parameters()))


def check_finite(values: dict[str, float], step: int) -> None:
    for name, v in values.items():
        if not math.isfinite(v):
            raise TrainingDiverged(f"loss term {name!r} is {v} at step {step}.",
                                   fix="lower the learning rate or check the inputs.")


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
        return self.root / TRAIN_LOG

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    def best(self, stage: int | None = None) -> Path:
        return self.root / "checkpoints" / ("best.pt" if stage is None else f"best_stage{stage}.pt")


class Trainer:
    """Trains ``model`` (forward(batch) -> loss terms; encode / decode_step for decoding).

    ``image_input`` maps float views (B, V, 1, S, S) on the device to what the model reads
    (UAR with LSU: frozen tokenizer ids under ``image_tokens``; otherwise ``images``).
    ``dist``: this process's place in a data-parallel run (default: a single process); with
    world > 1 the model's ``loss`` must be ``l1 * ce + l2 * global_ + l3 * mask`` with the
    weights of ``model.cfg`` (1 where it has none). ``self.model`` stays the unwrapped module.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, tokenizer: WordTokenizer,
                 image_input: Callable[[Tensor], dict[str, Tensor]], out_dir: str | Path,
                 progress: RunProgress | None = None, dist: DistInfo | None = None,
                 shared_stage1: SharedStage1 | None = None) -> None:
        self.model, self.cfg, self.tok, self.image_input = model, cfg, tokenizer, image_input
        self.shared_stage1 = shared_stage1  # stage 1 trained once (uarbench.training.shared_stage1)
        self.stage1_taken = False
        self._val_predictions: list[str] | None = None
        self.val_predictions: list[str] | None = None  # of the selected model, after fit()
        self.progress = progress  # None: fit() shows its own (see uarbench.progress)
        self.files = RunFiles(Path(out_dir))
        self.dist = dist or DistInfo()
        self.device = self.dist.device if self.dist.parallel else resolve_device(cfg.device)
        if self.dist.parallel and self.device.type == "cuda":
            # batch statistics over the global batch, as one process computes them
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.model.to(self.device)
        self._ddp: nn.parallel.DistributedDataParallel | None = None
        self._forward: Callable | None = None  # the model call of a step (compiled or not)
        self._loss_form_checked = False
        self._log_buffer: list[str] = []
        self._log_flushed_at = time.monotonic()
        self._last_ce: float | None = None
        self.stages = tuple(model.training_stages())

    # --- optimiser ---
    def _optimiser(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        image_side = {id(p) for p in self.model.image_side_parameters()}
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if id(p) not in image_side], "lr": self.cfg.lr},
                  {"params": [p for p in params if id(p) in image_side], "lr": self._lr_image()}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]],
                                weight_decay=self.cfg.weight_decay,
                                fused=True)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=self.cfg.lr_decay)

    def _lr_image(self) -> float:
        """lr_image_tokens when the image side is a visual-token table (LSU), else lr_image."""
        tokens = type(self.model).uses_image_tokens(self.model.cfg)
        if tokens and self.cfg.lr_image_tokens is not None:
            return self.cfg.lr_image_tokens
        return self.cfg.lr_image

    def _clip(self) -> None:
        # each of the model's clip groups on its own norm (UAR: the TIR masks apart)
        for group in self.model.clip_groups():
            grads = [p for p in group if p.grad is not None]
            if grads:
                nn.utils.clip_grad_norm_(grads, self.cfg.grad_clip)

    # --- one training step (no host sync: the loss terms come back as a device tensor) ---
    def _model_call(self, module: nn.Module) -> Callable:
        """The step's forward: ``module`` itself, or compiled once with ``compile``."""
        if self._forward is None:
            self._forward = torch.compile(module) if self.cfg.compile else module
        return self._forward

    def _step(self, opt, images: Tensor, tokens: Tensor) -> Tensor:
        self.model.train()
        # images arrive on the device (training.data.train_batches); ids are copied here
        batch = {**self.image_input(images.to(self.device, non_blocking=True)),
                 "ids": tokens.to(self.device, non_blocking=True)}
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                            enabled=self.device.type == "cuda"):
            out = self._model_call(self.model)(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        self._clip()
        opt.step()
        return torch.stack([out[k].detach().float() for k in LOSS_TERMS])

    def _parallel_step(self, opt, images: Tensor, tokens: Tensor) -> Tensor:
        """One data-parallel step on this rank's rows of the global batch (see module doc)."""
        self.model.train()
        B, rank, world = len(tokens), self.dist.rank, self.dist.world
        rows = torch.arange(rank, B, world)
        n_rows = len(rows)
        if n_rows == 0:
            # a last batch smaller than the world: run row 0 at weight 0 so this rank still takes
            # part in DDP's gradient all-reduce (L_Mask, which needs no data, keeps its weight)
            rows = torch.zeros(1, dtype=torch.long)
        # counts from the host-side token ids: no device sync
        n_tok = int((tokens[rows, 1:] != self.tok.pad_id).sum()) if n_rows else 0  # CE targets
        n_tok_all = int((tokens[:, 1:] != self.tok.pad_id).sum())
        batch = {**self.image_input(images[rows].to(self.device, non_blocking=True)),
                 "ids": tokens[rows].to(self.device, non_blocking=True)}
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                            enabled=self.device.type == "cuda"):
            out = self._model_call(self._ddp)(batch)
        l1, l2, l3 = (float(w) for w in self.model.loss_weights())  # Eq. 13
        ce, glob, mask = out["ce"].float(), out["global_"].float(), out["mask"].float()
        if not self._loss_form_checked:  # once: it is a property of the model's code
            self._loss_form_checked = True
            if not torch.allclose(out["loss"].detach().float(),
                                  (l1 * ce + l2 * glob + l3 * mask).detach(), rtol=1e-4, atol=1e-5):
                raise UarbenchError(f"{type(self.model).__name__}'s loss is not l1 * ce + l2 * "
                                    "global_ + l3 * mask, which data-parallel training reweighs "
                                    "per rank.", fix="return the loss in that form, or train in "
                                                     "one process.")
        # DDP averages gradients over ranks: these weights make the average the global batch's
        loss = (l1 * ce * (n_tok * world / n_tok_all) + l2 * glob * (n_rows * world / B)
                + l3 * mask)
        sums = all_reduce_sum_tensor(torch.stack([
            ce.detach().double() * n_tok, ce.new_tensor(n_tok, dtype=torch.float64),
            glob.detach().double() * n_rows, ce.new_tensor(n_rows, dtype=torch.float64),
            mask.detach().double()]), self.dist)
        ce_g, glob_g, mask_g = sums[0] / sums[1], sums[2] / sums[3], sums[4] / world
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self._clip()
        opt.step()
        # global values: every rank reads the same, so every rank stops at the same step
        return torch.stack([l1 * ce_g + l2 * glob_g + l3 * mask_g, ce_g, glob_g, mask_g]).float()

    # --- decoding and selection ---
    @torch.no_grad()
    def predict(self, data: SplitTensors, dcfg: DecodeConfig) -> list[str]:
        self.model.eval()
        texts: list[str] = []
        for _, images in eval_batches(data, self.cfg.eval_batch_size_on(self.device.type), self.device):
            inputs = self.image_input(images)
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
        for idx, images in eval_batches(data, self.cfg.eval_batch_size_on(self.device.type), self.device):
            tokens = data.tokens[idx].to(self.device)
            shuffled = to_device_unit(data.images[perm[idx]], self.device)
            for key, imgs in (("matched", images), ("shuffled", shuffled)):
                batch = {**self.image_input(imgs), "ids": tokens}
                totals[key] += float(self.model(batch)["ce"]) * len(idx)
        ce = {k: v / len(data.ids) for k, v in totals.items()}
        return {"ce": ce["matched"], "ce_shuffled_images": ce["shuffled"],
                "gap": ce["shuffled"] - ce["matched"]}

    def validate(self, val: SplitTensors) -> float:
        preds = self.predict(val, self.cfg.select_decode)
        self._val_predictions = preds  # kept with best.pt when this epoch is selected
        return Bleu().compute(predictions=preds, references=val.references)["BLEU-4"]

    # --- the run ---
    def fit(self, train: SplitTensors, val: SplitTensors, crop: int) -> dict:
        """Train every stage (resuming from last.pt if present); returns the selection record.
        Progress goes to the run's display, or to one of its own (ranks > 0: a silent one)."""
        with ExitStack() as stack:
            bar = self.progress
            if bar is None or not self.dist.is_main:
                bar = stack.enter_context(RunProgress(
                    "train", log=LOGGER if self.dist.is_main else SILENT,
                    bars=None if self.dist.is_main else False))
            return self._fit(train, val, crop, bar)

    def _fit(self, train: SplitTensors, val: SplitTensors, crop: int, bar: RunProgress) -> dict:
        state = load_checkpoint(self.files.last) if self.files.last.is_file() else None
        best = state["best"] if state else {"bleu4": -1.0, "stage": None, "epoch": None}
        stage_best = state["stage_best"] if state else {}  # stage -> best validation BLEU-4
        step = state["step"] if state else 0
        if self.dist.is_main:
            self._trim_log(step)
        step_fn = self._parallel_step if self.dist.parallel else self._step
        total = sum(self._epochs(s) for s in self.stages) * math.ceil(
            len(train.ids) / self.cfg.batch_size)
        taken = self._take_stage1() if state is None else None
        if taken is not None:
            best, stage_best, step = taken["best"], taken["stage_best"], taken["step"]
        bar.training(total, done=step)
        for stage in self.stages:
            if (state and stage < state["stage"]) or (taken is not None and stage == 1):
                continue
            resume_here = state is not None and state["stage"] == stage
            if not resume_here and stage == 2:
                # §3.5: stage 2 starts from the best stage-1 checkpoint, fresh optimiser
                self.model.load_state_dict(load_checkpoint(self.files.best(1))["model"])
            self.model.set_stage(stage)
            if self.dist.parallel:
                self._wrap_ddp(stage)
            opt, sched = self._optimiser()
            first = 0
            if resume_here:
                self.model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                torch.set_rng_state(state["rng"])
                first = state["epochs_done"]
            for epoch in range(first, self._epochs(stage)):
                gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + stage * 1009 + epoch)
                if self.dist.parallel:  # dropout: a stream of its own per rank and epoch
                    torch.manual_seed((self.cfg.seed * 1_000_003 + stage * 1009 + epoch) * 65_537
                                      + self.dist.rank)
                lagged = LaggedScalars(LOSS_TERMS)
                t_prev = time.perf_counter()
                for _, images, tokens in train_batches(train, self.cfg.batch_size, crop, gen,
                                                       self.device):
                    step += 1
                    with phase("train_steps"):
                        terms = step_fn(opt, images, tokens)
                    t_now = time.perf_counter()
                    lrs = [g["lr"] for g in opt.param_groups]
                    meta = {"stage": stage, "epoch": epoch, "step": step, "lr": lrs[0],
                            "lr_image": lrs[-1], "samples_per_s": len(tokens) / (t_now - t_prev)}
                    t_prev = t_now
                    self._record(lagged.push(meta, terms), bar)
                    faults.checkpoint("mid_epoch")  # kill tests (uarbench/faults.py)
                self._record(lagged.flush(), bar)
                sched.step()
                # rank 0 validates; every rank takes its BLEU-4, so every selection agrees
                with phase("validation"):
                    bleu4 = broadcast_from_main(self.validate(val) if self.dist.is_main
                                                else 0.0, self.dist)
                self._log({"stage": stage, "epoch": epoch, "step": step, "val_bleu4": bleu4})
                bar.epoch(stage, epoch, self._epochs(stage), bleu4, self._last_ce)
                self._flush_log()  # the epoch's rows are on disk before last.pt says it is done
                main = self.dist.is_main
                if bleu4 > best["bleu4"]:
                    best = {"bleu4": bleu4, "stage": stage, "epoch": epoch}
                    if main:
                        save_checkpoint(self.files.best(), {
                            "model": self.model.state_dict(), "best": best,
                            "val_predictions": self._val_predictions})
                if bleu4 > stage_best.get(str(stage), -1.0):
                    stage_best[str(stage)] = bleu4
                    if main:
                        save_checkpoint(self.files.best(stage), {"model": self.model.state_dict()})
                if main:
                    save_checkpoint(self.files.last, {
                        "model": self.model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
                        "stage": stage, "epochs_done": epoch + 1, "step": step, "best": best,
                        "stage_best": stage_best})
                barrier(self.dist)  # rank 0's checkpoints are on disk before anyone reads them
            if stage == 1 and self.shared_stage1 is not None and self.dist.is_main:
                self.shared_stage1.publish(
                    best_stage1=self.files.best(1), log_rows=self._log_rows(), best=best,
                    stage_best=dict(stage_best), step=step,
                    val_predictions=load_checkpoint(self.files.best()).get("val_predictions"))
        selected = load_checkpoint(self.files.best())
        self.model.load_state_dict(selected["model"])
        # the selected epoch's validation decoding (select_decode), reused when the final
        # validation decodes the same way
        self.val_predictions = selected.get("val_predictions")
        self.model.set_stage(best["stage"])
        return best

    def _wrap_ddp(self, stage: int) -> None:
        """DDP for this stage; ``find_unused_parameters`` only where the stage leaves parameters
        unused (:func:`stage_leaves_parameters_unused`), since it costs a graph walk per step."""
        unused = stage_leaves_parameters_unused(self.model, stage)
        self._ddp = nn.parallel.DistributedDataParallel(
            self.model, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None,
            find_unused_parameters=unused)
        self._forward = None  # compile (if asked) the new wrapper

    def _record(self, ready: tuple[dict, dict[str, float]] | None, bar: RunProgress) -> None:
        """Check and log one step's lagged loss terms, and advance the progress by one step."""
        if ready is None:
            return
        meta, values = ready
        check_finite(values, meta["step"])
        row = {**meta, **values}
        self._log({k: row[k] for k in ("stage", "epoch", "step", *LOSS_TERMS, "lr", "lr_image",
                                       "samples_per_s")})
        self._last_ce = values["ce"]
        bar.step(1, stage=meta["stage"], epoch=meta["epoch"] + 1, ce=f"{values['ce']:.3f}")

    def _take_stage1(self) -> dict | None:
        """Stage 1 as published by an earlier run with the same key: its files are written here
        as this run's own stage 1 would have written them, and the RNG continues from its end."""
        if self.shared_stage1 is None or not self._epochs(1):
            return None
        taken = self.shared_stage1.take(self.model)
        if taken is None:
            return None
        if self.dist.is_main:
            self._trim_log(0)
            for row in json.loads(taken["log"]):
                self._log(row)
            self._flush_log()
            save_checkpoint(self.files.best(), {"model": taken["model"], "best": taken["best"],
                                                "val_predictions": taken["val_predictions"]})
            save_checkpoint(self.files.best(1), {"model": taken["model"]})
        self.model.load_state_dict(taken["model"])
        torch.set_rng_state(taken["rng"])
        self.stage1_taken = True
        return taken

    def _log_rows(self) -> list[dict]:
        return [json.loads(line) for line in self.files.log.read_text().splitlines() if line]

    def _epochs(self, stage: int) -> int:
        return self.cfg.epochs_stage1 if stage == 1 else self.cfg.epochs_stage2

    LOG_FLUSH_ROWS, LOG_FLUSH_S = 200, 10.0

    def _log(self, row: dict) -> None:
        """Buffer one log row; the buffer is appended to the file every 200 rows or 10 s, and at
        each epoch's end before the checkpoint (one file write per many steps, not per step)."""
        if not self.dist.is_main:  # rank 0 logs the global values for every rank
            return
        self._log_buffer.append(json.dumps(row) + "\n")
        if (len(self._log_buffer) >= self.LOG_FLUSH_ROWS
                or time.monotonic() - self._log_flushed_at >= self.LOG_FLUSH_S):
            self._flush_log()

    def _flush_log(self) -> None:
        self._log_flushed_at = time.monotonic()
        if not self._log_buffer:
            return
        self.files.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.files.log, "a", encoding="utf-8") as fh:
            fh.write("".join(self._log_buffer))
        self._log_buffer.clear()

    def _trim_log(self, step: int) -> None:
        """Drop log rows written after the checkpoint we resume from (an interrupted epoch)."""
        if not self.files.log.is_file():
            return
        rows = [l for l in self.files.log.read_text().splitlines()
                if l.strip() and json.loads(l)["step"] <= step]
        atomic_write_text(self.files.log, "".join(r + "\n" for r in rows))
