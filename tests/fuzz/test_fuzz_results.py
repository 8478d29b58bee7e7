"""Fuzzing result folders as ``uarbench compare`` reads them.

Generates: a valid results folder written by the project's own writers (suite ``s``: trained
rows ``a`` (seeds 0, 1) and ``b`` (seed 0) and the floor ``constant``; evaluate +
write_run_record, as tests/compare/test_table.py does), then one mutation of one run folder:
its ``run.json`` (cut short, random bytes, not UTF-8, nested 50,000 deep, a list, a number;
schema version, seed, row, run, model, metrics, one metric entry, its value (NaN, inf,
"0.5", null, true, a list), its signature, higher_is_better, files, dataset, spec, provenance,
source / config / citation of an imported run, unknown keys), the files it lists
(metrics.json, per_report_stats.csv, predictions.jsonl, train_log.jsonl: cut short, random
bytes, latin-1, columns and ids changed, NaN and text in number columns), with or without the
recorded sha256 updated to match, and the folder itself (deleted files, a folder where a file
was, a copied run folder, an edited seed, an error.log, every run damaged).

Property: :func:`uarbench.compare.table.build_comparison` (with and without CIs and tests), then
every table format, either returns a table or raises ``UarbenchError`` naming a file of the
damaged folder (unreadable per-report statistics with a matching hash, the documented error)
or the results folder (no complete run left); never another exception. A run folder that is no
longer complete, a seed held by two folders and a non-finite metric value each become one of
``table.problems`` (stderr warnings; ``--strict`` fails on them); a null value makes its cell
"—".
"""
from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzlib import MIN_CASES, Tally, cut, fuzz_settings, scratch
from uarbench.compare.formats import FORMATS, write_table
from uarbench.compare.table import build_comparison
from uarbench.errors import UarbenchError
from uarbench.provenance import file_sha256
from uarbench.store import read_complete

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compare"))
from test_table import references, write_run  # noqa: E402

N_CASES = 220
SUITE = "s"
RUNS = {"a-seed0": ("a", 0), "a-seed1": ("a", 1), "b-seed0": ("b", 0),
        "constant-seed0": ("constant", 0)}
LISTED = ["metrics.json", "per_report_stats.csv", "predictions.jsonl", "train_log.jsonl"]


@pytest.fixture(scope="module")
def base_results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-results")
    refs = references(n=12)
    worse = {k: " ".join(v.split()[:-2]) + " ." for k, v in refs.items()}
    write_run(root, SUITE, "a", 0, refs, refs, trained=True)
    write_run(root, SUITE, "a", 1, worse, refs, trained=True)
    write_run(root, SUITE, "b", 0, worse, refs, trained=True)
    write_run(root, SUITE, "constant", 0, {k: "the heart is normal ." for k in refs}, refs,
              model="constant")
    bench = root / "benchmark.toml"
    bench.write_text('[benchmark]\nversion = "t"\n[suites.s]\nrows = [ { name = "constant", '
                     'model = "constant" }, { name = "a", model = "uar" }, { name = "b", '
                     'model = "uar" } ]\n')
    return root


class Damage:
    """What one mutation did, and what the table must then say."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.expect: str | None = None      # "nonfinite" | "duplicate" | "null" | None
        self.metric: str | None = None


def load(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))


def save(run_dir: Path, record: object, rehash: bool = False) -> None:
    if rehash and isinstance(record, dict):
        record["files"] = {f: file_sha256(run_dir / f) if (run_dir / f).is_file() else sha
                           for f, sha in record.get("files", {}).items()}
    (run_dir / "run.json").write_text(json.dumps(record, allow_nan=True), encoding="utf-8")


odd_values = st.sampled_from([None, True, 0, -1, 1.5, "x", "", [], [1], {}, {"a": 1},
                              float("nan"), 10**30])


def m_run_json_bytes(run_dir, dmg, draw):
    raw = (run_dir / "run.json").read_bytes()
    how = draw(st.sampled_from(["cut", "garbage", "latin-1", "deep", "list", "number", "empty",
                                "folder", "deleted"]))
    path = run_dir / "run.json"
    if how == "cut":
        path.write_bytes(cut(raw, draw(st.integers(0, len(raw) - 2))))
    elif how == "garbage":
        path.write_bytes(draw(st.binary(max_size=200)))
    elif how == "latin-1":
        path.write_bytes(raw.replace(b'"run"', '"rün"'.encode("latin-1"), 1))
    elif how == "deep":
        path.write_text("[" * 50_000 + "]" * 50_000)
    elif how == "list":
        path.write_text(json.dumps([load(run_dir)]))
    elif how == "number":
        path.write_text("1")
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "folder":
        path.unlink()
        path.mkdir()
    else:
        path.unlink()


def m_record_field(run_dir, dmg, draw):
    record = load(run_dir)
    key = draw(st.sampled_from(["schema_version", "seed", "row", "run", "model", "metrics",
                                "files", "dataset", "spec", "provenance", "config", "device",
                                "benchmark_version", "preset", "wall_s", "suite"]))
    value = draw(odd_values)
    if draw(st.booleans()):
        record.pop(key, None)
    else:
        record[key] = value
    save(run_dir, record)


def m_seed_edit(run_dir, dmg, draw):
    """An edited seed (a row's other seed: counted twice) or a copied folder."""
    record = load(run_dir)
    how = draw(st.sampled_from(["edit", "copy", "new seed", "negative", "huge"]))
    row, seed = RUNS[dmg.run]
    if how == "copy":
        shutil.copytree(run_dir, run_dir.parent / f"{dmg.run}-copy")
        dmg.expect = "duplicate"
        return
    if how == "edit":
        others = [s for r, s in RUNS.values() if r == row and s != seed]
        if not others:
            return
        record["seed"] = others[0]
        dmg.expect = "duplicate"
    else:
        record["seed"] = {"new seed": 7, "negative": -1, "huge": 10**30}[how]
    save(run_dir, record)


def m_row_edit(run_dir, dmg, draw):
    record = load(run_dir)
    record["row"] = draw(st.sampled_from(["a", "b", "constant", "", " ", "new row", "a/b",
                                          "ü" * 300]))
    if RUNS[dmg.run][1] == 0 and record["row"] in ("a", "b", "constant") \
            and record["row"] != RUNS[dmg.run][0]:
        dmg.expect = "duplicate"          # the other row's seed 0
    save(run_dir, record)


def m_metric_entry(run_dir, dmg, draw):
    record = load(run_dir)
    name = draw(st.sampled_from(sorted(record["metrics"])))
    how = draw(st.sampled_from(["value", "entry", "signature", "higher_is_better", "drop",
                                "unavailable", "extra metric"]))
    entry = record["metrics"][name]
    dmg.metric = name
    if how == "value":
        value = draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), "NaN", "0.5",
                                      None, True, [], {}, [0.5], 1e308, -5, 0]))
        entry["value"] = value
        if value is None:
            dmg.expect = "null"
        elif not (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value)):
            dmg.expect = "nonfinite"
    elif how == "entry":
        record["metrics"][name] = draw(odd_values)
    elif how == "signature":
        entry["signature"] = draw(odd_values)
    elif how == "higher_is_better":
        entry["higher_is_better"] = draw(odd_values)
    elif how == "drop":
        del record["metrics"][name]
    elif how == "unavailable":
        entry.update(value=None, unavailable=draw(odd_values))
        dmg.expect = "null"
    else:
        record["metrics"][draw(st.text(max_size=12))] = draw(st.fixed_dictionaries(
            {"value": odd_values, "signature": odd_values}))
    save(run_dir, record)


def m_record_nested(run_dir, dmg, draw):
    """Nested parts compare reads for the provenance, the dataset name and imported rows."""
    record = load(run_dir)
    how = draw(st.sampled_from(["provenance", "git", "versions", "dataset name", "imported",
                                "citation", "_run_dir", "unknown key"]))
    if how == "provenance":
        record["provenance"] = draw(odd_values)
    elif how == "git":
        record["provenance"]["git"] = draw(odd_values)
    elif how == "versions":
        record["provenance"]["versions"] = draw(odd_values)
    elif how == "dataset name":
        record["dataset"]["name"] = draw(odd_values)
    elif how == "imported":
        record["source"] = "imported"
        record["config"] = draw(odd_values)
    elif how == "citation":
        record.update(source="imported", citation=draw(odd_values))
    elif how == "_run_dir":
        record["_run_dir"] = draw(odd_values)
    else:
        record[draw(st.text(max_size=10))] = draw(odd_values)
    save(run_dir, record)


def m_files_entry(run_dir, dmg, draw):
    record = load(run_dir)
    how = draw(st.sampled_from(["hash", "missing file", "outside", "absolute", "drop", "type"]))
    files = record["files"]
    if how == "hash":
        files[draw(st.sampled_from(sorted(files)))] = "0" * 64
    elif how == "missing file":
        files["nope.txt"] = "0" * 64
    elif how == "outside":
        files["../../benchmark.toml"] = "0" * 64
    elif how == "absolute":
        files["/etc/hostname"] = "0" * 64
    elif how == "drop":
        files.pop(draw(st.sampled_from(sorted(files))))
    else:
        files[draw(st.sampled_from(sorted(files)))] = draw(odd_values)
    save(run_dir, record)


def m_listed_file(run_dir, dmg, draw):
    """Damage a file run.json lists; with ``rehash`` its recorded sha256 is updated to match."""
    name = draw(st.sampled_from([f for f in LISTED if (run_dir / f).is_file()]))
    path = run_dir / name
    raw = path.read_bytes()
    how = draw(st.sampled_from(["cut", "garbage", "latin-1", "empty", "deleted", "folder",
                                "no id column", "duplicate ids", "other ids", "nan", "text",
                                "u2028"]))
    if how == "cut":
        path.write_bytes(cut(raw, draw(st.integers(0, len(raw) - 2))))
    elif how == "garbage":
        path.write_bytes(draw(st.binary(max_size=300)))
    elif how == "latin-1":
        path.write_bytes(b"id,BLEU.len\n\xe9t\xe9,1\n" if name.endswith(".csv")
                         else raw + '{"id": "é"}\n'.encode("latin-1"))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "deleted":
        path.unlink()
    elif how == "folder":
        path.unlink()
        path.mkdir()
    elif name.endswith(".csv"):
        lines = raw.decode().splitlines()
        if how == "no id column":
            lines[0] = lines[0].replace("id", "study", 1)
        elif how == "duplicate ids":
            lines.append(lines[1])
        elif how == "other ids":
            lines[1] = "other" + lines[1][lines[1].index(","):]
        elif how == "nan":
            cells = lines[1].split(",")
            lines[1] = ",".join(cells[:1] + ["nan"] * (len(cells) - 1))
        elif how == "text":
            cells = lines[2].split(",")
            lines[2] = ",".join(cells[:1] + ["n/a"] * (len(cells) - 1))
        else:
            lines[1] = lines[1] + "\u2028"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        text = raw.decode()
        path.write_text(text.replace('"the', '"\u2028the', 1) if how == "u2028"
                        else text + {"no id column": '{"prediction": "x"}\n',
                                     "duplicate ids": text.splitlines()[0] + "\n",
                                     "other ids": '{"id": "other", "prediction": "x"}\n',
                                     "nan": '{"id": NaN}\n', "text": "text\n"}[how],
                        encoding="utf-8")
    if draw(st.booleans(), label="rehash"):
        record = load(run_dir)
        if path.is_file():
            record["files"][name] = file_sha256(path)
        else:
            record["files"].pop(name, None)
        save(run_dir, record)


def m_folder(run_dir, dmg, draw):
    how = draw(st.sampled_from(["error.log", "empty run folder", "file as run folder",
                                "stray folder", "every run damaged", "hidden copy"]))
    suite = run_dir.parent
    if how == "error.log":
        (run_dir / "error.log").write_text("RuntimeError: out of memory\n")
        (run_dir / "run.json").unlink()
    elif how == "empty run folder":
        (suite / "z-seed3").mkdir()
    elif how == "file as run folder":
        (suite / "z-seed4").write_text("not a folder")
    elif how == "stray folder":
        (suite / "notes").mkdir()
        (suite / "notes" / "run.json").write_text("{}")
    elif how == "every run damaged":
        for run in RUNS:
            (suite / run / "run.json").write_text("{")
    else:
        shutil.copytree(run_dir, suite / f".{dmg.run}")


MUTATIONS = {f.__name__[2:]: f for f in (
    m_run_json_bytes, m_record_field, m_seed_edit, m_row_edit, m_metric_entry,
    m_record_nested, m_files_entry, m_listed_file, m_folder)}


def test_fuzz_result_folders(base_results):
    tally = Tally()

    @fuzz_settings(N_CASES)
    @given(st.data())
    def one(data):
        draw = data.draw
        name = draw(st.sampled_from(sorted(MUTATIONS)), label="mutation")
        run = draw(st.sampled_from(sorted(RUNS)), label="run")
        significance = draw(st.booleans(), label="significance")
        tally.mutations[name] += 1
        with scratch() as d:
            root = d / "results"
            shutil.copytree(base_results, root)
            run_dir = root / SUITE / run
            dmg = Damage(run)
            MUTATIONS[name](run_dir, dmg, draw)
            complete = read_complete(run_dir) is not None
            what = f"{name} on {run}"
            try:
                table = build_comparison(root, benchmark=root / "benchmark.toml",
                                         significance=significance, n_resamples=20, trials=20)
                for fmt in FORMATS.names():
                    write_table(table, fmt)
            except UarbenchError as e:
                text = str(e)
                named = str(run_dir) in text or text.startswith((f"{root}: ",
                                                                 f"{root / SUITE}: "))
                assert named, f"{what}: the error names no file of the damaged folder: {text}"
                tally.outcomes["refused"] += 1
                return
            problems = " | ".join(table.problems)
            row = RUNS[run][0]
            if not complete:
                assert run in problems, f"{what}: an incomplete run is no problem: {problems}"
            if dmg.expect == "duplicate" and complete:
                assert "run folders hold seed" in problems, f"{what}: {problems}"
            if dmg.expect == "nonfinite" and complete:
                assert "not a finite number" in problems and f"row {row!r}" in problems, \
                    f"{what}: {problems}"
            if dmg.expect == "null" and complete:
                assert table.cell(row, dmg.metric).mean is None, what
            flagged = bool(table.problems) or (dmg.expect == "null" and complete)
            tally.outcomes["flagged" if flagged else "accepted"] += 1

    one()
    print(tally.summary("result folders"))
    damaged = tally.outcomes["flagged"] + tally.outcomes["refused"]
    assert tally.cases >= N_CASES and damaged >= MIN_CASES, tally.summary("results")


# --- the classes this fuzzing found (each failed before its fix), as fixed cases --------------

def _edit_record(change):
    def mutate(run_dir):
        record = load(run_dir)
        change(record)
        save(run_dir, record)
    return mutate


def _nan_statistics(run_dir):
    path = run_dir / "per_report_stats.csv"
    lines = path.read_text().splitlines()
    cells = lines[1].split(",")
    lines[1] = ",".join(cells[:1] + ["nan"] * (len(cells) - 1))
    path.write_text("\n".join(lines) + "\n")
    record = load(run_dir)
    record["files"]["per_report_stats.csv"] = file_sha256(path)
    save(run_dir, record)


@pytest.mark.parametrize("mutate, says", [
    (_edit_record(lambda r: r.update(provenance=None)), "provenance is a null, not a dict"),
    (_edit_record(lambda r: r.update(provenance=[1])), "provenance is a list, not a dict"),
    (_edit_record(lambda r: r["provenance"].update(versions=None)), "provenance.versions"),
    (_edit_record(lambda r: r.update(source="imported", config=None)), "config is a null"),
    (_edit_record(lambda r: r["metrics"]["BLEU-1"].update(signature=None)),
     "metrics['BLEU-1'].signature is a null, not a str"),
    (_edit_record(lambda r: r["metrics"]["BLEU-1"].update(signature=["a"])),
     "signature is a list"),
    (_edit_record(lambda r: r["metrics"]["BLEU-1"].update(higher_is_better="false")),
     "higher_is_better is a str, not a bool"),
], ids=["provenance null", "provenance list", "versions null", "imported config null",
        "signature null", "signature list", "higher_is_better string"])
def test_found_by_fuzzing_damaged_records(base_results, mutate, says):
    with scratch() as d:
        root = d / "results"
        shutil.copytree(base_results, root)
        mutate(root / SUITE / "a-seed0")
        table = build_comparison(root, benchmark=root / "benchmark.toml", significance=False)
        assert any("a-seed0: damaged run.json: " in p and says in p for p in table.problems), \
            table.problems
        assert table.cell("a", "BLEU-1").mean is None


def test_found_by_fuzzing_other_cases(base_results):
    with scratch() as d:
        root = d / "results"
        shutil.copytree(base_results, root)
        run = root / SUITE / "a-seed0"
        _edit_record(lambda r: r.update(_run_dir=True))(run)        # a key only compare sets
        _edit_record(lambda r: r["metrics"]["BLEU-1"].update(value=1e308))(root / SUITE /
                                                                           "a-seed1")
        table = build_comparison(root, benchmark=root / "benchmark.toml", significance=False)
        assert table.cell("a", "BLEU-1").mean == pytest.approx(5e307)     # no OverflowError
        _nan_statistics(root / SUITE / "b-seed0")
        with pytest.raises(UarbenchError, match="b-seed0/per_report_stats.csv: not a readable "
                                                "per-report statistics file"):
            build_comparison(root, benchmark=root / "benchmark.toml", n_resamples=20, trials=20)


def _predictions_replaced(text: str):
    def mutate(run_dir):
        path = run_dir / "predictions.jsonl"
        if text == "u2028":       # what the runner itself writes for such a prediction
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            rows[0]["prediction"] += " \u2028 ."
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        else:
            path.write_text(text)
        record = load(run_dir)
        record["files"]["predictions.jsonl"] = file_sha256(path)
        save(run_dir, record)
    return mutate


@pytest.mark.parametrize("text", ["u2028", '{"id": "study00"}\n', "[1]\n", "text\n"],
                         ids=["U+2028", "no prediction", "not an object", "not JSON"])
def test_rescore_reads_predictions_it_wrote_and_refuses_damaged_ones(base_results, text):
    with scratch() as d:
        root = d / "results"
        shutil.copytree(base_results, root)
        _predictions_replaced(text)(root / SUITE / "a-seed0")
        try:
            build_comparison(root, benchmark=root / "benchmark.toml", significance=False,
                             convention="dotspace")
        except UarbenchError as e:
            if text == "u2028":   # read as the runner wrote it; the made-up dataset is refused
                assert "predictions.jsonl" not in str(e) and "dataset has changed" in str(e)
            else:
                assert "a-seed0/predictions.jsonl" in str(e)
