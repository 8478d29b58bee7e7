"""The data path before step 1 (issue 13 item 8): on MIMIC-shaped synthetic sets (synth-cxr
builds read as ``mimic_cxr``: one view, JPEG, R2Gen MIMIC cleaning) of two sizes, measure

* the image-cache fill: seconds, images/s, processes used (every core);
* time to the first training step of a run with a cold image cache, and of a second run with
  the cache warm (what every later run, seed and rank pays);
* the peak RSS of each run up to that point (``VmHWM``; plus the largest pool worker's), which
  must not grow with the number of studies (the splits are memory-mapped, not loaded).

Each run is a fresh subprocess (``train_model`` of a cpu-small model, stopped after
``--steps`` training steps by a patched ``Trainer._step``), so RSS and timings are its own.
The default model is ``base`` (no LSU tokenizer fit in the way; ``--model uar`` adds one).

Run: .venv/bin/python benchmarks/bench_data.py --quick        (2k vs 5k studies, 128 px)
     .venv/bin/python benchmarks/bench_data.py                (2k vs 20k studies, 512 px JPEG)
Builds are kept under --work (default a temp folder) and reused when run again.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _status() -> dict[str, int]:
    """VmHWM / VmRSS / RssAnon / RssFile of this process in MiB (Linux)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) // 1024
    except OSError:
        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return out


class _Stop(Exception):
    pass


class _WorkerPeak:
    """The largest VmHWM of this process's descendants (the image cache's pool workers), sampled
    every 20 ms from /proc. (``RUSAGE_CHILDREN``'s ru_maxrss would count the parent's pages at
    fork time, before the worker's exec.)"""

    def __init__(self) -> None:
        import threading
        self.mib, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _descendants(self, pid: int) -> list[int]:
        out = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            for k in kids:
                out += [k, *self._descendants(k)]
        return out

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in self._descendants(os.getpid()):
                try:
                    # a child between fork and exec still shows this process's pages: count
                    # only started workers
                    if b"multiprocessing" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.mib = max(self.mib, int(line.split()[1]) // 1024)
                except OSError:
                    pass

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.mib


def child(args: argparse.Namespace) -> None:
    """One run up to step ``args.steps``; prints one JSON line."""
    t_start = time.perf_counter()
    import torch

    from uarbench.data.datasets import load_dataset
    from uarbench.data.image_cache import default_workers
    from uarbench.models import MODELS
    from uarbench.timing import collect
    from uarbench.training.config import TrainConfig
    from uarbench.training.run import train_model
    from uarbench.training.trainer import Trainer

    marks: dict[str, float] = {}
    real_step = Trainer._step

    def step(self, *a, **k):     # whatever the step's signature
        out = real_step(self, *a, **k)
        marks.setdefault("first_step", time.perf_counter())
        marks["steps"] = marks.get("steps", 0) + 1
        if marks["steps"] >= args.steps:
            marks["stop"] = time.perf_counter()
            raise _Stop
        return out
    Trainer._step = step
    dataset = load_dataset("mimic_cxr", args.root)
    _ = dataset.tokenizer            # the vocabulary: reports only, no image
    annotation_mib = _status()["VmRSS"]
    model_cfg = MODELS.get(args.model).config_class.cpu_small()
    if args.model == "uar":
        model_cfg = model_cfg.replace(vq=model_cfg.vq.replace(steps=20))
    train_cfg = TrainConfig.cpu_small(device=args.device, epochs_stage1=1, epochs_stage2=0)
    workers_peak = _WorkerPeak()
    t0 = time.perf_counter()
    with collect() as times:
        try:
            train_model(model=args.model, dataset=dataset, model_cfg=model_cfg,
                        train_cfg=train_cfg, out_dir=args.out, cache_dir=args.cache,
                        share_stage1=False)
        except _Stop:
            pass
    phases = times.rounded()
    print(json.dumps({
        "first_step_s": round(marks["first_step"] - t0, 2),
        "first_step_from_start_s": round(marks["first_step"] - t_start, 2),
        "data_s": phases.get("data", 0.0), "tokenizer_s": phases.get("tokenizer", 0.0),
        "steps_s": round(marks["stop"] - marks["first_step"], 2),
        "workers": default_workers(), "torch_threads": torch.get_num_threads(),
        **_status(), "after_annotation_mib": annotation_mib,
        "workers_peak_mib": workers_peak.stop(),
    }))


def _run_child(root: Path, cache: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", "--root", str(root), "--cache", str(cache),
           "--out", str(out), "--steps", str(args.steps), "--model", args.model,
           "--device", args.device]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "UARBENCH_CACHE": str(cache)})
    if done.returncode:
        sys.exit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _build(work: Path, n: int, size: int, fmt: str) -> tuple[Path, float | None]:
    from uarbench.data.synth import SynthConfig, generate_synth
    n_eval = max(16, n // 100)       # MIMIC-CXR's val / test are ~1% of its train split
    cfg = SynthConfig(n_train=n, n_val=n_eval, n_test=n_eval, size=size, image_format=fmt)
    root = work / f"synth-{cfg.cache_key()}"
    if (root / "synth_config.json").is_file():
        return root, None
    print(f"building {n} studies at {size} px ({fmt}) in {root} ...", flush=True)
    t0 = time.perf_counter()
    generate_synth(root, cfg, workers=0, progress=False)
    return root, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="2,000 vs 5,000 studies at 128 px (minutes on 2 cores)")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                    help="train-split sizes (default 2000,20000; --quick 2000,5000)")
    ap.add_argument("--size", type=int, help="image px (default 512; --quick 128)")
    ap.add_argument("--format", default="jpeg", choices=("jpeg", "png"))
    ap.add_argument("--model", default="base", choices=("base", "uar", "r2gen", "r2gencmn"))
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    ap.add_argument("--steps", type=int, default=5, help="training steps per run")
    ap.add_argument("--work", type=Path, help="builds and caches (default: a temp folder, "
                                               "removed at the end)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    sizes = args.sizes or ([2000, 5000] if args.quick else [2000, 20000])
    px = args.size or (128 if args.quick else 512)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-data-"))
    rows = []
    for n in sizes:
        root, build_s = _build(work, n, px, args.format)
        cache = work / f"cache-{root.name}"
        shutil.rmtree(cache, ignore_errors=True)          # the first run starts cold
        runs = []
        for i in (1, 2):      # cold, then warm
            out = work / f"run-{root.name}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            runs.append(_run_child(root, cache, out, args))
        n_images = sum(len(json.loads((root / "annotation.json").read_text())[s])
                       for s in ("train", "val", "test"))          # one view each (mimic_cxr)
        rows.append((n, n_images, build_s, runs))
        cold, warm = runs
        print(f"{n:>6} studies ({n_images} images, {px} px {args.format}): "
              f"build {'cached' if build_s is None else f'{build_s:.0f} s'} | "
              f"cache fill {cold['data_s']:.1f} s = {n_images / max(cold['data_s'], 1e-9):.0f} "
              f"images/s on {cold['workers']} processes | first step: cold "
              f"{cold['first_step_s']:.1f} s, warm {warm['first_step_s']:.1f} s | peak RSS "
              f"cold {cold['VmHWM']} MiB (workers {cold['workers_peak_mib']} MiB), "
              f"warm {warm['VmHWM']} MiB; above the annotation: cold "
              f"{cold['VmHWM'] - cold['after_annotation_mib']} MiB, warm "
              f"{warm['VmHWM'] - warm['after_annotation_mib']} MiB", flush=True)
    (n0, _, _, (c0, w0)), (n1, _, _, (c1, w1)) = rows[0], rows[-1]
    above = [r["VmHWM"] - r["after_annotation_mib"] for r in (c0, w0, c1, w1)]
    print(f"\n{n1 / n0:.1f}x the studies: peak RSS cold x{c1['VmHWM'] / c0['VmHWM']:.2f}, "
          f"warm x{w1['VmHWM'] / w0['VmHWM']:.2f} (above the annotation's: cold "
          f"x{above[2] / above[0]:.2f}, warm x{above[3] / above[1]:.2f}), worker peak "
          f"x{c1['workers_peak_mib'] / max(c0['workers_peak_mib'], 1):.2f}; first step "
          f"warm x{w1['first_step_s'] / w0['first_step_s']:.2f} "
          f"({w1['first_step_s']:.1f} s vs {c1['first_step_s']:.1f} s cold at {n1})")
    print(json.dumps({"px": px, "format": args.format, "model": args.model,
                      "rows": [{"studies": n, "images": m, "build_s": b, "cold": c, "warm": w}
                               for n, m, b, (c, w) in rows]}))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
