"""Bad input of the classes found by fuzzing (issue 14) stops with one UarbenchError naming the
file: JSON nested too deeply, CSV fields over the csv module's default limit, blank ids for
`label`, run records of the wrong shape, unreadable per-report statistics, a seed counted
twice, non-finite metric values, unknown benchmark tables and repeated seeds."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from uarbench.cli import main
from uarbench.benchmark import load_benchmark
from uarbench.data.r2gen import read_annotation
from uarbench.errors import UarbenchError
from uarbench.store import read_complete
from uarbench.textfiles import read_rows, read_texts

DEEP = 100_000


def test_deeply_nested_json_is_one_clear_error(tmp_path):
    path = tmp_path / "annotation.json"
    path.write_text('{"train": ' + "[" * DEEP + "]" * DEEP + ', "val": [], "test": []}')
    with pytest.raises(UarbenchError, match="annotation.json: JSON nested too deeply"):
        read_annotation(path, tmp_path / "images", views=2)
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "a", "prediction": ' + "[" * DEEP + "]" * DEEP + "}\n")
    with pytest.raises(UarbenchError, match="p.jsonl: record line 1: JSON nested too deeply"):
        read_rows(preds)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("[" * DEEP + "]" * DEEP)
    assert read_complete(run) is None


def test_long_csv_fields_are_read(tmp_path):
    path = tmp_path / "reports.csv"
    long = "no pleural effusion . " * 20_000          # ~440,000 characters
    path.write_text(f"id,report\na,{long}\n")
    assert read_texts(path, "report") == {"a": long}


def test_label_refuses_blank_ids_like_eval(tmp_path, capsys):
    path = tmp_path / "reports.csv"
    path.write_text("id,report\n,no effusion .\n")
    assert main(["label", "--reports", str(path), "--out", str(tmp_path / "l.csv")]) == 2
    err = capsys.readouterr().err
    assert "reports.csv: record line 2: blank or missing id" in err
    assert not (tmp_path / "l.csv").exists()


@pytest.mark.parametrize("content", [
    "[1, 2]",                                               # a list, not a record
    '{"schema_version": 1, "files": [], "metrics": {}}',   # files of the wrong type
    '{"schema_version": 1, "files": {}, "suite": "s", "run": "r", "row": "r", "model": "m", '
    '"seed": "0", "metrics": {}, "spec": {}, "dataset": {}}',   # a seed that is not a number
])
def test_run_records_of_the_wrong_shape_are_incomplete(tmp_path, content):
    (tmp_path / "run.json").write_text(content)
    assert read_complete(tmp_path) is None


@pytest.fixture
def one_suite(tmp_path):
    import sys
    sys.path.insert(0, str(Path(__file__).parent / "compare"))
    from test_table import references, write_run
    refs = references()
    a = write_run(tmp_path, "s", "a", 0, refs, refs, trained=True)
    b = write_run(tmp_path, "s", "b", 0, refs, refs, trained=True)
    return tmp_path, a, b


def test_compare_sets_aside_a_seed_counted_twice(one_suite, capsys):
    from uarbench.compare.table import build_comparison
    root, a, b = one_suite
    shutil.copytree(b, root / "s" / "b-seed0-copy")
    t = build_comparison(root, significance=False)
    assert t.cell("b", "BLEU-4").mean is None and "incomplete" in t.cell("b", "BLEU-4").missing
    assert any("seed 0 of row 'b' also in" in i for r in t.rows if r.name == "b" for i in r.incomplete)
    assert t.cell("a", "BLEU-4").mean == pytest.approx(1.0)
    assert any("2 run folders hold seed 0" in n for n in t.notes)
    assert any("2 run folders hold seed 0" in p for p in t.problems)
    # the CLI warns on stderr and writes the table; --strict fails and writes nothing
    out = root / "table.md"
    assert main(["compare", str(root), "--no-significance", "--out", str(out)]) == 0
    assert "uarbench: warning: row 'b': 2 run folders hold seed 0" in capsys.readouterr().err
    assert out.is_file()
    out.unlink()
    assert main(["compare", str(root), "--no-significance", "--strict", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "--strict: 2 problem(s)" in err and not out.exists()


def test_compare_refuses_non_finite_values_and_unreadable_statistics(one_suite):
    from uarbench.compare.table import build_comparison
    from uarbench.provenance import file_sha256
    root, a, b = one_suite
    record = json.loads((b / "run.json").read_text())
    record["metrics"]["BLEU-4"]["value"] = "NaN"
    (b / "run.json").write_text(json.dumps(record))
    t = build_comparison(root, significance=False)
    assert t.cell("b", "BLEU-4").mean is None and "not a finite number" in t.cell(
        "b", "BLEU-4").missing
    stats = a / "per_report_stats.csv"
    stats.write_bytes(b"id,BLEU.len\n\xff\xfe,1\n")
    record = json.loads((a / "run.json").read_text())
    record["files"]["per_report_stats.csv"] = file_sha256(stats)     # hashes match
    (a / "run.json").write_text(json.dumps(record))
    with pytest.raises(UarbenchError, match="per_report_stats.csv: not a readable per-report"):
        build_comparison(root, metrics=["BLEU-1"], n_resamples=10, trials=10)


def test_benchmark_unknown_tables_and_repeated_seeds(tmp_path, capsys):
    from uarbench.runner.suite import load_suites
    path = tmp_path / "b.toml"
    path.write_text('[benchmark]\nversion = "x"\n[extra]\na = 1\n')
    with pytest.raises(UarbenchError, match=r"\[extra\]: unknown top-level key"):
        load_benchmark(path)
    path.write_text('[benchmark]\nversion = "x"\n[suites.s]\nseeds = [0, 0]\n'
                    'rows = [ { name = "c", model = "constant" } ]\n')
    with pytest.raises(UarbenchError, match=r"suites.s.seeds \[0, 0\] repeats a seed"):
        load_suites(load_benchmark(path))
    with pytest.raises(SystemExit):
        main(["run", "--suite", "smoke", "--seeds", "0,0", "--dry-run"])
    assert "seeds must not repeat" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["text", "truncated"])
def test_images_are_fully_decoded_when_checked_and_read(tmp_path, capsys, damage):
    import io

    from PIL import Image

    from conftest import toy_splits, write_release
    root = write_release(tmp_path / "rel", toy_splits())
    bad = root / "images" / "test1" / "0.png"
    if damage == "text":
        bad.write_text("not an image")
    else:
        buf = io.BytesIO()
        Image.new("L", (64, 64), 77).save(buf, format="PNG")
        bad.write_bytes(buf.getvalue()[:60])
    assert main(["data", "info", "--dataset", "iu_xray", "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "missing or unreadable images" in err and "test1" in err and "Traceback" not in err
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model", "nn_retrieval", "--dataset", "iu_xray", "--data-root",
                 str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: record test1: cannot read image" in err and not out.exists()


def test_a_repeated_row_name_is_reported_once_per_repeat(tmp_path):
    from uarbench.runner.suite import load_suites
    rows = ", ".join('{ name = "r%d", model = "constant" }' % (i % 3) for i in range(5))
    path = tmp_path / "b.toml"
    path.write_text(f'[benchmark]\nversion = "x"\n[suites.s]\nrows = [ {rows} ]\n')
    with pytest.raises(UarbenchError) as e:
        load_suites(load_benchmark(path))
    assert "rows[3].name 'r0' appears twice" in str(e.value)
    assert "rows[4].name 'r1' appears twice" in str(e.value)
    assert "rows[2]" not in str(e.value)
