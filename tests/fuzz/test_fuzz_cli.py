"""End to end: the ``uarbench`` command on inputs of each class the fuzz tests found.

Generates nothing at random: one input per class (an annotation nested 100,000 deep, a PNG header
claiming a 2^31-pixel-wide image, a references file with a list as an id, a prediction holding
U+2028, a 200,000-character CSV field, a reports file with a null id, a benchmark file whose
[metrics] is a string, a results folder whose run.json has a list as provenance (with
--strict), and per-report statistics holding NaN with a matching hash). The commands run
as real processes, all at once (each pays the interpreter and torch start-up: about 3 s).

Property: the exit status is the documented one (0 success, 1 compare --strict with problems,
2 bad input), stderr holds no "Traceback" and names the file, and a failed command leaves no
output file.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compare"))
from fuzzlib import PNG, png_header_only  # noqa: E402
from test_table import references, write_run  # noqa: E402


def _release(root: Path, annotation: str | None = None, bad_image: bytes | None = None) -> Path:
    items = {s: [{"id": f"{s}{i}", "report": "The heart is normal. No effusion.",
                  "image_path": [f"{s}{i}/0.png", f"{s}{i}/1.png"]} for i in range(2)]
             for s in ("train", "val", "test")}
    for its in items.values():
        for it in its:
            for rel in it["image_path"]:
                (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / "images" / rel).write_bytes(PNG)
    if bad_image is not None:
        (root / "images" / "test1" / "0.png").write_bytes(bad_image)
    (root / "annotation.json").write_text(annotation or json.dumps(items))
    return root


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _cases(d: Path) -> dict[str, tuple[list[str], int, str, list[Path]]]:
    """name -> (arguments, exit status, text stderr must hold, files that must not exist)."""
    from uarbench.provenance import file_sha256
    cases = {}
    # eval reads ./benchmark.toml: BLEU and ROUGE-L only (METEOR's JVM takes 20 s to start)
    (d / "benchmark.toml").write_text('[benchmark]\nversion = "fuzz"\n[metrics]\n'
                                      'nlg = ["BLEU", "ROUGE-L"]\n')
    deep = '{"train": ' + "[" * 100_000 + "]" * 100_000 + ', "val": [], "test": []}'
    root = _release(d / "deep", annotation=deep)
    cases["annotation nested deeply"] = (
        ["data", "info", "--dataset", "iu_xray", "--data-root", str(root)], 2,
        "annotation.json: JSON nested too deeply", [])
    root = _release(d / "bomb", bad_image=png_header_only(2**31 - 1, 2**31 - 1))
    cases["PNG header claiming a huge image"] = (
        ["data", "info", "--dataset", "iu_xray", "--data-root", str(root)], 2,
        "missing or unreadable images", [])

    ids = ["s1", "s2", "s3"]
    preds = _jsonl(d / "preds.jsonl", [{"id": i, "prediction": "the heart is normal \u2028 ."}
                                        for i in ids])
    refs = _jsonl(d / "refs.jsonl", [{"id": ["s1"] if i == "s2" else i,
                                      "reference": "the heart is normal ."} for i in ids])
    out = d / "eval-bad"
    cases["references with a list as an id"] = (
        ["eval", str(preds), str(refs), "--labeler", "none", "--bootstrap", "0", "--out",
         str(out)], 2, "refs.jsonl: record line 2: the id must be a string or a number",
        [out / "metrics.json", out / "per_report_stats.csv"])
    long_csv = d / "long.csv"
    long_csv.write_text("id,prediction,reference,notes\n" + "".join(   # notes: not scored
        f'{i},no effusion .,no effusion .,"{"no effusion . " * 15_000}"\n' for i in ids))
    cases["U+2028 in a prediction, a 200,000-character CSV field"] = (
        ["eval", str(preds), str(long_csv), "--ref-col", "reference", "--labeler", "none",
         "--bootstrap", "0", "--out", str(d / "eval-ok")], 0, "", [])

    reports = _jsonl(d / "reports.jsonl", [{"id": None, "report": "no effusion ."}])
    cases["label: a null id"] = (
        ["label", "--reports", str(reports), "--out", str(d / "labels.csv")], 2,
        "reports.jsonl: record line 1: blank or missing id", [d / "labels.csv"])

    bench = d / "bench.toml"
    bench.write_text('metrics = "BLEU"\n[benchmark]\nversion = "x"\n')
    cases["validate: [metrics] is a string"] = (
        ["validate", str(bench)], 2, "bench.toml: invalid benchmark file: metrics must be a table",
        [])

    results = d / "results"
    refs_texts = references(n=8)
    a = write_run(results, "s", "a", 0, refs_texts, refs_texts, trained=True)
    write_run(results, "s", "b", 0, refs_texts, refs_texts, trained=True)
    record = json.loads((a / "run.json").read_text())
    record["provenance"] = ["not", "a", "table"]
    (a / "run.json").write_text(json.dumps(record))
    table = d / "table.md"
    cases["compare --strict: a damaged run.json"] = (
        ["compare", str(results), "--no-significance", "--strict", "--out", str(table)], 1,
        "damaged run.json: provenance is a list", [table])

    results2 = d / "results2"
    write_run(results2, "s", "a", 0, refs_texts, refs_texts, trained=True)
    b = write_run(results2, "s", "b", 0, refs_texts, refs_texts, trained=True)
    stats = b / "per_report_stats.csv"
    lines = stats.read_text().splitlines()
    lines[1] = ",".join(lines[1].split(",")[:1] + ["nan"] * (len(lines[1].split(",")) - 1))
    stats.write_text("\n".join(lines) + "\n")
    record = json.loads((b / "run.json").read_text())
    record["files"]["per_report_stats.csv"] = file_sha256(stats)
    (b / "run.json").write_text(json.dumps(record))
    cases["compare: NaN statistics with a matching hash"] = (
        ["compare", str(results2), "--resamples", "20", "--trials", "20", "--out",
         str(d / "table3.md")], 2, "per_report_stats.csv: not a readable per-report statistics",
        [d / "table3.md"])
    return cases


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Every case's process, started together (the 2-core CI machine overlaps their start-up)."""
    d = tmp_path_factory.mktemp("fuzz-cli")
    cases = _cases(d)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = {name: subprocess.Popen([sys.executable, "-m", "uarbench.cli", *args], cwd=d,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name, (args, *_rest) in cases.items()}
    done = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=300)
        done[name] = (p.returncode, out, err)
    return cases, done


CASE_NAMES = ["annotation nested deeply", "PNG header claiming a huge image",
              "references with a list as an id",
              "U+2028 in a prediction, a 200,000-character CSV field", "label: a null id",
              "validate: [metrics] is a string", "compare --strict: a damaged run.json",
              "compare: NaN statistics with a matching hash"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_cli_case(cli_runs, name):
    cases, done = cli_runs
    args, status, says, absent = cases[name]
    code, out, err = done[name]
    assert "Traceback" not in err and "Traceback" not in out, err
    assert code == status, f"uarbench {' '.join(args)[:200]}: exit {code}\n{err[-2000:]}"
    assert says in err, err[-2000:]
    left = [str(p) for p in absent if p.exists()]
    assert not left, f"a failed command left {left}"
