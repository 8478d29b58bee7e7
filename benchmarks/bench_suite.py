"""Wall time of the main job on a fresh machine: ``uarbench run --suite ablations`` with no other
option (synth-cxr, cpu-small, local executor), from an empty cache (synth-cxr build, VQ-VAE
tokenizer fits, every run trained and scored), then the rerun that must skip everything.

    python benchmarks/bench_suite.py [--suite ablations] [--seeds 0,1,2] [--keep DIR]

Prints the total wall time against the 10-minute target, where the time goes (the shared
preparation's phases from ``prepare.json``, then every run's phases from its ``run.json``:
data, tokenizer, train_steps, validation, decode_val / decode_test, metric:<family>,
labelling, bootstrap, floor_fit_predict, other), summed over runs and as a share of the runs'
CPU time, each run's own wall time, and the rerun's time. Uses a temporary cache and results
folder unless --keep.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

TARGET_S = 600.0


def breakdown(results: Path, suite: str) -> str:
    """The phase table of a finished suite folder."""
    lines = []
    prep = results / suite / "prepare.json"
    if prep.is_file():
        phases = json.loads(prep.read_text())["phases_s"]
        lines.append("shared preparation (main process, before the runs): " + ", ".join(
            f"{k} {v:.1f} s" for k, v in sorted(phases.items(), key=lambda kv: -kv[1])))
        fits = json.loads(prep.read_text()).get("tokenizer_fits_s", {})
        if fits:
            lines.append(f"tokenizer fits (in the workers, beside the runs): {len(fits)}, "
                         f"{sum(fits.values()):.1f} s summed")
    totals: dict[str, float] = defaultdict(float)
    runs = []
    for record in sorted((results / suite).glob("*/run.json")):
        r = json.loads(record.read_text())
        shared = " (stage 1 taken)" if (record.parent / "summary.json").is_file() and (json.loads(
            (record.parent / "summary.json").read_text()).get("shared_stage1") or {}).get(
            "taken") else ""
        runs.append((r["run"] + shared, r["wall_s"], r.get("phases_s", {})))
        for k, v in r.get("phases_s", {}).items():
            totals[k] += v
    whole = sum(totals.values()) or 1.0
    lines.append(f"runs: {len(runs)}, summed run time {whole:.0f} s, by phase:")
    for k, v in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {k:<20} {v:>8.1f} s  {100 * v / whole:5.1f}%")
    lines.append("per run (wall s; top phases):")
    for name, wall, phases in runs:
        top = ", ".join(f"{k} {v:.0f}" for k, v in sorted(phases.items(), key=lambda kv: -kv[1])[:4])
        lines.append(f"  {name:<44} {wall:>7.1f}  ({top})")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="ablations")
    p.add_argument("--seeds", help="passed to uarbench run (default: the suite's)")
    p.add_argument("--keep", type=Path, help="keep cache and results under this folder")
    a = p.parse_args()
    root = a.keep or Path(tempfile.mkdtemp(prefix="uarbench-bench-"))
    env = {**os.environ, "UARBENCH_CACHE": str(root / "cache")}
    cmd = [sys.executable, "-m", "uarbench", "run", "--suite", a.suite, "--out",
           str(root / "results")] + (["--seeds", a.seeds] if a.seeds else [])
    t0 = time.perf_counter()
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    rerun = time.perf_counter() - t0
    print(first.stdout[-4000:])
    if first.returncode:
        print(first.stderr[-4000:])
    print(breakdown(root / "results", a.suite))
    print(f"suite {a.suite}: {cold:.0f} s from an empty cache on {os.cpu_count()} cores "
          f"(target {TARGET_S:.0f} s: ratio {cold / TARGET_S:.2f}); rerun (all skipped) "
          f"{rerun:.1f} s; exit codes {first.returncode}, {again.returncode}")
    return first.returncode or again.returncode


if __name__ == "__main__":
    sys.exit(main())
