"""Training step time of Base and each UAR ablation row (paper Table 2), printed as ratios to Base.

CPU by default (cpu-small and paper presets); with ``--device cuda`` the step runs under bf16
autocast and the model FLOPs utilisation is reported (FLOPs counted by
torch.utils.flop_counter over one step, against ``--peak-tflops``, default 989 = H100/H200 dense
bf16). Random inputs of the real shapes (batch 16, 60 report positions, two views); the image
tokenizer is not timed (it runs once per batch outside the model, frozen).

Run: .venv/bin/python benchmarks/bench_train.py [--presets cpu-small paper] [--steps 5]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from uarbench.models.uar import UARConfig, UARModel

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


def batch_for(cfg: UARConfig, B: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, cfg.vocab_size, (B, cfg.max_seq_length), generator=g)
    ids[:, 0] = cfg.bos_id
    out = {"ids": ids}
    if cfg.lsu:
        out["image_tokens"] = torch.randint(0, cfg.codebook_size,
                                            (B, cfg.n_views, cfg.token_grid, cfg.token_grid), generator=g)
    else:
        out["images"] = torch.rand(B, cfg.n_views, 1, cfg.crop_size, cfg.crop_size, generator=g)
    return {k: v.to(device) for k, v in out.items()}


def time_steps(cfg: UARConfig, device: torch.device, steps: int, B: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = UARModel(cfg).to(device).train()
    model.set_stage(2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = batch_for(cfg, B, device)

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["cpu-small", "paper"])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    for preset in a.presets:
        make = UARConfig.cpu_small if preset == "cpu-small" else UARConfig.paper
        print(f"\npreset {preset}, device {a.device}, batch {a.batch}, {a.steps} timed steps")
        print(f"{'row':28s} {'s/step':>8s} {'samples/s':>10s} {'vs Base':>8s} {'GFLOP/step':>11s}"
              + (f" {'MFU':>6s}" if device.type == "cuda" else ""))
        base = None
        for row, switches in ROWS.items():
            cfg = make(vocab_size=760, **switches)
            sec, flops = time_steps(cfg, device, a.steps, a.batch)
            base = base or sec
            line = (f"{row:28s} {sec:8.3f} {a.batch / sec:10.1f} {sec / base:7.2f}x "
                    f"{flops / 1e9:11.1f}")
            if device.type == "cuda":
                line += f" {flops / sec / (a.peak_tflops * 1e12):6.1%}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
