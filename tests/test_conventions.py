"""Named scoring conventions: what each does to the text, their signatures, what happens when one
cannot run, benchmark.toml's default, ``--convention`` on run specs and ``--all-conventions``.
(Exactness against pycocoevalcap under each convention: tests/metrics/test_conventions_exact.py.)
Reports here are invented."""
from __future__ import annotations

import json

import pytest

from conftest import write_release
from uarbench.cli import main
from uarbench.benchmark import load_benchmark
from uarbench.conventions import CONVENTIONS, ORDER, make_convention
from uarbench.errors import UarbenchError
from uarbench.evaluate import convention_table, evaluate

TEXT = "The Heart is normal.  A 1.2-cm nodule,left apex..  No effusion."


def test_every_convention_is_registered_and_ordered():
    assert set(ORDER) == set(CONVENTIONS.names())
    assert ORDER[0] == "r2gen"


def test_dotspace_is_exactly_the_papers_transform():
    import re
    expected = re.sub(" +", " ", TEXT.replace(".", " ."))
    assert make_convention("dotspace").prepare([TEXT]) == [expected]
    assert make_convention("dotspace-lower").prepare([TEXT]) == [expected.lower()]
    assert "1 .2-cm nodule,left" in expected          # commas stay, numbers are split: as theirs


def test_r2gen_cleans_both_sides_and_compat_needs_a_dataset(toy_release):
    conv = make_convention("r2gen")
    assert conv.prepare([TEXT]) == conv.prepare_references([TEXT])
    assert conv.prepare([TEXT])[0].startswith("the heart is normal .")
    assert conv.signature_fields() == (("conv", "r2gen"), ("clean", "r2gen-iu"))
    assert make_convention("r2gen", cleaning="r2gen-mimic").signature_fields()[1] == (
        "clean", "r2gen-mimic")
    with pytest.raises(UarbenchError, match="r2gen_compat convention needs the dataset"):
        make_convention("r2gen_compat")
    with pytest.raises(UarbenchError, match="unknown scoring convention 'nope'"):
        make_convention("nope")


def test_signatures_name_convention_and_reference_source(toy_release):
    preds = {f"test{i}": "the lungs are clear ." for i in range(4)}
    by_dataset = evaluate(predictions=preds, dataset="iu_xray", data_root=toy_release,
                          convention="dotspace-lower", metrics=["BLEU"], labeler="rules",
                          bootstrap=0)
    assert by_dataset.metrics["BLEU-4"].signature.startswith(
        "BLEU-4|conv:dotspace-lower|ref:dataset|n:4|")
    assert "conv:dotspace-lower|ref:dataset" in by_dataset.metrics["CE-F1[macro-14-unc0]"].signature
    refs = {k: "The lungs are clear." for k in preds}
    by_file = evaluate(predictions=preds, references=refs, metrics=["BLEU"], labeler=None,
                       bootstrap=0)
    assert by_file.metrics["BLEU-4"].signature.startswith("BLEU-4|conv:r2gen|clean:r2gen-iu|ref:file|")


def test_ptb_without_java_is_unavailable_never_a_crash(monkeypatch, toy_release, tmp_path):
    import shutil
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "java"
                        else real(name, *a, **k))
    preds = {f"test{i}": "the lungs are clear ." for i in range(4)}
    ev = evaluate(predictions=preds, dataset="iu_xray", data_root=toy_release, convention="ptb",
                  labeler="rules", bootstrap=0, out_dir=tmp_path)
    assert all(r.value is None for r in ev.metrics.values())
    assert all("needs Java" in r.unavailable for r in ev.metrics.values())
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["metrics"]["BLEU-4"]["value"] is None
    table = convention_table(predictions=preds, dataset="iu_xray", data_root=toy_release,
                             metrics=["BLEU"])
    assert "ptb" not in table.conventions and "needs Java" in table.unavailable["ptb"]


def test_benchmark_convention_and_the_old_key(tmp_path):
    assert load_benchmark().convention == "r2gen"
    path = tmp_path / "b.toml"
    path.write_text('[benchmark]\nversion = "x"\n[metrics]\nconvention = "nope"\n'
                    'reference_mode = "clean"\n')
    with pytest.raises(UarbenchError) as e:
        load_benchmark(path)
    assert "metrics.convention: unknown convention 'nope'" in str(e.value)
    assert "metrics.reference_mode: replaced by metrics.convention" in str(e.value)


def test_run_specs_carry_a_non_default_convention_only():
    from uarbench.runner.runner import plan_suite
    plain = plan_suite("smoke")
    assert all("convention" not in dict(s.scoring) for s in plain)
    dot = plan_suite("smoke", scoring={"convention": "dotspace"})
    assert all(dict(s.scoring)["convention"] == "dotspace" for s in dot)
    assert plan_suite("smoke", scoring={"convention": "r2gen"}) == plain


def test_all_conventions_table_and_cli(tmp_path, capsys):
    reports = ["The heart is Normal. The lungs are clear.", "Mild cardiomegaly, no effusion.",
               "No pneumothorax. A 1.2-cm nodule.", "The lungs are clear. No effusion."]
    splits = {s: [{"id": f"{s}{i}", "report": reports[i % 4],
                   "image_path": [f"{s}{i}/0.png", f"{s}{i}/1.png"], "split": s}
                  for i in range(n)] for s, n in (("train", 8), ("val", 2), ("test", 4))}
    root = write_release(tmp_path / "rel", splits)
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": f"test{i}", "prediction": reports[(i + 1) % 4]})
                             + "\n" for i in range(4)))
    table = convention_table(predictions=preds, dataset="iu_xray", data_root=root,
                             metrics=["BLEU", "ROUGE-L"])
    assert table.conventions[:4] == ("r2gen", "r2gen_compat", "dotspace", "dotspace-lower")
    for conv in table.conventions:          # each column is that convention's own evaluate
        ev = evaluate(predictions=preds, dataset="iu_xray", data_root=root, convention=conv,
                      metrics=["BLEU", "ROUGE-L"], labeler=None, bootstrap=0)
        for m in ("BLEU-1", "BLEU-4", "ROUGE-L"):
            assert table.values[conv][m] == ev.metrics[m].value
    vals = [table.values[c]["BLEU-1"] for c in table.conventions]
    assert table.spread("BLEU-1") == pytest.approx(max(vals) - min(vals))
    assert table.values["dotspace"]["BLEU-1"] != table.values["r2gen"]["BLEU-1"]
    assert main(["eval", str(preds), "--dataset", "iu_xray", "--data-root", str(root),
                 "--all-conventions"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| metric   | r2gen ") and "spread (max - min)" in out
    written = json.loads((tmp_path / "all_conventions.json").read_text())
    assert set(written["conventions"]) == set(table.conventions)
    assert written["conventions"]["dotspace"]["signatures"]["BLEU-4"].startswith(
        "BLEU-4|conv:dotspace|ref:dataset|n:4|")
    assert main(["eval", str(preds), "--dataset", "iu_xray", "--data-root", str(root),
                 "--all-conventions", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["spread"]["BLEU-4"] is not None
