#!/usr/bin/env bash
# uarbench GPU readiness check: one prepared run on a fresh NVIDIA H200 device machine.
#
# This copy is kept in the tree and follows the code (issue 13 item 9); it started as
# ../shared/tools/gpu_check.sh. `GC_DEVICE=cpu GC_QUICK=1 ...` (below) must pass on CPU after
# any change to the APIs it probes (Trainer._step, the tokenizers, bench_train.py's columns).
#
# With the `device` tool (when lent): copy this file into the project root (untracked, not
# ignored, so it travels with the working tree) and run `bash gpu_check.sh` with a timeout of
# about 540 s; read $OUT/summary.txt first, then give the machine back.
# Run from the project root (the script may live anywhere in the tree):
#   device:   bash gpu_check.sh                      # writes to $OUT (the device tool's folder)
#   CPU test: GC_DEVICE=cpu GC_QUICK=1 PY=.venv/bin/python OUT=/tmp/gc_out bash gpu_check.sh
#
# Setup, and why not scripts/setup.sh: the device machine reaches no package registry, and
# setup.sh runs `pip install torch==2.13.0` (on our machines that resolves to the local CPU-only torch wheel,
# which sees no GPU; offline it fails outright; `UARBENCH_TORCH=keep` skips it), and the device
# image ships a CUDA torch 2.11 in python3 (pyproject asks torch>=2.4). So this script uses the image's python3 and
# installs the checkout with `pip install --no-deps --no-build-isolation -e .` (offline, keeps the
# CUDA torch); if that fails it falls back to PYTHONPATH=<root> with `python -m uarbench`.
# On a user's GPU box WITH network the right lines are: a CUDA torch first (PyPI's default
# Linux x86_64 torch==2.13.0 wheel is a CUDA build; or the PyTorch CUDA wheel index), then
# `pip install -e .`; scripts/setup.sh does exactly that there unless a +cpu wheel is on find-links.
#
# Every step has its own time limit and is reported separately in summary.txt; a failed step
# never stops the script. The whole run keeps to GC_BUDGET_S (default 450 s < 8 min): steps
# are ordered by value and the last ones are shortened or skipped when time runs out.
# Files in $OUT (at most 8): summary.txt env.txt bench_train.txt train.txt probes.txt
# compile.txt run.tgz
set -u
ROOT=$(pwd)
[ -f "$ROOT/pyproject.toml" ] && [ -d "$ROOT/uarbench" ] || { echo "run from the uarbench root"; exit 2; }
OUT=${OUT:-$ROOT/gc_out}
mkdir -p "$OUT"
PY=${PY:-python3}
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; *) PY=$(command -v "$PY") ;; esac
export GC_DEVICE=${GC_DEVICE:-cuda} GC_QUICK=${GC_QUICK:-0}
BUDGET=${GC_BUDGET_S:-450}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg TQDM_DISABLE=1
export UARBENCH_CACHE=${UARBENCH_CACHE:-/tmp/uarbench_gc_cache}
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}  # the probes and benchmarks/ import uarbench
WORK=$(mktemp -d /tmp/gc.XXXXXX)
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME LIMIT_S FILE CMD...: run CMD with a time limit, output appended to $OUT/FILE
step() {
  local name=$1 limit=$2 file=$3; shift 3
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 15 ]; then note "SKIP  $name (budget spent at ${SECONDS}s)"; return 99; fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$SECONDS rc
  echo "===== $name (limit ${limit}s, started at ${SECONDS}s)" >> "$OUT/$file"
  # bash -c: a step may be a shell function (exported) or a plain command
  timeout -k 5 "$limit" bash -c '"$@"' "$name" "$@" >> "$OUT/$file" 2>&1
  rc=$?
  local verdict=OK; [ $rc -ne 0 ] && verdict=FAIL; [ $rc -eq 124 ] || [ $rc -eq 137 ] && verdict=TIMEOUT
  note "$(printf '%-7s %-26s rc=%-3s %4ss  -> %s' "$verdict" "$name" "$rc" "$((SECONDS - t0))" "$file")"
  return $rc
}

if [ "$GC_QUICK" = 1 ]; then PRESET=cpu-small; else PRESET=paper; fi
export ROOT OUT PY WORK PRESET
note "uarbench gpu_check: device=$GC_DEVICE quick=$GC_QUICK preset=$PRESET budget=${BUDGET}s $(date -u +%FT%TZ)"
note "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l)"

# ---- 0. environment and install ----------------------------------------------------------
cat > "$WORK/probes.py" <<'PROBES_EOF'
"""uarbench GPU-readiness probes (written by gpu_check.sh). One subcommand per probe; each prints
plain lines and never needs the network. DEV = cuda (default) or cpu (a syntax run with tiny sizes)."""
from __future__ import annotations

import copy
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

DEV = torch.device(os.environ.get("GC_DEVICE", "cuda"))
QUICK = os.environ.get("GC_QUICK", "0") == "1"      # CPU syntax run: tiny sizes, few steps
CUDA = DEV.type == "cuda"
PEAKS = (989.0, 790.0)                               # dense bf16 spec / measured usable (TFLOP/s)
sys.path.insert(0, str(Path.cwd() / "benchmarks"))

from uarbench.models.uar import UARConfig, UARModel  # noqa: E402
from bench_train import ROWS, batch_for  # noqa: E402

UAR, LSU, BASE = "(f)/UAR stage 2 (+TIR)", "(a) +LSU", "Base"


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def cfg_for(row: str, **kw) -> UARConfig:
    make = UARConfig.cpu_small if QUICK else UARConfig.paper
    return make(vocab_size=760, **{**ROWS[row], **kw})


def autocast():
    return torch.autocast(device_type=DEV.type, dtype=torch.bfloat16, enabled=CUDA)


def flops_of(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as c:
        fn()
    return c.get_total_flops()


def timed(fn, steps: int, warm: int = 2) -> float:
    for _ in range(warm):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - t0) / steps


def mfu(fl: float, sec: float) -> str:
    return " ".join(f"MFU@{p:.0f}={fl / sec / (p * 1e12):6.2%}" for p in PEAKS)


# --------------------------------------------------------------------------------------------
def p_env() -> None:
    import platform
    print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
          "| cudnn", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
    print("cuda available:", torch.cuda.is_available(), "| cpus:", os.cpu_count(),
          "| torch threads:", torch.get_num_threads())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print("gpu:", p.name, f"{p.total_memory / 2**30:.0f} GiB", "cc", f"{p.major}.{p.minor}",
              "SMs", p.multi_processor_count, "| bf16:", torch.cuda.is_bf16_supported())
    print("tf32 matmul:", torch.backends.cuda.matmul.allow_tf32, "| tf32 cudnn:",
          torch.backends.cudnn.allow_tf32, "| fp32 matmul precision:", torch.get_float32_matmul_precision(),
          "| cudnn.benchmark:", torch.backends.cudnn.benchmark)
    for name in ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "cudnn_sdp_enabled", "math_sdp_enabled"):
        f = getattr(torch.backends.cuda, name, None)
        print(f"  {name}: {f() if f else 'n/a'}")
    from importlib import metadata
    for pkg in ("numpy", "pandas", "scipy", "tabulate", "pillow", "matplotlib", "tqdm", "pycocoevalcap", "ray"):
        try:
            print(f"  {pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            print(f"  {pkg} MISSING")


# --------------------------------------------------------------------------------------------
def p_correct() -> None:
    """fp32 CPU vs fp32 device, and bf16 autocast vs fp32 on the device; dtypes on the TIR path."""
    from uarbench.models import layers
    seen = []
    orig = layers.MultiHeadAttention.attention_logits

    def spy(self, q, k, logit_bias=None):
        out = orig(self, q, k, logit_bias)
        seen.append((str(q.dtype), None if logit_bias is None else str(logit_bias.dtype), str(out.dtype)))
        return out

    layers.MultiHeadAttention.attention_logits = spy
    for preset in (["cpu-small"] if QUICK else ["cpu-small", "paper"]):
        make = UARConfig.cpu_small if preset == "cpu-small" else UARConfig.paper
        cfg = make(vocab_size=760)
        torch.manual_seed(0)
        m_cpu = UARModel(cfg).eval()
        m_cpu.set_stage(2)
        with torch.no_grad():  # a trained-looking TIR mask: k*sigmoid(M) spread over 0..1000
            for mk in m_cpu.tir.masks:
                mk.M.normal_(0, 3)
        m_dev = copy.deepcopy(m_cpu).to(DEV)
        b_cpu = batch_for(cfg, 16 if not QUICK else 4, torch.device("cpu"))
        b_dev = {k: v.to(DEV) for k, v in b_cpu.items()}
        with torch.no_grad():
            ref = {k: float(v) for k, v in m_cpu(b_cpu).items() if k != "logits"}
            dev32 = {k: float(v) for k, v in m_dev(b_dev).items() if k != "logits"}
            seen.clear()
            with autocast():
                o16 = m_dev(b_dev)
            dev16 = {k: float(v) for k, v in o16.items() if k != "logits"}
        rel = lambda a, b: abs(a - b) / max(abs(b), 1e-12)
        print(f"[{preset}] fp32 cpu {ref}")
        print(f"[{preset}] fp32 {DEV.type} rel.diff: " + ", ".join(f"{k} {rel(dev32[k], ref[k]):.2e}" for k in ref))
        print(f"[{preset}] bf16 {DEV.type} rel.diff: " + ", ".join(f"{k} {rel(dev16[k], ref[k]):.2e}" for k in ref)
              + f" | logits dtype {o16['logits'].dtype} | finite {all(math.isfinite(v) for v in dev16.values())}")
        print(f"[{preset}] attention_logits dtypes under autocast (q, bias, out), distinct: {sorted(set(map(str, seen)))}")
        # gradients of the TIR masks and the image table, bf16 vs fp32
        m_dev.train()
        grads = {}
        for tag, ctx in (("fp32", torch.autocast(DEV.type, enabled=False)), ("bf16", autocast())):
            m_dev.zero_grad(set_to_none=True)
            torch.manual_seed(1)
            with ctx:
                m_dev(b_dev)["loss"].backward()
            grads[tag] = {n: p.grad.detach().float().flatten().clone() for n, p in m_dev.named_parameters()
                          if p.grad is not None and (n.startswith("tir") or n.startswith("lsu.image.tokens"))}
        for n in grads["fp32"]:
            a, b = grads["fp32"][n], grads["bf16"][n]
            cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
            print(f"[{preset}] grad {n}: cos(bf16, fp32) {cos:.5f} | finite {bool(torch.isfinite(b).all())}")
    layers.MultiHeadAttention.attention_logits = orig


# --------------------------------------------------------------------------------------------
def _trainer_step(model, B: int, tokenizer=None):
    """The real Trainer._step (no host sync: loss terms come back as a device tensor; two grad
    clips, per-step image_input)."""
    from uarbench.training.config import TrainConfig
    from uarbench.training.trainer import Trainer
    cfg = model.cfg
    image_input = ((lambda x: {"image_tokens": tokenizer.encode(x)}) if tokenizer is not None
                   else (lambda x: {("image_tokens" if cfg.lsu else "images"): x}))
    tr = Trainer(model, TrainConfig.paper(device=DEV.type), None, image_input, tempfile.mkdtemp())
    opt, _ = tr._optimiser()
    b = batch_for(cfg, B, torch.device("cpu"))
    if tokenizer is not None:
        imgs = torch.rand(B, cfg.n_views, 1, cfg.crop_size, cfg.crop_size)
    else:
        imgs = b["image_tokens"] if cfg.lsu else b["images"]
    return lambda: tr._step(opt, imgs, b["ids"])


def _plain_step(model, B: int, fused: bool = False):
    """bench_train.py's step: forward under autocast, backward, AdamW (no syncs, no clipping)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if fused else {}))
    batch = batch_for(model.cfg, B, DEV)

    def step():
        with autocast():
            loss = model(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step, batch


def p_sweep() -> None:
    steps = 2 if QUICK else 20
    batches = [2, 4] if QUICK else [16, 64, 256]
    for row in (UAR, LSU, BASE):
        for B in batches:
            torch.manual_seed(0)
            model = UARModel(cfg_for(row)).to(DEV).train()
            model.set_stage(2)
            step, batch = _plain_step(model, B)
            step()
            fl = flops_of(step)
            sec = timed(step, steps)
            print(f"{row:26s} B={B:4d} eager        {sec * 1e3:8.2f} ms/step {B / sec:8.0f} samples/s "
                  f"{fl / 1e9:8.1f} GFLOP/step {fl / sec / 1e12:7.1f} TFLOP/s {mfu(fl, sec)}", flush=True)
            del model, step, batch
            if CUDA:
                torch.cuda.empty_cache()
    B = batches[0]
    from uarbench.models.tokenizers import LearnedVQTokenizer
    for label, kw in (("trainer._step", {}), ("trainer._step+VQ", {"tok": True}),
                      ("eager fused AdamW", {"fused": True})):
        torch.manual_seed(0)
        cfg = cfg_for(UAR)
        model = UARModel(cfg).to(DEV).train()
        model.set_stage(2)
        if label.startswith("trainer"):
            tok = LearnedVQTokenizer(cfg.codebook_size, cfg.vq).to(DEV) if kw.get("tok") else None
            step = _trainer_step(model, B, tokenizer=tok)
        else:
            step, _ = _plain_step(model, B, fused=True)
        step()
        sec = timed(step, steps)
        print(f"{UAR:26s} B={B:4d} {label:18s} {sec * 1e3:8.2f} ms/step {B / sec:8.0f} samples/s", flush=True)


# --------------------------------------------------------------------------------------------
def p_profile() -> None:
    from torch.profiler import ProfilerActivity, profile
    B = 4 if QUICK else 16
    torch.manual_seed(0)
    model = UARModel(cfg_for(UAR)).to(DEV).train()
    model.set_stage(2)
    step = _trainer_step(model, B)
    for _ in range(3):
        step()
    sync()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if CUDA else [])
    n = 5
    t0 = time.perf_counter()
    with profile(activities=acts) as prof:
        for _ in range(n):
            step()
        sync()
    wall = (time.perf_counter() - t0) / n
    ev = prof.key_averages()
    key = "self_device_time_total" if hasattr(ev[0], "self_device_time_total") else "self_cuda_time_total"
    if CUDA:
        kernels = [e for e in prof.events() if str(getattr(e, "device_type", "")).endswith("CUDA")]
        busy = sum(getattr(e, key, 0) for e in ev) / 1e3 / n  # ms
        print(f"per step: wall {wall * 1e3:.2f} ms (profiled), GPU kernel time {busy:.2f} ms, "
              f"GPU busy {busy / (wall * 1e3):.1%}, device events/step {len(kernels) / n:.0f}")
        syncs = sum(e.count for e in ev if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize",
                                                      "aten::_local_scalar_dense", "aten::item"))
        print(f"sync-ish calls/step (item/_local_scalar_dense/stream sync): {syncs / n:.0f}")
        print(ev.table(sort_by=key.replace("_total", "_total"), row_limit=25))
    else:
        print(f"per step: wall {wall * 1e3:.2f} ms (cpu profile)")
        print(ev.table(sort_by="self_cpu_time_total", row_limit=10))


# --------------------------------------------------------------------------------------------
def p_vqfit() -> None:
    """Fit the paper-preset LSU tokenizer on the device (what run.py now does on the run's device), time a
    few CPU steps for comparison, and cache it under the key `uarbench train` looks up, so the
    end-to-end run that follows does not spend minutes fitting it on the CPU."""
    import torch.nn.functional as F
    from uarbench.benchmark import default_synth_config
    from uarbench.data.datasets import load_dataset
    from uarbench.io import default_cache_dir
    from uarbench.models.tokenizers import LearnedVQTokenizer
    from uarbench.training.data import split_tensors, to_unit
    from uarbench.training.image_tokens import tokenizer_cache_key
    t0 = time.perf_counter()
    ds = load_dataset("synth-cxr", None)
    print(f"synth-cxr ready in {time.perf_counter() - t0:.1f} s ({default_synth_config()})", flush=True)
    cfg = UARConfig.cpu_small() if QUICK else UARConfig.paper()
    t0 = time.perf_counter()
    train = split_tensors(ds, "train", ds.tokenizer, cfg.image_size)
    print(f"split_tensors(train) {len(train.ids)} studies: {time.perf_counter() - t0:.1f} s", flush=True)
    at_crop = F.interpolate(train.images.float(), size=cfg.crop_size, mode="bilinear", antialias=True,
                            align_corners=False).round().clamp(0, 255).byte()
    views = to_unit(at_crop).flatten(0, 1)
    order = torch.randperm(len(views), generator=torch.Generator().manual_seed(0))
    batches = [views[order[i:i + 64]] for i in range(0, len(views), 64)]
    path = Path(default_cache_dir()) / "image_tokenizers" / f"vq-{tokenizer_cache_key(cfg, ds.content_hash, 0, DEV)}.pt"
    # CPU speed of the same fit (what a `--device cuda` run does today, before training starts)
    torch.set_num_threads(os.cpu_count() or 1)
    n = 5 if QUICK else 10  # per-step time = (fit of 1 + n steps - fit of 1 step) / n, after a warm-up
    took = {}
    for steps in (1, 1, 1 + n):
        tok = LearnedVQTokenizer(cfg.codebook_size, cfg.vq)
        t0 = time.perf_counter()
        tok.fit(batches, steps=steps, seed=0)
        took[steps] = time.perf_counter() - t0
    cpu_s = (took[1 + n] - took[1]) / n
    print(f"VQ fit on CPU ({torch.get_num_threads()} threads): {cpu_s * 1e3:.0f} ms/step -> "
          f"{cfg.vq.steps} steps ~ {cpu_s * cfg.vq.steps / 60:.1f} min", flush=True)
    if CUDA:
        tok = LearnedVQTokenizer(cfg.codebook_size, cfg.vq).to(DEV)
        sync()
        t0 = time.perf_counter()
        tok.fit(batches, seed=0)
        sync()
        gpu_s = time.perf_counter() - t0
        print(f"VQ fit on {DEV.type}: {cfg.vq.steps} steps in {gpu_s:.1f} s "
              f"({gpu_s / cfg.vq.steps * 1e3:.1f} ms/step, {cpu_s * cfg.vq.steps / gpu_s:.0f}x the CPU)")
        tok.save(path)
        print(f"cached the device-fitted tokenizer at {path} (uarbench train will load it)")
        # tokens on CPU vs GPU (cuDNN convs run in TF32 by default; argmin near-ties can flip)
        val = split_tensors(ds, "val", ds.tokenizer, cfg.crop_size)
        x = to_unit(val.images[:64])
        tok_cpu = copy.deepcopy(tok).cpu()
        ids_cpu = tok_cpu.encode(x)
        ids_gpu = tok.encode(x.to(DEV)).cpu()
        torch.backends.cudnn.allow_tf32 = False
        ids_gpu32 = tok.encode(x.to(DEV)).cpu()
        torch.backends.cudnn.allow_tf32 = True
        print(f"token agreement CPU vs {DEV.type}: TF32 convs {float((ids_cpu == ids_gpu).float().mean()):.4%}, "
              f"fp32 convs {float((ids_cpu == ids_gpu32).float().mean()):.4%}")
        with autocast():
            ids_bf16 = tok.encode(x.to(DEV)).cpu()
        print(f"token agreement if encode ran under bf16 autocast: {float((ids_cpu == ids_bf16).float().mean()):.4%}")
        B = 16
        xb = torch.rand(B, cfg.n_views, 1, cfg.crop_size, cfg.crop_size, device=DEV)
        sec = timed(lambda: tok.encode(xb), 20)
        print(f"tokenizer encode per training batch (B={B}, fp32): {sec * 1e3:.2f} ms")


# --------------------------------------------------------------------------------------------
def p_decode() -> None:
    from uarbench.training.decoding import beam_search, greedy_search
    cfg = cfg_for(UAR)
    torch.manual_seed(0)
    model = UARModel(cfg).to(DEV).eval()
    model.set_stage(2)
    with torch.no_grad():
        model.head.bias[cfg.eos_id] = -30.0  # worst case: every hypothesis runs to max_len
    ids = dict(max_len=cfg.max_seq_length - 1, bos_id=cfg.bos_id, eos_id=cfg.eos_id, pad_id=cfg.pad_id)
    for B in ([4] if QUICK else [32, 256]):
        tokens = torch.randint(0, cfg.codebook_size, (B, cfg.n_views, cfg.token_grid, cfg.token_grid), device=DEV)
        for name, fn in (("beam 3", lambda m: beam_search(model, m, beam_size=3, block_ngram=3, **ids)),
                         ("greedy", lambda m: greedy_search(model, m, block_ngram=3, **ids))):
            with torch.no_grad(), autocast():
                memory = model.encode(tokens)
                fn(memory)
                sync()
                t0 = time.perf_counter()
                out = fn(memory)
                sync()
            sec = time.perf_counter() - t0
            print(f"{name:7s} batch {B:4d}: {sec:.3f} s, {sec / B * 1e3:.2f} ms/study, "
                  f"{sec / ids['max_len'] * 1e3:.2f} ms/step, lengths {min(map(len, out))}..{max(map(len, out))}", flush=True)


# --------------------------------------------------------------------------------------------
def p_sdpa() -> None:
    """Can F.scaled_dot_product_attention replace MultiHeadAttention.attend? CRA shape (no mask)
    and the decoder cross-attention with the TIR bias (a float mask that needs its gradient)."""
    import torch.nn.functional as F
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        print("torch.nn.attention missing")
        return
    dt = torch.bfloat16 if CUDA else torch.float32
    H, hd = 8, 64
    B, L, T, S = (2, 32, 8, 64) if QUICK else (16, 392, 59, 2048)

    def manual(q, k, v, bias=None):
        s = q @ k.transpose(-2, -1)
        if bias is not None:
            s = s + bias
        a = (s / math.sqrt(hd)).float().softmax(-1).to(v.dtype)
        return a @ v

    cases = {
        "CRA (queries x 2048 basis keys, no mask)": (B, L, S, False),
        "decoder cross-attn + TIR bias (59 x 392)": (B, T, L, True),
    }
    backends = [(n, getattr(SDPBackend, n)) for n in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION",
                                                      "CUDNN_ATTENTION", "MATH") if hasattr(SDPBackend, n)]
    for title, (b, tq, tk, use_bias) in cases.items():
        torch.manual_seed(0)
        q = torch.randn(b, H, tq, hd, device=DEV, dtype=dt, requires_grad=True)
        k = torch.randn(b, H, tk, hd, device=DEV, dtype=dt, requires_grad=True)
        v = torch.randn(b, H, tk, hd, device=DEV, dtype=dt, requires_grad=True)
        M = torch.randn(tq, tk, device=DEV, requires_grad=True) if use_bias else None
        bias = (lambda: 1000 * torch.sigmoid(M)) if use_bias else (lambda: None)

        def run_manual():
            return manual(q, k, v, bias())

        def run_sdpa():
            mask = None if M is None else (bias() / math.sqrt(hd)).to(dt)[None, None].expand(b, H, tq, tk)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

        ref = run_manual()
        ref.float().square().sum().backward()
        ref = ref.detach()
        g_ref = [t.grad.clone() for t in (q, k, v) + ((M,) if M is not None else ())]
        print(title)
        fns = {"manual": run_manual}
        for name, be in backends:
            for t in (q, k, v) + ((M,) if M is not None else ()):
                t.grad = None
            try:
                with sdpa_kernel([be]):
                    out = run_sdpa()
                    out.float().square().sum().backward()
                g = [t.grad for t in (q, k, v) + ((M,) if M is not None else ())]
                err = float((out.detach().float() - ref.detach().float()).abs().max())
                gerr = max(float((a.float() - b_.float()).abs().max() / (b_.float().abs().max() + 1e-9))
                           for a, b_ in zip(g, g_ref))
                print(f"  {name:20s} ok: max|out diff| {err:.3e}, max rel grad diff {gerr:.3e}")
                fns[name] = (lambda be=be: _with(be, run_sdpa))
            except Exception as e:  # noqa: BLE001 - a backend that refuses is the finding
                print(f"  {name:20s} refused: {type(e).__name__}: {str(e).splitlines()[0][:150]}")

        for name, fn in fns.items():
            def fb(fn=fn):
                out = fn()
                out.float().square().sum().backward()
            sec = timed(fb, 3 if QUICK else 20)
            print(f"  fwd+bwd {name:20s} {sec * 1e3:8.3f} ms")


def _with(be, fn):
    from torch.nn.attention import sdpa_kernel
    with sdpa_kernel([be]):
        return fn()


# --------------------------------------------------------------------------------------------
def p_compile() -> None:
    mode = os.environ.get("GC_COMPILE_MODE", "default")
    B = 4 if QUICK else 16
    torch.manual_seed(0)
    model = UARModel(cfg_for(UAR)).to(DEV).train()
    model.set_stage(2)
    cmodel = torch.compile(model, mode=None if mode == "default" else mode)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if CUDA else {}))
    batch = batch_for(model.cfg, B, DEV)

    def step():
        with autocast():
            loss = cmodel(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t0 = time.perf_counter()
    step()
    sync()
    print(f"torch.compile mode={mode}: first step (compile) {time.perf_counter() - t0:.1f} s", flush=True)
    sec = timed(step, 3 if QUICK else 30)
    print(f"torch.compile mode={mode} + fused AdamW, B={B}: {sec * 1e3:.2f} ms/step, {B / sec:.0f} samples/s")


if __name__ == "__main__":
    {"env": p_env, "correct": p_correct, "sweep": p_sweep, "profile": p_profile, "vqfit": p_vqfit,
     "decode": p_decode, "sdpa": p_sdpa, "compile": p_compile}[sys.argv[1]]()
PROBES_EOF

env_step() {
  echo "--- nvidia-smi"; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
    --format=csv 2>&1 || echo "(no nvidia-smi)"
  echo "--- cpu / memory"; nproc; free -g 2>/dev/null | head -2
  echo "--- python: $(command -v "$PY")"; "$PY" --version
  "$PY" "$WORK/probes.py" env
}
export -f env_step
step env 60 env.txt env_step

# CUDA torch present? Otherwise nothing below means anything on the device.
if [ "$GC_DEVICE" = cuda ] && ! "$PY" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
  note "ABORT: $PY has no CUDA torch (see env.txt)"; exit 1
fi

install_step() {
  # offline editable install into the image's python, keeping its CUDA torch (no deps resolved:
  # the torch>=2.13,<2.14 pin would otherwise ask for a download); then import it from elsewhere
  "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e "$ROOT" &&
    (cd /tmp && env -u PYTHONPATH "$PY" -c "import uarbench; print('installed:', uarbench.__file__)") &&
    "$PY" -m uarbench --version
}
export -f install_step
step install 90 env.txt install_step || note "        (install failed: PYTHONPATH=$ROOT is used instead)"

# ---- 1. bench_train.py: paper preset rows, bf16, MFU -----------------------------------------
bench_step() {
  local args=(--presets paper --device "$GC_DEVICE" --steps 20)
  [ "$GC_QUICK" = 1 ] && args=(--presets cpu-small --device "$GC_DEVICE" --steps 1 --batch 2)
  "$PY" benchmarks/bench_train.py "${args[@]}" | tee "$WORK/bench.txt"
  echo "--- per row: achieved TFLOP/s, MFU against 989 (spec) and 790 (measured usable), and"
  echo "    epoch time at this measured step rate (train steps only, batch 16, IU shapes)"
  "$PY" - "$WORK/bench.txt" <<'EOF'
import math, re, sys
for line in open(sys.argv[1]):
    m = re.match(r"^(.{28}) +([\d.]+) +([\d.]+) +([\d.]+)x +([\d.]+)", line)
    if not m:
        continue
    row, sec, gfl = m.group(1).strip(), float(m.group(2)), float(m.group(5))
    tf = gfl / 1e3 / sec
    iu, mimic = math.ceil(2069 / 16) * sec, math.ceil(270790 / 16) * sec
    print(f"{row:28s} {tf:7.2f} TFLOP/s  MFU {tf / 989:6.2%} / {tf / 790:6.2%}   "
          f"IU epoch {iu:7.1f} s   MIMIC epoch {mimic / 60:7.1f} min")
EOF
}
export -f bench_step
step bench_train 150 bench_train.txt bench_step

# ---- 2. LSU tokenizer fit on the device, cached for step 3 -----------------------------------
step vq_fit 120 probes.txt "$PY" "$WORK/probes.py" vqfit
export VQ_RC=$?

# ---- 3. uarbench train --preset paper --device cuda (1 + 1 epochs, beam-3 val/test decode) ----
train_step() {
  local extra=()
  if [ "$VQ_RC" -ne 0 ] && [ "$GC_DEVICE" = cuda ]; then
    # no cached tokenizer: fitting it on the CPU would take many minutes -> the Base path
    extra=(--set lsu=false); echo "(vq_fit failed: training the Base path instead of LSU)"
  fi
  local mon=""
  if command -v nvidia-smi >/dev/null && [ "$GC_DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
      > "$WORK/util.csv" 2>/dev/null & mon=$!
  fi
  "$PY" -m uarbench train --model uar --preset "$PRESET" --device "$GC_DEVICE" --dataset synth-cxr \
    --out "$WORK/run" --train-set epochs_stage1=1 --train-set epochs_stage2=1 "${extra[@]}"
  local rc=$?
  [ -n "$mon" ] && kill "$mon" 2>/dev/null
  "$PY" - "$WORK/run" "$WORK/util.csv" <<'EOF'
import json, statistics, sys
from pathlib import Path
run = Path(sys.argv[1])
log = run / "train_log.jsonl"
if log.is_file():
    rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
    for st in sorted({r["stage"] for r in rows}):
        sps = [r["samples_per_s"] for r in rows if r["stage"] == st and "samples_per_s" in r]
        if sps:
            print(f"stage {st}: {len(sps)} steps, samples/s median {statistics.median(sps):.0f} "
                  f"(first {sps[0]:.0f}), ms/step median {16e3 / statistics.median(sps):.1f}")
    print("val BLEU-4 per epoch:", [round(r["val_bleu4"], 4) for r in rows if "val_bleu4" in r])
s = run / "summary.json"
if s.is_file():
    d = json.loads(s.read_text())
    print("summary: timings", d.get("timings_s"), "wall", d.get("wall_s"), "device", d.get("device"))
    print("test:", {k: v for k, v in d["metrics"]["test"].items() if k.startswith(("BLEU-4", "ROUGE", "CIDEr"))})
u = Path(sys.argv[2])
if u.is_file():
    vals = [int(l.split(",")[0]) for l in u.read_text().splitlines() if l.split(",")[0].strip().isdigit()]
    mem = [int(l.split(",")[1]) for l in u.read_text().splitlines() if "," in l and l.split(",")[1].strip().isdigit()]
    if vals:
        print(f"nvidia-smi utilization over the run: mean {sum(vals) / len(vals):.0f}% "
              f"(n={len(vals)} samples at 0.5 s), max memory used {max(mem) if mem else '?'} MiB")
EOF
  return $rc
}
export -f train_step
step train_cli 200 train.txt train_step
[ -d "$WORK/run" ] && tar -czf "$OUT/run.tgz" -C "$WORK" --exclude=run/checkpoints run 2>/dev/null

# ---- 4-8. probes ------------------------------------------------------------------------------
step sweep_batch 100 probes.txt "$PY" "$WORK/probes.py" sweep
step profile 45 probes.txt "$PY" "$WORK/probes.py" profile
step decode 45 probes.txt "$PY" "$WORK/probes.py" decode
step correctness 45 probes.txt "$PY" "$WORK/probes.py" correct
step sdpa 30 probes.txt "$PY" "$WORK/probes.py" sdpa
# ---- 9. torch.compile (last: it may not finish in what is left) ----------------------------
step compile 150 compile.txt "$PY" "$WORK/probes.py" compile

note "done in ${SECONDS}s; files: $(cd "$OUT" && ls | tr '\n' ' ')"
exit 0
