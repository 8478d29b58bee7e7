"""Wall time of the main job on a fresh machine: ``uarbench run --suite ablations`` with no other
option (synth-cxr, cpu-small, local executor), from an empty cache (synth-cxr build, VQ-VAE
tokenizer fit, every run trained and scored), then the rerun that must skip everything.

    python benchmarks/bench_suite.py [--suite ablations] [--keep DIR]

Prints the total wall time against the 10-minute target, each run's own wall time (from
run.json) and the rerun's time. Uses a temporary cache and results folder unless --keep.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 600.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="ablations")
    p.add_argument("--keep", type=Path, help="keep cache and results under this folder")
    a = p.parse_args()
    root = a.keep or Path(tempfile.mkdtemp(prefix="uarbench-bench-"))
    env = {**os.environ, "UARBENCH_CACHE": str(root / "cache")}
    cmd = [sys.executable, "-m", "uarbench", "run", "--suite", a.suite, "--out", str(root / "results")]
    t0 = time.perf_counter()
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    rerun = time.perf_counter() - t0
    print(first.stdout[-4000:])
    for record in sorted((root / "results" / a.suite).glob("*/run.json")):
        r = json.loads(record.read_text())
        print(f"  {r['run']:<28} {r['wall_s']:>7.1f} s")
    print(f"suite {a.suite}: {cold:.0f} s from an empty cache on {os.cpu_count()} cores "
          f"(target {TARGET_S:.0f} s: ratio {cold / TARGET_S:.2f}); rerun (all skipped) "
          f"{rerun:.1f} s; exit codes {first.returncode}, {again.returncode}")
    return first.returncode or again.returncode


if __name__ == "__main__":
    sys.exit(main())
