"""synth-cxr generation speed: rendering both views, and a whole build, per study.

Run: .venv/bin/python benchmarks/bench_synth.py   (target: < 15 ms to render a study at 128 px)
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from uarbench.data.synth import SynthConfig, generate_synth
from uarbench.data.synth.findings import sample_findings
from uarbench.data.synth.render import render_study, sample_anatomy


def main() -> None:
    rng = np.random.default_rng(0)
    cases = [(sample_findings(rng), sample_anatomy(rng)) for _ in range(50)]
    render_study(*cases[0], 128)
    t = time.perf_counter()
    for f, a in cases:
        render_study(f, a, 128)
    render = (time.perf_counter() - t) / len(cases)
    cfg = SynthConfig(n_train=100, n_val=20, n_test=30)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate_synth(Path(tmp) / "s", cfg, progress=False)
        build = (time.perf_counter() - t) / cfg.n_total
    print(f"render (both views, 128 px): {render * 1000:.1f} ms/study (target < 15 ms)")
    print(f"full build (findings, report, PNGs, files): {build * 1000:.1f} ms/study")


if __name__ == "__main__":
    main()
