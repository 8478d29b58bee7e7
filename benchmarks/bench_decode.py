"""Decoding speed: incremental decoding (cached K, V of the prefix and of the memory) against the
reference path that recomputes the whole prefix at every step (``incremental=False``), both in
the same process on the same model and inputs; prints the time of each, the ratio, and whether
the decoded ids are identical.

A cpu-small UAR in stage 2 (LSU + CRA + TIR), 60 report positions as synth-cxr / IU-Xray, random
visual tokens; the eos logit is lowered so every hypothesis runs to max_len (the worst case,
and the same work for both paths). CPU, one torch thread.

Run: .venv/bin/python benchmarks/bench_decode.py [--studies 64] [--beam 3]
"""
from __future__ import annotations

import argparse
import time

import torch

from uarbench.models.uar import UARConfig, UARModel
from uarbench.training.decoding import beam_search, greedy_search


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=64)
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = UARConfig.cpu_small(vocab_size=120, max_seq_length=60)
    model = UARModel(cfg).eval()
    model.set_stage(2)
    with torch.no_grad():
        model.head.bias[cfg.eos_id] = -30.0  # no hypothesis ends early: every step is decoded
    tokens = torch.randint(0, cfg.codebook_size, (args.studies, cfg.n_views, cfg.token_grid,
                                                  cfg.token_grid))
    ids = dict(max_len=cfg.max_seq_length - 1, bos_id=cfg.bos_id, eos_id=cfg.eos_id,
               pad_id=cfg.pad_id)
    with torch.no_grad():
        memory = model.encode(tokens)
    searches = {"greedy": lambda inc: greedy_search(model, memory, block_ngram=3, incremental=inc, **ids),
                f"beam {args.beam}": lambda inc: beam_search(model, memory, beam_size=args.beam,
                                                             block_ngram=3, incremental=inc, **ids)}
    print(f"{args.studies} studies, {cfg.max_seq_length - 1} steps, cpu-small UAR stage 2, "
          f"{args.threads} thread(s)")
    for name, run in searches.items():
        times, outs = {}, {}
        for inc in (False, True):
            t0 = time.perf_counter()
            outs[inc] = run(inc)
            times[inc] = time.perf_counter() - t0
        print(f"{name:8s} recompute {times[False]:6.2f} s | incremental {times[True]:6.2f} s | "
              f"{times[False] / times[True]:5.1f}x | identical ids: {outs[False] == outs[True]}")


if __name__ == "__main__":
    main()
