"""Fuzzing ``benchmark.toml`` as ``uarbench validate`` reads it.

Generates: a valid benchmark file (every top-level table, two suites of floors and trained
rows with set / train overrides) with one mutation per case: unknown tables and keys, a table
that is a string / number / list, values of the wrong type or range (version, default dataset,
metric families, convention, synth-cxr build, runner preset / seeds / jobs, suite dataset /
preset / seeds / rows, row name / model / set / train / params: null-free TOML values such as
strings, booleans, floats with nan / inf, nested lists and tables), repeated seeds and row
names, arrays nested 1,000-50,000 deep, 3,000 rows, and the file's bytes (cut short, NUL bytes,
latin-1, UTF-16, a UTF-8 BOM, random bytes, a folder, missing).

Property: ``load_suites(load_benchmark(path))`` (``uarbench validate``) either succeeds (only
when the mutation can be harmless) or raises ``UarbenchError`` naming the benchmark file; never
another exception.
"""
from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzlib import (EITHER, MIN_CASES, MUST_FAIL, MUST_PASS, Tally, check, cut, fuzz_settings,
                     insert, scratch)
from uarbench.benchmark import load_benchmark
from uarbench.runner.suite import load_suites

N_CASES = 200
NAME = "fuzzbench.toml"

BASE = {
    "benchmark": {"version": "fuzz-0.1", "default_dataset": "synth-cxr"},
    "metrics": {"nlg": ["BLEU", "ROUGE-L", "CIDEr"], "convention": "r2gen"},
    "datasets": {"synth-cxr": {"n_train": 40, "n_val": 12, "n_test": 12, "size": 64, "seed": 0,
                               "report_style": "structured"}},
    "runner": {"preset": "cpu-small", "seeds": [0], "jobs": 1},
    "suites": {
        "smoke": {"description": "floors and one UAR", "synth": {"n_train": 20},
                  "train": {"epochs_stage1": 1}, "set": {"lsu": True},
                  "rows": [{"name": "constant", "model": "constant"},
                           {"name": "nn", "model": "nn_retrieval"},
                           {"name": "uar", "model": "uar", "set": {"tir": False},
                            "description": "no TIR"}]},
        "ablations": {"seeds": [0, 1, 2], "preset": "cpu-small", "dataset": "synth-cxr",
                      "rows": [{"name": "base", "model": "base",
                                "train": {"epochs_stage2": 1}},
                               {"name": "a_lsu", "model": "uar",
                                "set": {"cra_integration": False, "vq": {"hidden": 16}}}]},
    },
}
TABLES = list(BASE)
SUITES = list(BASE["suites"])


# --- a TOML writer for the generated values (inline tables; tomllib only reads) ---------------

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, Raw):
        return v.text
    raise TypeError(type(v))


def toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


class Raw:
    """TOML text spliced in as is (arrays nested deeper than a writer would go)."""

    def __init__(self, text: str) -> None:
        self.text = text


def toml(data: dict) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in data.items())


# --- generated values ---------------------------------------------------------------------------

scalars = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats()
           | st.text(max_size=12))
toml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=6)
not_a_table = st.one_of(scalars, st.lists(scalars, max_size=3))
not_a_string = st.one_of(st.booleans(), st.integers(), st.floats(), st.lists(scalars, max_size=2),
                         st.dictionaries(st.text(max_size=4), scalars, max_size=2))
bad_seeds = st.sampled_from([[], [-1], [0, 0], [1, 2, 1], [True], [1.5], [[0]], "0", 0, [0, "1"],
                             {"a": 0}])
bad_names = st.sampled_from(["", "has space", "a/b", "ü", "name\n", "..", 7, True, [], {}])


def suite(case, draw) -> dict:
    return case.data["suites"][draw(st.sampled_from(SUITES), label="suite")]


def row(case, draw) -> dict:
    rows = suite(case, draw)["rows"]
    return rows[draw(st.integers(0, len(rows) - 1), label="row")]


class Case:
    def __init__(self) -> None:
        self.data = copy.deepcopy(BASE)
        self.raw: bytes | None = None
        self.kind = "file"


def m_unknown_table(case, draw):
    key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in TABLES))
    case.data[key] = draw(toml_values)
    return MUST_FAIL


def m_table_not_table(case, draw):
    case.data[draw(st.sampled_from(TABLES))] = draw(not_a_table)
    return MUST_FAIL


def m_table_missing(case, draw):
    key = draw(st.sampled_from(TABLES))
    del case.data[key]
    return MUST_FAIL if key == "benchmark" else MUST_PASS   # version is required; the rest default


def m_version(case, draw):
    if draw(st.booleans()):
        del case.data["benchmark"]["version"]
    else:
        case.data["benchmark"]["version"] = draw(not_a_string)
    return MUST_FAIL


def m_default_dataset(case, draw):
    case.data["benchmark"]["default_dataset"] = draw(not_a_string | st.sampled_from(
        ["iu-xray", "synth", "", "SYNTH-CXR"]))
    return MUST_FAIL


def m_unknown_key(case, draw):
    """An unknown key in a table that lists its keys (runner, a suite, a row, synth-cxr)."""
    where = draw(st.sampled_from(["runner", "suite", "row", "synth"]))
    key = draw(st.sampled_from(["job", "seed", "rowz", "models", "n_trian", "Preset", ""]))
    target = {"runner": lambda: case.data["runner"], "suite": lambda: suite(case, draw),
              "row": lambda: row(case, draw),
              "synth": lambda: case.data["datasets"]["synth-cxr"]}[where]()
    target[key] = draw(toml_values)
    return MUST_FAIL


def m_nlg(case, draw):
    case.data["metrics"]["nlg"] = draw(st.sampled_from(
        ["BLEU", ["BLUE"], [1], [["BLEU"]], [{"BLEU": 1}], ["BLEU", "bleu"],
         {"BLEU": True}, 3]))
    return MUST_FAIL


def m_convention(case, draw):
    case.data["metrics"]["convention"] = draw(not_a_string | st.sampled_from(["R2Gen", "clean",
                                                                             ""]))
    return MUST_FAIL


def m_reference_mode(case, draw):
    case.data["metrics"]["reference_mode"] = draw(st.sampled_from(["clean", "compat"]))
    return MUST_FAIL


def m_synth(case, draw):
    how = draw(st.sampled_from(["not a table", "bad value"]))
    if how == "not a table":
        case.data["datasets"]["synth-cxr"] = draw(not_a_table)
        return MUST_FAIL
    field, value = draw(st.sampled_from(
        [("n_train", "40"), ("n_train", 0), ("n_val", -1), ("n_test", 1.5), ("size", 60),
         ("size", 8), ("seed", -3), ("seed", True), ("report_style", "fancy"),
         ("report_style", 3), ("version", "synth-cxr-v0")]))
    case.data["datasets"]["synth-cxr"][field] = value
    return MUST_FAIL


def m_runner(case, draw):
    how = draw(st.sampled_from(["not a table", "jobs", "preset", "seeds"]))
    if how == "not a table":
        case.data["runner"] = draw(not_a_table)
    elif how == "jobs":
        case.data["runner"]["jobs"] = draw(st.sampled_from([-1, "2", True, 1.5, [1], {}]))
    elif how == "preset":     # "smoke" takes the runner's preset
        case.data["runner"]["preset"] = draw(not_a_string | st.sampled_from(["gpu", "Paper"]))
    else:                     # "smoke" takes the runner's seeds
        case.data["runner"]["seeds"] = draw(bad_seeds)
    return MUST_FAIL


def m_suites(case, draw):
    how = draw(st.sampled_from(["not a table", "suite not a table", "empty"]))
    if how == "not a table":
        case.data["suites"] = draw(not_a_table)
        return MUST_FAIL
    if how == "empty":
        case.data["suites"] = {}
        return MUST_PASS
    case.data["suites"][draw(st.sampled_from(SUITES))] = draw(not_a_table)
    return MUST_FAIL


def m_suite_field(case, draw):
    s = suite(case, draw)
    key = draw(st.sampled_from(["dataset", "preset", "seeds", "synth", "train", "set", "rows"]))
    s[key] = draw({"dataset": not_a_string | st.sampled_from(["iu-xray", ""]),
                   "preset": not_a_string | st.sampled_from(["gpu", ""]),
                   "seeds": bad_seeds,
                   "synth": not_a_table, "train": not_a_table, "set": not_a_table,
                   "rows": st.sampled_from([[], {}, "rows", 0, [1, 2], [[]], [True],
                                            {"name": "a", "model": "constant"}])}[key])
    return MUST_FAIL


def m_suite_description(case, draw):
    suite(case, draw)["description"] = draw(toml_values)
    return EITHER


def m_row_not_table(case, draw):
    rows = suite(case, draw)["rows"]
    rows[draw(st.integers(0, len(rows) - 1))] = draw(not_a_table)
    return MUST_FAIL


def m_row_name(case, draw):
    r = row(case, draw)
    if draw(st.booleans()):
        del r["name"]
    else:
        r["name"] = draw(bad_names)
    return MUST_FAIL


def m_row_name_repeated(case, draw):
    rows = suite(case, draw)["rows"]
    rows.append({**rows[0]})
    return MUST_FAIL


def m_row_model(case, draw):
    r = row(case, draw)
    if draw(st.booleans()):
        del r["model"]
    else:
        r["model"] = draw(not_a_string | st.sampled_from(["UAR", "", "transformer", "constant "]))
    return MUST_FAIL


def m_row_tables(case, draw):
    r = row(case, draw)
    key = draw(st.sampled_from(["set", "train", "params"]))
    r[key] = draw(st.sampled_from(["lsu", "", 1, 1.5, True, [], ["lsu", True], [["lsu", True]],
                                   [1, 2]]))
    return MUST_FAIL


def m_row_override(case, draw):
    """A trained row's override naming no field, or a value of the wrong type."""
    trained = [(s, i) for s in SUITES for i, r in enumerate(BASE["suites"][s]["rows"])
               if r["model"] not in ("constant", "nn_retrieval")]
    s, i = draw(st.sampled_from(trained))
    r = case.data["suites"][s]["rows"][i]
    key, value = draw(st.sampled_from([
        ("set", {"lsu": "yes"}), ("set", {"lsu": 1}), ("set", {"no_such_field": 1}),
        ("set", {"d_model": 1.5}), ("set", {"d_model": "512"}), ("set", {"vq": 3}),
        ("set", {"vq": {"hidden": "16"}}), ("set", {"vq": {"nope": 1}}),
        ("train", {"epochs_stage1": "1"}), ("train", {"epochs_stage1": 1.5}),
        ("train", {"lr": "0.1"}), ("train", {"nope": 1}), ("params", {"text": "x"})]))
    r[key] = value
    return MUST_FAIL


def m_floor_overrides(case, draw):
    s = case.data["suites"]["smoke"]["rows"][draw(st.sampled_from([0, 1]))]
    s[draw(st.sampled_from(["set", "train"]))] = {"lsu": True}
    return MUST_FAIL


def m_deep(case, draw):
    depth = draw(st.sampled_from([1_000, 10_000, 50_000]))
    where = draw(st.sampled_from(["seeds", "nlg", "description", "new table"]))
    deep = Raw("[" * depth + "]" * depth)
    if where == "seeds":
        suite(case, draw)["seeds"] = deep
    elif where == "nlg":
        case.data["metrics"]["nlg"] = deep
    elif where == "description":
        suite(case, draw)["description"] = deep
    else:
        case.data["deep"] = deep
    return MUST_FAIL if where != "description" else EITHER


def m_many_rows(case, draw):
    n = draw(st.sampled_from([1_000, 3_000]))
    suite(case, draw)["rows"] = [{"name": f"r{i}", "model": "constant"} for i in range(n)]
    return MUST_PASS


def m_odd_text(case, draw):
    """Unicode, control characters and long strings where any string is fine."""
    text = draw(st.text(max_size=20) | st.sampled_from(["x" * 200_000, "tab\there", "\x00nul"]))
    if draw(st.booleans()):
        case.data["benchmark"]["version"] = text
    else:
        suite(case, draw)["description"] = text
    return MUST_PASS


def m_truncate(case, draw):
    raw = toml(case.data).encode()
    case.raw = cut(raw, draw(st.integers(0, len(raw) - 2)))
    return EITHER          # a cut at a line end is valid TOML without the later tables


def m_nul_bytes(case, draw):
    raw = toml(case.data).encode()
    case.raw = insert(raw, draw(st.integers(0, len(raw))), b"\x00")
    return MUST_FAIL


def m_encoding(case, draw):
    suite(case, draw)["description"] = "Épanchement, cœur"
    enc = draw(st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-32", "utf-8-sig"]))
    text = toml(case.data)
    case.raw = (text.replace("œ", "oe") if enc == "latin-1" else text).encode(enc)
    return MUST_PASS if enc == "utf-8-sig" else MUST_FAIL


def m_garbage(case, draw):
    case.raw = draw(st.binary(max_size=200) | st.sampled_from(
        [b"", b"[benchmark]", b"[benchmark]\nversion = 1", b"\xef\xbb\xbf", b"= =", b"[[suites]]"]))
    return MUST_FAIL


def m_not_a_file(case, draw):
    case.kind = draw(st.sampled_from(["missing", "folder"]))
    return MUST_FAIL


MUTATIONS = {f.__name__[2:]: f for f in (
    m_unknown_table, m_table_not_table, m_table_missing, m_version, m_default_dataset,
    m_unknown_key, m_nlg, m_convention, m_reference_mode, m_synth, m_runner, m_suites,
    m_suite_field, m_suite_description, m_row_not_table, m_row_name, m_row_name_repeated,
    m_row_model, m_row_tables, m_row_override, m_floor_overrides, m_deep, m_many_rows,
    m_odd_text, m_truncate, m_nul_bytes, m_encoding, m_garbage, m_not_a_file)}


def validate(path):
    """What ``uarbench validate FILE`` does."""
    return load_suites(load_benchmark(path))


def test_the_unmutated_benchmark_is_valid():
    with scratch() as d:
        path = d / NAME
        path.write_text(toml(BASE), encoding="utf-8")
        suites = validate(path)
        assert [len(s.rows) for s in suites.values()] == [3, 2]


def test_fuzz_benchmark_toml():
    run_fuzz(sorted(MUTATIONS), N_CASES)


def test_fuzz_row_tables_of_the_wrong_type():
    """A row's set / train / params that is not a table (found by this fuzzing: TypeError, or
    `set = ""` read as {})."""
    run_fuzz(["row_tables"], 30, min_malformed=1)


def run_fuzz(mutations: list[str], n_cases: int, min_malformed: int = MIN_CASES) -> None:
    tally = Tally()

    @fuzz_settings(n_cases)
    @given(st.data())
    def one(data):
        name = data.draw(st.sampled_from(mutations), label="mutation")
        case = Case()
        expect = MUTATIONS[name](case, data.draw)
        tally.mutations[name] += 1
        with scratch() as d:
            path = d / NAME
            if case.kind == "folder":
                path.mkdir()
            elif case.kind == "file":
                path.write_bytes(case.raw if case.raw is not None
                                 else toml(case.data).encode("utf-8"))
            check(lambda: validate(path), expect=expect, names=[NAME], tally=tally,
                  what=f"mutation {name}")

    one()
    print(tally.summary("benchmark.toml"))
    assert tally.cases >= n_cases and tally.malformed >= min_malformed, tally.summary("benchmark")


# --- the classes this fuzzing found (each failed before its fix), as fixed cases --------------

def _with(change) -> dict:
    data = copy.deepcopy(BASE)
    change(data)
    return data


@pytest.mark.parametrize("data, says", [
    (_with(lambda d: d.update(benchmark=5)), "benchmark must be a table"),
    (_with(lambda d: d.update(runner=[1])), "runner must be a table"),
    (_with(lambda d: d.update(metrics="BLEU")), "metrics must be a table"),
    (_with(lambda d: d["datasets"].update({"synth-cxr": 3})), "datasets.synth-cxr must be a table"),
    (_with(lambda d: d["datasets"]["synth-cxr"].update(n_train="40")),
     "n_train must be an integer"),
    (_with(lambda d: d["datasets"]["synth-cxr"].update(size=60)), "size must be at least 64"),
    (_with(lambda d: d["suites"]["smoke"]["rows"][2].update(model=["uar"])),
     "unknown model ['uar']"),
    (_with(lambda d: d["suites"]["ablations"].update(dataset={"a": 1})), "unknown dataset"),
    (_with(lambda d: d["metrics"].update(nlg=Raw("[" * 5_000 + "]" * 5_000))),
     "nested too deeply"),
], ids=["benchmark int", "runner list", "metrics string", "synth int", "synth n_train string",
        "synth size", "model list", "dataset table", "nested arrays"])
def test_found_by_fuzzing(data, says):
    from uarbench.errors import UarbenchError
    with scratch() as d:
        path = d / NAME
        path.write_text(toml(data), encoding="utf-8")
        with pytest.raises(UarbenchError) as e:
            validate(path)
        assert NAME in str(e.value) and says in str(e.value)


def test_a_bom_is_not_an_error():
    with scratch() as d:
        path = d / NAME
        path.write_bytes(b"\xef\xbb\xbf" + toml(BASE).encode())
        assert len(validate(path)) == 2
