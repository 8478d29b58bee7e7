"""``compare`` with METEOR columns: CIs and tests from the stored statistics without starting
Java (also on a machine without it), the same numbers as the previous jar-bound scoring where
that one was exact, run folders without METEOR statistics, one resampling per table whatever the
formats, and the progress lines.

Run folders are written by the project's writers (evaluate for BLEU / ROUGE-L, write_run_record);
their METEOR statistics are the jar's answers recorded in tests/metrics/data/meteor_jar.json (real
ablation-suite reports and edge cases), so no JVM is needed to build them.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from uarbench.compare import table as table_mod
from uarbench.compare.table import build_comparison
from uarbench.evaluate import evaluate
from uarbench.metrics import meteor as meteor_mod
from uarbench.metrics.meteor import Meteor, MeteorJar, corpus_rows
from uarbench.runner.suite import RunSpec
from uarbench.stats.compare import seed_mean_comparison
from uarbench.store import PER_REPORT_FILE, write_run_record

DATA = json.loads((Path(__file__).parents[1] / "metrics" / "data" / "meteor_jar.json")
                  .read_text())
STATS = np.array(DATA["stats"], dtype=np.float64)
N = 40
FAST = {"n_resamples": 200, "trials": 500}
ROWS = {"floor": ("constant", (0,)), "base": ("uar", (0, 1)), "better": ("uar", (0, 1)),
        "other": ("uar", (0, 1))}
WORDS = ["the", "heart", "is", "normal", "in", "size", "lungs", "are", "clear", "no", "pleural",
         "effusion", "mild"]


def meteor_rows(row: str, seed: int, perfect: bool) -> np.ndarray:
    """N recorded statistics rows for one run (its own draw of the recorded reports); without
    ``perfect``, only reports that are not perfect matches."""
    pool = np.arange(len(STATS))
    if not perfect:
        pool = pool[corpus_rows(STATS)[:, meteor_mod.CHUNKS] == STATS[:, meteor_mod.CHUNKS]]
    rng = np.random.default_rng([sum(map(ord, row)), seed])
    return STATS[rng.choice(pool, size=N, replace=True)]


def write_run(root: Path, row: str, seed: int, *, perfect: bool = True,
              meteor_stats: bool = True) -> Path:
    model, _ = ROWS[row]
    run_dir = root / "s" / f"{row}-seed{seed}"
    rng = np.random.default_rng(seed + 10 * len(row))
    refs = {f"study{i:02d}": " ".join(rng.choice(WORDS, 6)) + " ." for i in range(N)}
    preds = {k: (v if i % 3 else " ".join(rng.choice(WORDS, 5)) + " .")
             for i, (k, v) in enumerate(refs.items())}
    ev = evaluate(predictions=preds, references=refs, metrics=["BLEU", "ROUGE-L"], labeler=None,
                  out_dir=run_dir, bootstrap=0)
    family = Meteor()
    stats = meteor_rows(row, seed, perfect)
    metrics = {k: v.to_dict() for k, v in ev.metrics.items()}
    base = {"conv": "r2gen", "clean": "r2gen-iu", "ref": "file"}
    metrics["METEOR"] = {"value": family.score_from_stats(stats)["METEOR"],
                         "signature": family.signature("METEOR", N, base),
                         "higher_is_better": True}
    if meteor_stats:
        frame = pd.read_csv(run_dir / PER_REPORT_FILE)
        for j, name in enumerate(family.stat_names):
            frame[f"METEOR.{name}"] = stats[:, j]
        frame.to_csv(run_dir / PER_REPORT_FILE, index=False)
    if model != "constant":
        (run_dir / "train_log.jsonl").write_text('{"stage": 1, "step": 1, "loss": 1.0}\n')
    spec = RunSpec(suite="s", row=row, model=model, seed=seed, preset="cpu-small",
                   dataset="synth-cxr", data_root=None, device="cpu", benchmark_version="t")
    files = [p.name for p in sorted(run_dir.iterdir()) if p.is_file()]
    write_run_record(run_dir, spec, dataset=SimpleNamespace(name="synth-cxr", root="/x",
                                                            content_hash="0" * 64),
                     config={}, metrics=metrics, files=files, image_tokenizer=None,
                     device="cpu", wall_s=0.0)
    return run_dir


def build(root: Path, *, perfect: bool = True, without_meteor: tuple[str, ...] = ()) -> Path:
    for row, (_, seeds) in ROWS.items():
        for seed in seeds:
            write_run(root, row, seed, perfect=perfect, meteor_stats=row not in without_meteor)
    (root / "benchmark.toml").write_text(
        '[benchmark]\nversion = "t"\n[suites.s]\nrows = [ '
        + ", ".join(f'{{ name = "{r}", model = "{m}" }}' for r, (m, _) in ROWS.items())
        + " ]\n")
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("meteor_results"))


@pytest.fixture
def no_java(no_jvm, monkeypatch):
    """A machine where the METEOR jar cannot run, and a test that fails if it is asked."""
    monkeypatch.setattr(meteor_mod.shutil, "which", lambda name: None)


def stats_of(results: Path, row: str) -> list[np.ndarray]:
    family = Meteor()
    return [pd.read_csv(d / PER_REPORT_FILE, index_col="id")[
        [f"METEOR.{s}" for s in family.stat_names]].to_numpy()
        for d in sorted((results / "s").glob(f"{row}-seed*"))]


def test_meteor_cis_and_tests_come_from_stored_statistics_without_java(results, no_java):
    table = build_comparison(results, benchmark=results / "benchmark.toml", **FAST)
    assert table.baseline == "base"
    systems = {r: stats_of(results, r) for r in ROWS}
    want = seed_mean_comparison(systems, Meteor(), baseline="base", **FAST)
    for row in ROWS:
        cell = table.cell(row, "METEOR")
        assert cell.ci == want[row]["METEOR"].ci
        assert cell.mean == pytest.approx(want[row]["METEOR"].estimate, abs=1e-15)
        if row != "base":
            assert cell.p_value == want[row]["METEOR"].p_value is not None
            assert cell.difference_ci == want[row]["METEOR"].difference_ci
    assert "|resample:sums=meteor-1.5-corpus" in table.test_signatures["METEOR"]
    assert not any("METEOR" in n for n in table.notes)


def test_one_resampling_serves_every_format(results, monkeypatch):
    """The table holds its CIs and tests: writing it in every format resamples nothing."""
    from uarbench.compare.formats import FORMATS, write_table
    table = build_comparison(results, benchmark=results / "benchmark.toml", **FAST)

    def refuse(*args, **kwargs):
        raise AssertionError("a writer resampled")
    monkeypatch.setattr(table_mod, "seed_mean_comparison", refuse)
    monkeypatch.setattr(table_mod, "build_comparison", refuse)
    for fmt in FORMATS.names():
        assert write_table(table, fmt)


def test_progress_lines_go_to_the_compare_logger(results, caplog):
    with caplog.at_level(logging.INFO, logger="uarbench.compare"):
        build_comparison(results, benchmark=results / "benchmark.toml", **FAST)
    lines = [r.getMessage() for r in caplog.records if r.name == "uarbench.compare"]
    assert lines[0].startswith("compare: CIs (200 resamples) and tests (500 trials)")
    assert any(line.startswith("compare: METEOR (") for line in lines)
    assert lines[-1].startswith("compare: CIs and tests done in ")


def test_runs_without_meteor_statistics_keep_their_number_and_say_why(tmp_path, no_java):
    """A run folder whose per_report_stats.csv has no METEOR columns (scored while METEOR was
    unavailable, or by an older uarbench) shows its METEOR value without CI or test, with a
    note; the other rows are still tested."""
    root = build(tmp_path, without_meteor=("other",))
    table = build_comparison(root, benchmark=root / "benchmark.toml", **FAST)
    cell = table.cell("other", "METEOR")
    assert cell.mean is not None and cell.ci is None and cell.p_value is None
    assert table.cell("better", "METEOR").p_value is not None
    assert table.cell("other", "BLEU-4").ci is not None
    assert "no METEOR statistics" in cell.untested
    assert any("METEOR: no CI or test for 'other'" in n and "no METEOR statistics" in n
               for n in table.notes)


def test_a_baseline_without_meteor_statistics_leaves_meteor_untested(tmp_path, no_java):
    root = build(tmp_path, without_meteor=("base",))
    table = build_comparison(root, benchmark=root / "benchmark.toml", **FAST)
    assert table.baseline == "base"
    better = table.cell("better", "METEOR")
    assert better.ci is not None and better.p_value is None
    assert better.untested == "not tested: the baseline 'base' has no METEOR statistics"
    assert table.cell("better", "BLEU-4").p_value is not None
    assert not any("scored under" in n for n in table.notes)


@pytest.mark.java
@pytest.mark.skipif(shutil.which("java") is None, reason="java not found on PATH")
def test_same_numbers_as_the_jar_bound_path_without_perfect_matches(tmp_path, monkeypatch):
    """On reports without perfect matches the previous scoring (the jar, a resample's summed
    statistics as one segment) was already the corpus score: both paths give the same CIs and
    p-values; only the signature says how resamples were scored."""
    root = build(tmp_path, perfect=False)
    new = build_comparison(root, benchmark=root / "benchmark.toml", **FAST)
    real = table_mod.family_of

    def jar_family(metric):
        found = real(metric)
        return ("METEOR", MeteorJar()) if found and found[0] == "METEOR" else found
    monkeypatch.setattr(table_mod, "family_of", jar_family)
    old = build_comparison(root, benchmark=root / "benchmark.toml", **FAST)
    for row in ROWS:
        a, b = new.cell(row, "METEOR"), old.cell(row, "METEOR")
        assert a.mean == b.mean
        np.testing.assert_allclose(a.ci, b.ci, rtol=0, atol=1e-12)
        assert a.p_value == b.p_value and a.significant == b.significant
    assert "resample:" not in old.test_signatures["METEOR"]
    assert new.test_signatures["METEOR"].replace("|resample:sums=meteor-1.5-corpus", "") == \
        old.test_signatures["METEOR"]
