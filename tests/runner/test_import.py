"""Published systems as rows: ``uarbench import`` writes a run folder that ``uarbench compare``
ranks with trained runs (paired tests on the same ids and signature), refuses to test rows on
other references or conventions with the reason, and ``compare --convention`` scores every run
again under one convention. All reports are invented; the trained runs are written with the
project's own writers (no training)."""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from conftest import write_release
from uarbench.cli import main
from uarbench.compare.table import build_comparison
from uarbench.data.datasets import load_dataset
from uarbench.errors import UarbenchError
from uarbench.evaluate import evaluate
from uarbench.io import atomic_write_jsonl
from uarbench.runner.imported import import_outputs
from uarbench.store import read_complete, write_run_record
from uarbench.runner.suite import RunSpec

SENTENCES = ["The heart is normal in size.", "The heart is enlarged.", "The lungs are clear.",
             "There is a small left pleural effusion.", "No pneumothorax is seen.",
             "Mild atelectasis at the right base.", "The mediastinum is unremarkable.",
             "Degenerative changes of the spine.", "There is no focal consolidation.",
             "A right-sided port catheter is present, tip 1.2-cm above the carina."]
N_TEST = 40
FAST = {"n_resamples": 200, "trials": 2000}
GENERIC = "The heart is normal in size. The lungs are clear."


def report(rng: random.Random) -> str:
    return " ".join(rng.sample(SENTENCES, 3))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    rng = random.Random(1)

    def items(split, n):
        return [{"id": f"{split}{i:02d}", "report": report(rng),
                 "image_path": [f"{split}{i}/0.png", f"{split}{i}/1.png"], "split": split}
                for i in range(n)]
    splits = {"train": items("train", 12), "val": items("val", 3), "test": items("test", N_TEST)}
    return write_release(tmp_path_factory.mktemp("rel") / "iu", splits)


def raw_refs(release: Path) -> dict[str, str]:
    ds = load_dataset("iu_xray", release, image_check="none")
    return {s.id: s.report for s in ds.split("test")}


def near(refs: dict[str, str], every: int) -> dict[str, str]:
    """Close to the references: every ``every``-th report loses its last sentence."""
    return {k: (v.rsplit(". ", 1)[0] + "." if i % every == 0 else v)
            for i, (k, v) in enumerate(refs.items())}


def trained_run(root: Path, release: Path, row: str, preds: dict[str, str]) -> Path:
    """A complete trained-looking run scored the way the runner scores (dataset references)."""
    ds = load_dataset("iu_xray", release, image_check="none")
    run_dir = root / "main" / f"{row}-seed0"
    atomic_write_jsonl(run_dir / "predictions.jsonl", (
        {"id": s.id, "prediction": preds[s.id], "reference": ds.clean(s.report)}
        for s in ds.split("test")))
    evaluate(predictions=preds, dataset=ds, out_dir=run_dir, bootstrap=100,
             metrics=["BLEU", "ROUGE-L", "CIDEr"])
    atomic_write_jsonl(run_dir / "train_log.jsonl", [{"stage": 1, "epoch": 0, "step": 1}])
    spec = RunSpec(suite="main", row=row, model="uar", seed=0, preset="cpu-small",
                   dataset="iu_xray", data_root=str(release), device="cpu",
                   benchmark_version="test")
    files = [str(p.relative_to(run_dir)) for p in sorted(run_dir.rglob("*")) if p.is_file()]
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    write_run_record(run_dir, spec, dataset=ds, config={}, metrics=metrics, files=files,
                     image_tokenizer=None, device="cpu", wall_s=0.0)
    return run_dir


def released_file(path: Path, preds: dict[str, str], refs: dict[str, str]) -> Path:
    """A released output file as recent papers publish them: a summary row first, then
    dicom_id, pred_report and their pipeline's lowercased references."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dicom_id", "pred_report", "labels"])
        w.writerow(["", "BLEU-4 0.123", ""])
        for k in refs:
            w.writerow([k, preds[k], refs[k].lower()])
    return path


@pytest.fixture(scope="module")
def results(release, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    refs = raw_refs(release)
    trained_run(root, release, "base", near(refs, 2))
    trained_run(root, release, "uar", near(refs, 4))
    generic = released_file(root / "generic.csv", {k: GENERIC for k in refs}, refs)
    assert main(["import", str(generic), "--name", "published", "--citation", "Doe et al. 2025",
                 "--dataset", "iu_xray", "--data-root", str(release), "--out",
                 str(root / "main"), "--skip-empty-references", "--labeler", "none",
                 "--bootstrap", "100"]) == 0
    assert main(["import", str(generic), "--name", "published_own_refs", "--dataset", "iu_xray",
                 "--out", str(root / "main"), "--skip-empty-references", "--labeler", "none",
                 "--convention", "dotspace", "--bootstrap", "0"]) == 0
    return root


def test_import_writes_a_complete_run_folder(results):
    folder = results / "main" / "published"
    record = read_complete(folder)
    assert record is not None and record["source"] == "imported"
    assert record["citation"] == "Doe et al. 2025" and record["row"] == "published"
    assert len(record["config"]["file_sha256"]) == 64
    assert record["config"]["skipped_empty_references"] == 1
    assert {"predictions.jsonl", "metrics.json", "per_report_stats.csv"} <= set(record["files"])
    sig = record["metrics"]["BLEU-4"]["signature"]
    assert sig.startswith(f"BLEU-4|conv:r2gen|clean:r2gen-iu|ref:dataset|n:{N_TEST}|")
    own = read_complete(results / "main" / "published_own_refs")
    assert own["metrics"]["BLEU-4"]["signature"].startswith(f"BLEU-4|conv:dotspace|ref:file|n:{N_TEST}|")
    assert not list((results / "main").glob(".*import*"))      # no temporary folder left


def test_compare_ranks_imported_and_trained_rows_with_paired_tests(results):
    t = build_comparison(results, "main", baseline="base", metrics=["BLEU-4", "CIDEr"], **FAST)
    names = [r.name for r in t.rows]
    assert {"base", "uar", "published"} <= set(names)
    row = next(r for r in t.rows if r.name == "published")
    assert row.source == "imported: Doe et al. 2025"
    # same signature as the trained rows: one column, and a paired test against the baseline
    pub, uar = t.cell("published", "BLEU-4 [a]"), t.cell("uar", "BLEU-4 [a]")
    assert pub.p_value is not None and uar.p_value is not None
    assert pub.significant and not pub.better              # the generic report is worse
    assert uar.mean > t.cell("base", "BLEU-4 [a]").mean
    # against its own released references under dotspace: own column, not tested, says why
    own = t.cell("published_own_refs", "BLEU-4 [b]")
    assert own.mean is not None and own.p_value is None
    assert "conv:dotspace" in own.untested and "ref:file" in own.untested
    assert any("not tested: scored under conv:dotspace" in n for n in t.notes)


def test_compare_convention_scores_every_run_again(results, release):
    t = build_comparison(results, "main", baseline="base", metrics=["BLEU-4"], **FAST,
                         convention="dotspace")
    refs = raw_refs(release)
    direct = evaluate(predictions=near(refs, 4), dataset=load_dataset(
        "iu_xray", release, image_check="none"), convention="dotspace", labeler=None,
        bootstrap=0, metrics=["BLEU"])
    col = next(c for c in t.columns if "ref:dataset" in c.signature)
    assert "conv:dotspace" in col.signature
    assert t.cell("uar", col.key).mean == pytest.approx(direct.metrics["BLEU-4"].value, abs=1e-12)
    assert t.cell("published", col.key).p_value is not None       # still paired with the rows
    assert (results / "main" / "uar-seed0" / "conventions" / "dotspace" / "metrics.json").is_file()
    assert read_complete(results / "main" / "uar-seed0") is not None   # the run is untouched
    assert any("scored again" in n for n in t.notes)


def test_import_refuses_an_existing_name_and_leaves_nothing_on_failure(results, release,
                                                                        tmp_path, monkeypatch):
    refs = raw_refs(release)
    generic = released_file(tmp_path / "g.csv", {k: GENERIC for k in refs}, refs)
    with pytest.raises(UarbenchError, match="already there.*--overwrite"):
        import_outputs(generic, name="published", out=results / "main", dataset="iu_xray",
                       data_root=release, skip_empty_references=True)
    bad = tmp_path / "bad.csv"
    bad.write_text("dicom_id,pred_report\ntest00,x\n")
    with pytest.raises(UarbenchError, match="reference id\\(s\\) without a prediction"):
        import_outputs(bad, name="broken", out=tmp_path / "suite", dataset="iu_xray",
                       data_root=release)
    import uarbench.evaluate

    def crash(**kwargs):       # fails after the temporary folder exists
        raise RuntimeError("killed while scoring")
    monkeypatch.setattr(uarbench.evaluate, "evaluate", crash)
    with pytest.raises(RuntimeError, match="killed"):
        import_outputs(generic, name="late", out=tmp_path / "suite", dataset="iu_xray",
                       data_root=release, skip_empty_references=True, scoring={"labeler": None})
    assert list((tmp_path / "suite").iterdir()) == []       # no run, no temporary folder


def test_clinical_efficacy_of_an_imported_file_names_labeler_and_convention(release, tmp_path):
    refs = raw_refs(release)
    path = released_file(tmp_path / "g.csv", near(refs, 3), refs)
    folder = import_outputs(path, name="sys", out=tmp_path / "main", dataset="iu_xray",
                            convention="dotspace-lower", skip_empty_references=True,
                            scoring={"bootstrap": 0})
    record = read_complete(folder)
    ce = record["metrics"]["CE-F1[micro-5-unc1]"]
    assert ce["value"] is not None
    assert "conv:dotspace-lower|ref:file|" in ce["signature"]
    assert "labeler:rules-v2" in ce["signature"]
    assert {"labels_pred.csv", "labels_ref.csv"} <= set(record["files"])
