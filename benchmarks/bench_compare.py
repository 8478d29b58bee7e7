"""``uarbench compare`` of the ablation suite with CIs and every test: today's path against the
previous one (METEOR resampled through the jar), in the same run of this script.

The results folder: ``--results DIR`` (a folder ``uarbench run --suite ablations --out DIR``
wrote), else one built here with the project's writers in ``--out`` (kept and reused; a temp
folder by default): the ablation suite's rows from benchmark.toml (two floors run once, every
trained row with seeds 0, 1, 2) on the synth-cxr test split (200 studies), each run's
predictions synthesised from the references (per study: the reference itself, the reference with
one sentence dropped or replaced by a training sentence, or a training report; trained rows and
seeds differ in these odds), then scored by :func:`uarbench.evaluate.evaluate` (METEOR through the
jar, CE with the rules labeler) and recorded with :func:`uarbench.store.write_run_record`, so the
folder has the layout, files and statistics of a real suite run. Building it takes about 40 s
(26 runs, one JVM); timing starts after.

Each path runs in a fresh Python process (cold imports, its own peak RSS): ``new``
:func:`uarbench.compare.table.build_comparison` as it is, ``old`` the same with METEOR's family
replaced by :class:`uarbench.metrics.meteor.MeteorJar` (point estimates by the jar's ``EVAL``,
every bootstrap resample and randomization trial sent to the jar as one summed segment: the
scoring before the numpy decomposition). Printed: wall time of ``build_comparison`` and of the
whole process, peak RSS of Python and of the JVM, whether a JVM started, the ratio, the largest
differences between the two tables' numbers, and the new path's resampled METEOR against the
jar's corpus score of the same resampled reports. ``--cli`` also times the whole
``uarbench compare ... --out table.md`` command (new path).

Run: .venv/bin/python benchmarks/bench_compare.py [--out /tmp/bench_compare] [--skip-old] [--cli]
(the old path takes ~2-3 minutes on 2 cores: ~500,000 row sets go through the jar).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = "ablations"
SEEDS = (0, 1, 2)
FLOORS = ("constant", "nn_retrieval")


# --------------------------------------------------------------------------- the results folder
def suite_rows(suite: str) -> list[tuple[str, str]]:
    from uarbench.benchmark import load_benchmark
    rows = load_benchmark(ROOT / "benchmark.toml").suites[suite]["rows"]
    return [(r["name"], r["model"]) for r in rows]


def sentences(report: str) -> list[str]:
    return [s.strip() + "." for s in report.split(".") if s.strip()]


def synthesise(refs: dict[str, str], train: list[str], row: str, seed: int) -> dict[str, str]:
    """Per study: the reference (p_exact), a one-sentence edit of it (p_edit), else a training
    report; the odds depend on the row, the draws on (row, seed)."""
    if row == "constant":
        common = max(set(train), key=train.count)
        return {k: common for k in refs}
    rng = random.Random(f"{row}/{seed}")
    if row == "nn_retrieval":
        return {k: rng.choice(train) for k in refs}
    quality = random.Random(row).uniform(0.0, 0.15)
    p_exact, p_edit = 0.15 + quality, 0.35 + quality
    out = {}
    for k, ref in refs.items():
        u, sents = rng.random(), sentences(ref)
        if u < p_exact:
            out[k] = ref
        elif u < p_exact + p_edit and len(sents) > 1:
            i = rng.randrange(len(sents))
            if rng.random() < 0.5:
                del sents[i]
            else:
                sents[i] = rng.choice(sentences(rng.choice(train)))
            out[k] = " ".join(sents)
        else:
            out[k] = rng.choice(train)
    return out


def build_results(out: Path, suite: str) -> Path:
    """The suite's run folders under ``out`` (reused when run.json files are there)."""
    from uarbench.benchmark import default_synth_config
    from uarbench.data.datasets import load_dataset
    from uarbench.evaluate import evaluate
    from uarbench.io import atomic_write_jsonl
    from uarbench.runner.suite import RunSpec
    from uarbench.store import read_complete, write_predictions, write_run_record
    ds = load_dataset("synth-cxr", image_check="none", synth_config=default_synth_config())
    refs = {s.id: s.report for s in ds.split("test")}
    train = [s.report for s in ds.split("train")]
    t0 = time.perf_counter()
    built = 0
    for row, model in suite_rows(suite):
        for seed in (SEEDS[:1] if row in FLOORS else SEEDS):
            run_dir = out / suite / f"{row}-seed{seed}"
            if read_complete(run_dir) is not None:
                continue
            preds = synthesise(refs, train, row, seed)
            ev = evaluate(predictions=preds, dataset=ds, split="test", out_dir=run_dir,
                          bootstrap=0)
            write_predictions(run_dir / "predictions.jsonl", list(refs),
                              [preds[k] for k in refs], [refs[k] for k in refs])
            if row not in FLOORS:     # a trained row: compare looks for its training log
                atomic_write_jsonl(run_dir / "train_log.jsonl",
                                   [{"stage": 1, "epoch": 0, "step": 1, "loss": 1.0},
                                    {"stage": 1, "epoch": 0, "step": 1, "val_bleu4": 0.1}])
            spec = RunSpec(suite=suite, row=row, model=model, seed=seed, preset="cpu-small",
                           dataset="synth-cxr", data_root=None, device="cpu",
                           benchmark_version="bench_compare")
            files = [str(p.relative_to(run_dir)) for p in sorted(run_dir.rglob("*"))
                     if p.is_file()]
            write_run_record(run_dir, spec, dataset=ds, config={},
                             metrics={k: v.to_dict() for k, v in ev.metrics.items()},
                             files=files, image_tokenizer=None, device="cpu", wall_s=0.0)
            built += 1
    if built:
        print(f"built {built} run folders in {out / suite} ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr)
    return out


# --------------------------------------------------------------------------- one path, one process
CHILD = r'''
import json, pickle, resource, sys, time
t0 = time.perf_counter()
import uarbench.compare.table as T
from uarbench.metrics import meteor
path, root, suite, out, resamples, trials = sys.argv[1:7]
started = []
real_jvm = meteor._jvm
def counting_jvm():
    if meteor._JVM is None:
        started.append(1)
    return real_jvm()
meteor._jvm = counting_jvm
if path == "old":
    real_family_of = T.family_of
    def family_of(metric):
        found = real_family_of(metric)
        return ("METEOR", meteor.MeteorJar()) if found and found[0] == "METEOR" else found
    T.family_of = family_of
t1 = time.perf_counter()
table = T.build_comparison(root, suite, n_resamples=int(resamples), trials=int(trials))
t2 = time.perf_counter()
meteor.shutdown()                 # the JVM is waited for: RUSAGE_CHILDREN then holds its peak
pickle.dump({"records": table.records(), "signatures": table.test_signatures,
             "import_s": t1 - t0, "build_s": t2 - t1, "process_s": t2 - t0,
             "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
             "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
             "jvm_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
             "jvm_started": bool(started)}, open(out, "wb"))
'''


def run_path(path: str, root: Path, suite: str, resamples: int, trials: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.pkl"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", CHILD, path, str(root), suite, str(out),
                        str(resamples), str(trials)], check=True, cwd=ROOT)
        res = pickle.loads(out.read_bytes())
        res["wall_s"] = time.perf_counter() - t0
        return res


CLI = r'''
import resource, runpy, sys
sys.argv = ["uarbench", *sys.argv[1:]]
try:
    runpy.run_module("uarbench", run_name="__main__")
finally:
    print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
'''


def time_cli(root: Path, suite: str) -> tuple[float, float]:
    """Wall time and peak RSS (MB, Python + any child) of ``uarbench compare ROOT --suite S
    --out table.md``."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CLI, "compare", str(root), "--suite", suite,
                               "--out", str(Path(tmp) / "table.md")], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              check=False)
        wall = time.perf_counter() - t0
        rss = [line.split()[1:] for line in done.stderr.splitlines() if line.startswith("RSS ")]
        if done.returncode != 0 or not rss:
            raise RuntimeError(f"uarbench compare failed: {done.stderr[-2000:]}")
        return wall, sum(int(v) for v in rss[-1]) / 1024


# --------------------------------------------------------------------------- numbers
FIELDS = ("mean", "sd", "ci_lo", "ci_hi", "difference", "difference_ci_lo", "difference_ci_hi",
          "p_value", "p_holm", "p_seed", "p_seed_holm")
FLAGS = ("significant", "seed_significant", "missing", "untested")


def differences(new: list[dict], old: list[dict]) -> dict[str, dict[str, float]]:
    """'METEOR' / 'other metrics' -> field -> max |new - old| (and flags that differ)."""
    old_of = {(r["row"], r["column"]): r for r in old}
    out: dict[str, dict[str, float]] = {}
    for r in new:
        o = old_of[(r["row"], r["column"])]
        group = out.setdefault("METEOR" if r["metric"] == "METEOR" else "other metrics", {})
        for f in FIELDS:
            if (r[f] is None) != (o[f] is None):
                group[f"{f} (present in one only)"] = group.get(f"{f} (present in one only)", 0) + 1
            elif r[f] is not None:
                group[f] = max(group.get(f, 0.0), abs(r[f] - o[f]))
        for f in FLAGS:
            if r[f] != o[f]:
                group[f"{f} differs"] = group.get(f"{f} differs", 0) + 1
    return out


def meteor_against_jar(root: Path, suite: str, n: int = 20) -> float:
    """Largest |new resampled METEOR - the jar's corpus METEOR of those resampled reports| over
    ``n`` bootstrap resamples of every run."""
    from uarbench.metrics.meteor import Meteor, MeteorJar
    from uarbench.stats.bootstrap import resampled_scores
    from uarbench.stats.compare import stats_from_frame
    from uarbench.stats.resample import bootstrap_indices
    from uarbench.store import read_per_report
    worst = 0.0
    for run in sorted((root / suite).glob("*-seed*")):
        stats = stats_from_frame(Meteor(), read_per_report(run))
        fast = resampled_scores({"r": stats}, Meteor(), n_resamples=n, seed=0)["r"]["METEOR"]
        for b, idx in enumerate(bootstrap_indices(len(stats), n, seed=0)):
            jar = MeteorJar().score_from_stats(stats[idx])["METEOR"]
            worst = max(worst, abs(float(fast[b]) - jar))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, help="an existing results folder of the suite")
    ap.add_argument("--out", type=Path, help="where to build (and reuse) the results folder")
    ap.add_argument("--suite", default=SUITE)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=10000)
    ap.add_argument("--skip-old", action="store_true", help="time only today's path")
    ap.add_argument("--cli", action="store_true", help="also time `uarbench compare --out x.md`")
    args = ap.parse_args()
    tmp = None
    if args.results is not None:
        root = args.results
    else:
        if args.out is None:
            tmp = tempfile.TemporaryDirectory(prefix="bench_compare_")
        root = build_results(args.out or Path(tmp.name), args.suite)
    runs = sorted((root / args.suite).glob("*/run.json"))
    print(f"results: {root / args.suite} ({len(runs)} runs); {args.resamples} resamples, "
          f"{args.trials} trials; {os.cpu_count()} CPUs")
    paths = {"new": run_path("new", root, args.suite, args.resamples, args.trials)}
    cli = time_cli(root, args.suite) if args.cli else None
    if not args.skip_old:
        paths["old"] = run_path("old", root, args.suite, args.resamples, args.trials)
    print(f"{'path':5} {'build_comparison':>17} {'process':>8} {'imports':>8} "
          f"{'python CPU':>11} {'python RSS':>11} {'JVM RSS':>8}  JVM")
    for name, r in paths.items():
        print(f"{name:5} {r['build_s']:16.2f}s {r['process_s']:7.2f}s {r['import_s']:7.2f}s "
              f"{r['cpu_s']:10.2f}s {r['rss_mb']:9.0f}MB {r['jvm_rss_mb']:6.0f}MB  "
              f"{'started' if r['jvm_started'] else 'not started'}")
    print("(wall times: of the process, on a machine others may share: see `uptime`; "
          "python CPU: user + system of the Python process, the JVM's not included)")
    if "old" in paths:
        new, old = paths["new"], paths["old"]
        print(f"ratio old / new: build_comparison {old['build_s'] / new['build_s']:.1f}x, "
              f"process {old['process_s'] / new['process_s']:.1f}x, peak RSS (python + JVM) "
              f"{(old['rss_mb'] + old['jvm_rss_mb']) / (new['rss_mb'] + new['jvm_rss_mb']):.1f}x")
        for group, diffs in differences(new["records"], old["records"]).items():
            shown = ", ".join(f"{k} {v:.2g}" if isinstance(v, float) else f"{k}: {v}"
                              for k, v in diffs.items())
            print(f"max |new - old|, {group}: {shown or 'none'}")
        sig_new, sig_old = new["signatures"].get("METEOR"), old["signatures"].get("METEOR")
        print(f"METEOR test signature: new {sig_new}\n                       old {sig_old}")
    if cli is not None:
        print(f"uarbench compare --suite {args.suite} --out table.md (new path): {cli[0]:.2f} s "
              f"wall, peak RSS {cli[1]:.0f} MB")
    print(f"new path's resampled METEOR vs the jar's corpus METEOR of the same resampled reports "
          f"(20 resamples of every run): max |difference| {meteor_against_jar(root, args.suite):.2g}")
    print(json.dumps({k: {f: v for f, v in r.items() if f not in ("records", "signatures")}
                      for k, r in paths.items()}))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
