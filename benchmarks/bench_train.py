"""Training step of Base and each UAR ablation row (paper Table 2): time, aten ops and host syncs
per step, printed as ratios to Base, for the fused attention path (SDPA) and the explicit
reference.

The step timed is the trainer's own (``Trainer._step``: forward, backward, clipping, fused AdamW;
bf16 autocast on CUDA), on random inputs of the real shapes (batch 16, 60 report positions, two
views); the frozen image tokenizer is not timed (its ids come from a cache). Ops are counted with
a TorchDispatchMode over one step, host syncs with :func:`uarbench.training.syncs.count_host_syncs`
(``item`` / ``tolist`` / ``bool`` ... of a tensor). On CUDA the model FLOPs utilisation is
reported (FLOPs from torch.utils.flop_counter over one step, against ``--peak-tflops``, default
989 = H100/H200 dense bf16).

Run: .venv/bin/python benchmarks/bench_train.py [--presets cpu-small paper] [--steps 3]
     [--rows Base "(f)/UAR stage 2 (+TIR)"] [--attention sdpa explicit] [--device cuda]
(../shared/tools/gpu_check.sh parses its lines: keep the first five columns.)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from uarbench.data.tokenizer import WordTokenizer
from uarbench.models.uar import UARConfig, UARModel
from uarbench.training.config import TrainConfig
from uarbench.training.syncs import count_host_syncs
from uarbench.training.trainer import Trainer

# Table 2 rows as switches over the full model (Base = no LSU, no CRA, no TIR)
ROWS = {
    "Base": dict(lsu=False, cra_integration=False, cra_global_loss=False, tir=False),
    "(a) +LSU": dict(lsu=True, cra_integration=False, cra_global_loss=False, tir=False),
    "(b) +CRA integration": dict(lsu=False, cra_integration=True, cra_global_loss=False, tir=False),
    "(c) +L_Global": dict(lsu=False, cra_integration=False, cra_global_loss=True, tir=False),
    "(d) integration+L_Global": dict(lsu=False, cra_integration=True, cra_global_loss=True, tir=False),
    "(e) LSU+CRA": dict(lsu=True, cra_integration=True, cra_global_loss=True, tir=False),
    "(f)/UAR stage 2 (+TIR)": dict(lsu=True, cra_integration=True, cra_global_loss=True, tir=True),
}
VOCAB = 760


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def batch_for(cfg: UARConfig, B: int, device: torch.device) -> dict:
    """A model batch of the real shapes on ``device`` (``ids`` and ``image_tokens`` or
    ``images``); ../shared/tools/gpu_check.sh's probes import it."""
    images, ids = _inputs(cfg, B)
    key = "image_tokens" if cfg.lsu else "images"
    return {"ids": ids.to(device), key: images.to(device)}


def _inputs(cfg: UARConfig, B: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, cfg.vocab_size, (B, cfg.max_seq_length), generator=g)
    ids[:, 0] = cfg.bos_id
    if cfg.lsu:
        images = torch.randint(0, cfg.codebook_size,
                               (B, cfg.n_views, cfg.token_grid, cfg.token_grid), generator=g)
    else:
        images = torch.rand(B, cfg.n_views, 1, cfg.crop_size, cfg.crop_size, generator=g)
    return images, ids


def measure(cfg: UARConfig, device: torch.device, steps: int, B: int) -> dict:
    torch.manual_seed(0)
    model = UARModel(cfg)
    model.set_stage(2)
    tok = WordTokenizer.build(["a"], threshold=1, max_seq_length=cfg.max_seq_length)
    key = "image_tokens" if cfg.lsu else "images"
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, TrainConfig(device=device.type), tok,
                          image_input=lambda x: {key: x}, out_dir=tmp)
    opt, _ = trainer._optimiser()
    images, ids = _inputs(cfg, B)
    images, ids = images.to(device), ids.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    trainer._step(opt, images, ids)  # warm-up (optimiser state, kernels)
    with count_host_syncs() as syncs, _CountOps() as ops:
        trainer._step(opt, images, ids)
    with FlopCounterMode(display=False) as flops:
        trainer._step(opt, images, ids)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer._step(opt, images, ids)
    sync()
    return {"s": (time.perf_counter() - t0) / steps, "ops": sum(ops.ops.values()),
            "syncs": sum(syncs.values()), "flops": flops.get_total_flops()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["cpu-small", "paper"])
    ap.add_argument("--rows", nargs="+", default=list(ROWS),
                    help="rows to time (names of the first column; Base always runs)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--attention", nargs="+", default=["sdpa"], choices=("sdpa", "explicit"),
                    help="attention paths to time; with both, each row is timed twice and the "
                         "row label names the path (default: sdpa, the models' default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    rows = ["Base"] + [r for r in a.rows if r != "Base"]
    for preset in a.presets:
        make = UARConfig.cpu_small if preset == "cpu-small" else UARConfig.paper
        print(f"\npreset {preset}, device {a.device}, batch {a.batch}, {a.steps} timed steps, "
              f"{torch.get_num_threads()} threads, attention {'/'.join(a.attention)}")
        print(f"{'row':28s} {'s/step':>8s} {'samples/s':>10s} {'vs Base':>8s} {'GFLOP/step':>11s} "
              f"{'ops/step':>9s} {'syncs/step':>10s}" + (f" {'MFU':>6s}" if device.type == "cuda" else ""))
        base: dict[str, float] = {}
        for row in rows:
            for attention in a.attention:
                cfg = make(vocab_size=VOCAB, attention=attention, **ROWS[row])
                m = measure(cfg, device, a.steps, a.batch)
                base.setdefault(attention, m["s"])
                label = row if len(a.attention) == 1 else f"{row} [{attention}]"
                line = (f"{label[:28]:28s} {m['s']:8.3f} {a.batch / m['s']:10.1f} "
                        f"{m['s'] / base[attention]:7.2f}x {m['flops'] / 1e9:11.1f} "
                        f"{m['ops']:9d} {m['syncs']:10d}")
                if device.type == "cuda":
                    line += f" {m['flops'] / m['s'] / (a.peak_tflops * 1e12):6.1%}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
