"""Rule labeler speed: reports per second on synth-cxr reports (and IU-Xray when present).

Run: .venv/bin/python benchmarks/bench_labeler.py   (target: 10,000 reports in < 10 s on one core)
Times both the default labeler (sentence labels memoised, as when scoring a test set whose
reports repeat sentences) and ``cache_size=0`` (every sentence read afresh: the worst case).
"""
from __future__ import annotations

import time
from pathlib import Path

from uarbench.data.datasets import load_dataset
from uarbench.labeling.rules import RuleLabeler

N = 10_000
IU_XRAY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "iu_xray"


def _repeat(reports: list[str], n: int = N) -> list[str]:
    return (reports * (n // len(reports) + 1))[:n]


def _time(name: str, reports: list[str]) -> None:
    for label, kwargs in (("memoised", {}), ("no cache", {"cache_size": 0})):
        labeler = RuleLabeler(**kwargs)
        t = time.perf_counter()
        labeler.label(reports)
        dt = time.perf_counter() - t
        print(f"{name:10s} {label:9s} {len(reports):6d} reports  {dt:6.2f} s  "
              f"{len(reports) / dt:9.0f} reports/s  (target: {N} in < 10 s)")


def main() -> None:
    synth = load_dataset("synth-cxr", image_check="none")
    reports = [synth.clean(s.report) for sp in ("train", "val", "test") for s in synth.split(sp)]
    _time("synth-cxr", _repeat(reports))
    if (IU_XRAY / "annotation.json").is_file():
        iu = load_dataset("iu_xray", IU_XRAY, image_check="none")
        reports = [iu.clean(s.report) for sp in ("train", "val", "test") for s in iu.split(sp)]
        _time("iu_xray", _repeat(reports))
    else:
        print(f"iu_xray: not present at {IU_XRAY}, skipped")


if __name__ == "__main__":
    main()
