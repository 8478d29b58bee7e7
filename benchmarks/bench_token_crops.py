"""Training-time random crops with the LSU tokenizer: the two options of issue 13 item 2, timed
per epoch on the same model, data and batches (docs/spec.md §10 records the decision).

* ``encode``: today's path. Each batch is cropped at any pixel offset and the frozen tokenizer
  encodes the crop on the device, inside the step.
* ``grid``: crop offsets restricted to multiples of the tokenizer's downsampling factor (8); the
  token grid of every study at every such offset is encoded once, before training, and a step
  indexes it (no encoder in the step). One-off cost: (offsets per axis)^2 encodes of the split.

A cpu-small UAR (stage 1) on a synth-cxr build, batch 16, a freshly fitted cpu-small tokenizer
(its weights do not change the timing), CPU, one torch thread (a suite's setting). Prints the
seconds per epoch of each, the encoder's share, and the one-off precompute of ``grid``.

Run: .venv/bin/python benchmarks/bench_token_crops.py [--n-train 600] [--epochs 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from uarbench.data.datasets import load_dataset
from uarbench.data.synth import SynthConfig, ensure_synth
from uarbench.models.uar import UARConfig, UARModel
from uarbench.training.config import TrainConfig
from uarbench.training.data import random_crop, split_tensors, to_unit
from uarbench.training.image_tokens import prepare_image_tokenizer, resize_to_crop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, help="default: a temporary folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-crops-"))
    root = ensure_synth(SynthConfig(n_train=args.n_train, n_val=16, n_test=16), cache)
    dataset = load_dataset("synth-cxr", root)
    words = dataset.tokenizer
    cfg = UARConfig.cpu_small(vocab_size=len(words), max_seq_length=words.max_seq_length,
                              n_views=2).replace(vq=UARConfig.cpu_small().vq.replace(steps=20))
    train_cfg = TrainConfig.cpu_small(device="cpu")
    train = split_tensors(dataset, "train", words, cfg.image_size, cache_dir=cache)
    tok = prepare_image_tokenizer(cfg, resize_to_crop(train.images, cfg.crop_size),
                                  dataset.content_hash, cache, seed=0)
    crop, S, step = cfg.crop_size, cfg.image_size, tok.downsample
    offsets = list(range(0, S - crop + 1, step))        # grid-aligned offsets per axis
    t0 = time.perf_counter()
    grids = torch.stack([torch.stack([
        torch.cat([tok.encode(to_unit(train.images[i:i + 64, :, y:y + crop, x:x + crop]))
                   for i in range(0, len(train.ids), 64)]) for x in offsets]) for y in offsets])
    precompute = time.perf_counter() - t0               # grids: (oy, ox, N, V, h, w)

    results = {}
    for mode in ("encode", "grid"):
        torch.manual_seed(0)
        model = UARModel(cfg).train()
        model.set_stage(1)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
        encode_s, per_epoch = 0.0, []
        for epoch in range(args.epochs):
            gen = torch.Generator().manual_seed(epoch)
            order = torch.randperm(len(train.ids), generator=gen)
            t_epoch = time.perf_counter()
            for start in range(0, len(order), train_cfg.batch_size):
                idx = order[start:start + train_cfg.batch_size]
                if mode == "encode":
                    images = to_unit(random_crop(train.images[idx], crop, gen))
                    t = time.perf_counter()
                    ids = tok.encode(images)
                    encode_s += time.perf_counter() - t
                else:
                    off = torch.randint(0, len(offsets), (len(idx), 2), generator=gen)
                    ids = grids[off[:, 0], off[:, 1], idx]
                loss = model({"image_tokens": ids, "ids": train.tokens[idx]})["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            per_epoch.append(time.perf_counter() - t_epoch)
        results[mode] = (min(per_epoch), encode_s / args.epochs)
    enc, grid = results["encode"], results["grid"]
    print(f"synth-cxr {args.n_train} train studies, cpu-small UAR stage 1, batch "
          f"{train_cfg.batch_size}, {args.threads} thread(s), {args.epochs} epochs each")
    print(f"encode per batch : {enc[0]:7.2f} s/epoch (tokenizer inside: {enc[1]:.2f} s/epoch, "
          f"{100 * enc[1] / enc[0]:.1f}%)")
    saving = enc[0] - grid[0]
    pays_back = (f"{precompute / saving:.1f} epochs of the saving" if saving > 0
                 else "no saving measured")
    print(f"grid-aligned     : {grid[0]:7.2f} s/epoch ({enc[0] / grid[0]:.2f}x), plus "
          f"{precompute:.2f} s once for {len(offsets) ** 2} offsets ({pays_back})")


if __name__ == "__main__":
    main()
