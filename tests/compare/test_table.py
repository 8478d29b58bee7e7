"""The comparison table on results folders written with the real writers (evaluate +
write_run_record, no training): "—" for anything missing, no averaging over partial seeds,
mean ± sd, CIs, significance after Holm, the baseline rule, signature splits, id checks, reported
rows and the errors for empty folders.

Also imported by test_formats.py for :func:`build_results` (reports here are invented text)."""
from __future__ import annotations

import json
import random
import shutil
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

from uarbench.compare.table import MISSING, build_comparison
from uarbench.errors import UarbenchError
from uarbench.evaluate import evaluate
from uarbench.io import atomic_write_jsonl
from uarbench.store import write_run_record
from uarbench.runner.suite import RunSpec
from uarbench.stats.holm import holm_adjust

FINDINGS = ["the heart is normal in size", "the heart is enlarged", "the lungs are clear",
            "there is a small left pleural effusion", "no pneumothorax is seen",
            "mild atelectasis at the right base", "the mediastinum is unremarkable",
            "degenerative changes of the spine", "there is no focal consolidation",
            "a right sided port catheter is present"]
N_REPORTS = 30
BOOT = 200          # bootstrap resamples written by evaluate and used by the table
TRIALS = 2000       # AR trials: p >= 1/2001, small enough to survive Holm over ~20 tests
FAST = {"n_resamples": BOOT, "trials": TRIALS}
SUITE_ORDER = ["constant", "good", "copy", "partial", "broken"]


def references(n: int = N_REPORTS, prefix: str = "study") -> dict[str, str]:
    rng = random.Random(0)
    return {f"{prefix}{i:02d}": " . ".join(rng.sample(FINDINGS, 3)) + " ." for i in range(n)}


def degrade(refs: dict[str, str], every: int) -> dict[str, str]:
    """Drop the last word of every ``every``-th report: close to the references, not equal."""
    return {k: (" ".join(v.split()[:-3]) + " ." if i % every == 0 else v)
            for i, (k, v) in enumerate(refs.items())}


def write_run(root: Path, suite: str, row: str, seed: int, preds: dict[str, str],
              refs: dict[str, str], *, model: str = "uar", trained: bool = False,
              cleaning: str | None = None, drop: tuple[str, ...] = (),
              dataset: str = "synth-cxr", labeler: str | None = None) -> Path:
    """One complete run folder written by the project's own writers."""
    run_dir = root / suite / f"{row}-seed{seed}"
    evaluate(predictions=preds, references=refs, metrics=["BLEU", "ROUGE-L", "CIDEr"],
             labeler=labeler, cleaning=cleaning, out_dir=run_dir, bootstrap=BOOT)
    atomic_write_jsonl(run_dir / "predictions.jsonl",
                       ({"id": k, "prediction": preds[k], "reference": refs[k]} for k in refs))
    if trained:
        log = [{"stage": 1, "epoch": 0, "step": s, "loss": 5.0 - s, "ce": 4.0 - s / 2,
                "global_": 0.5, "mask": 0.0, "lr": 1e-3, "lr_image": 5e-4,
                "samples_per_s": 40.0} for s in (1, 2, 3)]
        log.insert(3, {"stage": 1, "epoch": 0, "step": 3, "val_bleu4": 0.1 + seed / 100})
        log += [{"stage": 2, "epoch": 0, "step": 4, "loss": 2.0, "ce": 2.0, "global_": 0.0,
                 "mask": 0.1, "lr": 1e-4, "lr_image": 5e-5, "samples_per_s": 40.0},
                {"stage": 2, "epoch": 0, "step": 4, "val_bleu4": 0.15}]
        atomic_write_jsonl(run_dir / "train_log.jsonl", log)
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    for name in drop:                 # a run whose record lacks a metric
        metrics.pop(name)
    spec = RunSpec(suite=suite, row=row, model=model, seed=seed, preset="cpu-small",
                   dataset=dataset, data_root=None, device="cpu", benchmark_version="test")
    ds = SimpleNamespace(name=dataset, root="/nowhere", content_hash="0" * 64)
    files = [str(p.relative_to(run_dir)) for p in sorted(run_dir.rglob("*")) if p.is_file()]
    write_run_record(run_dir, spec, dataset=ds, config={}, metrics=metrics, files=files,
                     image_tokenizer=None, device="cpu", wall_s=0.0)
    return run_dir


def write_benchmark(path: Path, suite: str, rows: list[str]) -> Path:
    body = ", ".join(f'{{ name = "{r}", model = "uar" }}' for r in rows)
    path.write_text(f'[benchmark]\nversion = "test"\n[suites.{suite}]\nrows = [ {body} ]\n')
    return path


def build_results(root: Path) -> tuple[Path, Path]:
    """Suite ``cmp``: constant (floor, 2 seeds), good (trained, 2 seeds, close to the
    references), copy (the same outputs as good), partial (3 seeds, seed 2 lacks ROUGE-L),
    broken (a failed run). Returns (results root, benchmark file)."""
    refs = references()
    const = {k: "the heart is normal in size . the lungs are clear ." for k in refs}
    for seed in (0, 1):
        write_run(root, "cmp", "constant", seed, const, refs, model="constant")
        outputs = refs if seed == 0 else degrade(refs, 3)
        write_run(root, "cmp", "good", seed, outputs, refs, trained=True)
        write_run(root, "cmp", "copy", seed, outputs, refs, trained=True)
    for seed in (0, 1, 2):
        write_run(root, "cmp", "partial", seed, degrade(refs, 2 + seed), refs, trained=True,
                  drop=("ROUGE-L",) if seed == 2 else ())
    broken = root / "cmp" / "broken-seed0"
    broken.mkdir(parents=True)
    (broken / "error.log").write_text("RuntimeError: out of memory\n")
    return root, write_benchmark(root / "benchmark.toml", "cmp", SUITE_ORDER)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, Path]:
    return build_results(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def table(results):
    root, bench = results
    return build_comparison(root, benchmark=bench, **FAST)


def run_metric(root: Path, run: str, metric: str) -> float:
    return json.loads((root / "cmp" / run / "run.json").read_text())["metrics"][metric]["value"]


def test_rows_follow_the_suite_and_the_default_baseline_is_the_first_trained_row(table):
    assert [r.name for r in table.rows] == SUITE_ORDER
    assert table.suite == "cmp" and table.dataset == "synth-cxr"
    assert table.baseline == "good"          # constant comes first but is a floor
    assert [r.trained for r in table.rows][:2] == [False, True]


def test_missing_metric_in_one_seed_shows_dash_and_is_not_averaged(results, table):
    root, _ = results
    cell = table.cell("partial", "ROUGE-L")
    assert cell.mean is None and cell.ci is None and cell.p_value is None
    assert "partial-seed2: no ROUGE-L" in cell.missing
    # the other metrics of that row average all three seeds
    bleu = table.cell("partial", "BLEU-4")
    expected = [run_metric(root, f"partial-seed{s}", "BLEU-4") for s in (0, 1, 2)]
    assert bleu.n_seeds == 3 and bleu.mean == pytest.approx(statistics.mean(expected))
    from uarbench.compare.cells import cell_text
    assert cell_text(cell) == MISSING


def test_incomplete_run_makes_its_row_missing_and_says_why(table):
    broken = next(r for r in table.rows if r.name == "broken")
    assert broken.incomplete and "failed" in broken.incomplete[0]
    assert all(table.cell("broken", c.key).mean is None for c in table.columns)
    assert any("broken" in n and "incomplete" in n for n in table.notes)


def test_mean_and_sample_sd_over_seeds(results, table):
    root, _ = results
    for metric in ("BLEU-4", "CIDEr"):
        vals = [run_metric(root, f"good-seed{s}", metric) for s in (0, 1)]
        cell = table.cell("good", metric)
        assert cell.mean == pytest.approx(statistics.mean(vals))
        assert cell.sd == pytest.approx(statistics.stdev(vals)) and cell.sd > 0
    from uarbench.compare.cells import cell_text
    assert "±" in cell_text(table.cell("good", "BLEU-4"))
    assert "±" not in cell_text(table.cell("good", "BLEU-4").__class__(mean=0.5, n_seeds=1))


def test_ci_contains_the_mean_and_the_worse_row_is_marked_after_holm(table):
    for c in table.columns:
        cell = table.cell("good", c.key)
        assert cell.ci[0] <= cell.mean + 1e-12 and cell.mean <= cell.ci[1] + 1e-12
    for metric in ("BLEU-4", "ROUGE-L", "CIDEr"):
        worse = table.cell("constant", metric)
        assert worse.significant and worse.better is False and worse.marker == "‡"
        assert worse.difference < 0 and worse.difference_ci[1] < 0


def test_metrics_unavailable_in_every_run_are_a_note_not_a_column(table):
    assert not any(c.key.startswith("RadGraph") for c in table.columns)
    assert any(n.startswith("RadGraph-F1-partial: unavailable in every run") for n in table.notes)


def test_identical_outputs_are_not_significant(table):
    for c in table.columns:
        same = table.cell("copy", c.key)
        assert same.difference == pytest.approx(0.0, abs=1e-12)
        assert same.p_value == pytest.approx(1.0) and not same.significant
        assert same.marker == ""


def test_holm_is_applied_across_every_test_of_the_table(table):
    tested = [(r.name, c.key) for r in table.rows for c in table.columns
              if table.cell(r.name, c.key).p_value is not None]
    assert table.holm_m == len(tested) > len(table.columns)
    adjusted = holm_adjust([table.cell(*k).p_value for k in tested])
    for k, q in zip(tested, adjusted):
        cell = table.cell(*k)
        assert cell.p_holm == pytest.approx(q) and cell.p_holm >= cell.p_value
        assert cell.significant == (q <= table.alpha)
    assert all(f"holm:table(m={len(tested)})" in s for s in table.test_signatures.values())
    assert table.cell("good", "BLEU-4").p_value is None      # the baseline is not tested


def test_baseline_option_flips_the_markers(results):
    root, bench = results
    t = build_comparison(root, baseline="constant", benchmark=bench, metrics=["BLEU-4"], **FAST)
    good = t.cell("good", "BLEU-4")
    assert t.baseline == "constant" and good.significant and good.marker == "†⁺"
    # the seed-level test beside it: a paired t-test of the per-seed scores, Holm over the table
    from scipy import stats
    base = t.cell("constant", "BLEU-4")
    assert good.p_seed == pytest.approx(stats.ttest_rel(good.values, base.values).pvalue)
    assert good.p_seed_holm >= good.p_seed and t.holm_m_seed >= 1
    with pytest.raises(UarbenchError, match="not a row.*constant, good"):
        build_comparison(root, baseline="nope", benchmark=bench, significance=False)


def test_one_seed_matches_the_runs_ci_and_the_plain_paired_test(tmp_path):
    from uarbench.compare.evaluations import compare_runs
    refs = references()
    a = write_run(tmp_path, "one", "a", 0, degrade(refs, 2), refs, trained=True)
    b = write_run(tmp_path, "one", "b", 0, degrade(refs, 5), refs, trained=True)
    t = build_comparison(tmp_path, baseline="a", **FAST)
    record = json.loads((b / "metrics.json").read_text())["metrics"]
    ref = {r.metric: r for r in compare_runs({"a": a, "b": b}, baseline="a", n_resamples=BOOT,
                                             trials=TRIALS).rows if r.system == "b"}
    for metric in ("BLEU-4", "CIDEr"):
        cell = t.cell("b", metric)
        assert cell.ci == pytest.approx(tuple(record[metric]["ci"]))
        assert cell.p_value == pytest.approx(ref[metric].p_value)
        assert cell.difference == pytest.approx(ref[metric].difference)


def test_metrics_by_exact_name_or_pattern_and_clinical_efficacy_is_tested(tmp_path):
    refs = references()
    const = {k: "the heart is normal in size . the lungs are clear ." for k in refs}
    write_run(tmp_path, "ce", "a", 0, const, refs, model="constant", labeler="rules")
    write_run(tmp_path, "ce", "b", 0, refs, refs, trained=True, labeler="rules")
    t = build_comparison(tmp_path, metrics=["CE-F1[micro-14-unc1]", "BLEU-?"], **FAST)
    assert [c.key for c in t.columns] == ["CE-F1[micro-14-unc1]", "BLEU-1", "BLEU-2", "BLEU-3",
                                          "BLEU-4"]
    assert t.baseline == "b"
    ce = t.cell("a", "CE-F1[micro-14-unc1]")
    assert ce.p_value is not None and ce.ci is not None and ce.difference < 0
    assert "labels:14" in t.column("CE-F1[micro-14-unc1]").signature
    assert "labeler:rules-v2(" in t.column("CE-F1[micro-14-unc1]").signature
    assert any(line.startswith("CE columns: CheXpert labels by rules-v2(") for line in t.legend())
    with pytest.raises(UarbenchError, match="no metric matches 'SPICE'"):
        build_comparison(tmp_path, metrics=["SPICE"], significance=False)


def test_different_signatures_get_separate_columns(tmp_path):
    refs = references()
    write_run(tmp_path, "sig", "a", 0, degrade(refs, 2), refs, trained=True)
    write_run(tmp_path, "sig", "b", 0, degrade(refs, 3), refs, trained=True,
              cleaning="r2gen-mimic")
    t = build_comparison(tmp_path, **FAST)
    keys = [c.key for c in t.columns if c.metric == "BLEU-4"]
    assert keys == ["BLEU-4 [a]", "BLEU-4 [b]"]
    col_a, col_b = (t.column(k) for k in keys)
    assert "clean:r2gen-iu" in col_a.signature and "clean:r2gen-mimic" in col_b.signature
    assert t.cell("a", "BLEU-4 [a]").mean is not None and t.cell("a", "BLEU-4 [b]").mean is None
    assert t.cell("b", "BLEU-4 [b]").mean is not None and t.cell("b", "BLEU-4 [a]").mean is None
    assert t.cell("b", "BLEU-4 [b]").p_value is None       # never tested across signatures
    assert any("BLEU-4" in n and "split" in n for n in t.notes)


def test_runs_on_other_test_studies_get_cis_but_no_test(tmp_path):
    refs = references()
    write_run(tmp_path, "ids", "a", 0, degrade(refs, 2), refs, trained=True)
    write_run(tmp_path, "ids", "c", 0, degrade(refs, 3), refs, trained=True)
    other = references(prefix="case")
    write_run(tmp_path, "ids", "b", 0, other, other, trained=True)
    t = build_comparison(tmp_path, **FAST)
    assert t.baseline == "a"
    b, c = t.cell("b", "BLEU-4"), t.cell("c", "BLEU-4")
    assert b.mean == pytest.approx(1.0) and b.ci is not None and b.p_value is None
    assert "other study ids than the baseline 'a'" in b.untested and "0 in common" in b.untested
    assert c.p_value is not None and c.untested is None         # same ids: tested
    assert any("not tested for 'b'" in n for n in t.notes)


def test_seeds_of_one_row_on_other_studies_are_an_error(tmp_path):
    refs = references()
    write_run(tmp_path, "ids", "a", 0, refs, refs, trained=True)
    other = references(prefix="case")
    b = write_run(tmp_path, "ids", "a", 1, other, other, trained=True)
    with pytest.raises(UarbenchError, match="other test studies") as e:
        build_comparison(tmp_path, **FAST)
    assert str(b / "per_report_stats.csv") in str(e.value) and "--no-significance" in str(e.value)


def test_paper_rows_only_for_a_matching_dataset(tmp_path, table):
    assert not any(r.kind == "reported" for r in table.rows)
    refs = references()
    for row in ("base", "uar"):
        write_run(tmp_path, "ablations", row, 0, degrade(refs, 2), refs, trained=True,
                  dataset="iu_xray")
    t = build_comparison(tmp_path, reference_rows="paper", **FAST)
    reported = [r for r in t.rows if r.kind == "reported"]
    assert [r.name for r in reported][:2] == ["Base (reported)", "(a) +LSU (reported)"]
    assert len(reported) == 8
    assert all(r.source == "reported in Li et al. ICCV 2023 (IU-Xray test)" for r in reported)
    base = t.cell("Base (reported)", "BLEU-4")
    assert base.mean == pytest.approx(0.144) and base.p_value is None and base.ci is None
    assert t.cell("Base (reported)", "ROUGE-L").mean is None     # Table 2: B1 / B4 / CIDEr only
    assert t.holm_m == len(t.columns)      # only uar vs base: reported rows are never tested


def test_paper_rows_for_synth_cxr_say_there_are_none(results):
    root, bench = results
    t = build_comparison(root, reference_rows="paper", benchmark=bench, significance=False)
    assert not any(r.kind == "reported" for r in t.rows)
    assert any("no numbers" in n and "synth-cxr" in n for n in t.notes)


def test_empty_or_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(UarbenchError, match="no results folder") as e:
        build_comparison(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value) and "Fix:" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UarbenchError, match="no complete run") as e:
        build_comparison(tmp_path / "empty")
    assert "uarbench run" in str(e.value)


def test_several_suites_need_a_choice_and_a_suite_folder_works(results, tmp_path):
    root, bench = results
    two = tmp_path / "two"
    shutil.copytree(root / "cmp", two / "cmp")
    shutil.copytree(root / "cmp", two / "cmp2")
    with pytest.raises(UarbenchError, match="2 suites: cmp, cmp2"):
        build_comparison(two, significance=False)
    assert build_comparison(two, "cmp2", significance=False).suite == "cmp2"
    assert build_comparison(two / "cmp", significance=False).suite == "cmp"
    with pytest.raises(UarbenchError, match="no complete run.*cmp, cmp2"):
        build_comparison(two, "cmp3", significance=False)


def test_seed_level_test_against_a_one_seed_floor_and_floor_copies(tmp_path):
    """Floors run once: a 3-seed row is tested at seed level against the floor's one value;
    a trained row whose outputs are the constant floor's in every seed is flagged."""
    from scipy import stats
    refs = references()
    const = {k: "the heart is normal in size . the lungs are clear ." for k in refs}
    write_run(tmp_path, "fl", "constant", 0, const, refs, model="constant")
    for seed in (0, 1, 2):
        write_run(tmp_path, "fl", "good", seed, degrade(refs, 2 + seed), refs, trained=True)
        write_run(tmp_path, "fl", "stuck", seed, const, refs, trained=True)
    t = build_comparison(tmp_path, baseline="constant", metrics=["BLEU-4"], **FAST)
    good, stuck = t.cell("good", "BLEU-4"), t.cell("stuck", "BLEU-4")
    floor = t.cell("constant", "BLEU-4").mean
    assert good.p_seed == pytest.approx(stats.ttest_1samp(
        [v - floor for v in good.values], 0.0).pvalue)
    assert stuck.p_seed == 1.0 and not stuck.seed_significant        # identical in every seed
    rows = {r.name: r for r in t.rows}
    assert rows["stuck"].same_as_floor == "constant" and rows["good"].same_as_floor is None
    assert any("'stuck': its test outputs equal the 'constant' floor's" in n for n in t.notes)
    from uarbench.compare.formats import write_table
    text = write_table(t, "md", None)
    assert "stuck (= constant floor)" in text and "⁺ / ⁻" in text
