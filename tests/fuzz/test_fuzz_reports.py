"""Fuzzing predictions / references files (``uarbench eval``) and reports files (``uarbench
label``).

Generates: five valid rows (id + text) written as JSON lines, CSV or a JSON list, as two files
(predictions, references) or one file with both columns, then one mutation of one file: ids
(missing, null, blank, bool, numbers, NaN, lists, objects, duplicated, changed, cut), rows
(dropped, added, not an object, nested 100,000 deep, too many CSV fields), text fields (missing,
null, blank, wrong type, 200,000-2,000,000 characters, quotes / delimiters / newlines / NUL /
Unicode line separators), columns (renamed, extra, ambiguous), encodings (latin-1, cp1252,
UTF-16, UTF-32, a UTF-8 BOM), bytes (cut short, NUL bytes, random, empty, CRLF, blank lines,
a stray quote) and the path (missing, a folder).

Property: :func:`uarbench.evaluate.evaluate` (BLEU, ROUGE-L, rule-labeler CE, a 10-resample
bootstrap, writing to an output folder) and :func:`uarbench.labeling.label_file.label_file`
either succeed (only when the mutation can be harmless) or raise ``UarbenchError`` naming the
damaged file; never another exception, and after a failure no metrics.json,
per_report_stats.csv, labels_*.csv or labels CSV exists.
"""
from __future__ import annotations

import copy
import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzlib import (EITHER, MIN_CASES, MUST_FAIL, MUST_PASS, Tally, check, cut, fuzz_settings,
                     insert, scratch)
from uarbench.evaluate import LABEL_FILES, METRICS_FILE, PER_REPORT_FILE, evaluate
from uarbench.labeling.label_file import label_file
from uarbench.report_files import ColumnChoice

N_CASES = 220
N_LABEL_CASES = 300     # cheap; a third of its mutations (ids changed, rows added) are harmless
IDS = [f"CXR{1000 + i}_IM-{i:04d}" for i in range(5)]
TEXTS = ["The heart is normal. The lungs are clear.", "Mild cardiomegaly. No pleural effusion.",
         "Small left pleural effusion. No pneumothorax.", "No focal consolidation.",
         "Degenerative changes of the spine. Heart size normal."]
PREDS = ["The heart is normal. Lungs are clear.", "Cardiomegaly. No effusion.",
         "Left pleural effusion.", "No consolidation.", "Heart size normal."]
FORMATS = ("jsonl", "csv", "json")
BAD_IDS = [None, "", "   ", "\t", True, False, [], ["CXR1000"], {}, {"id": "x"}, float("nan"),
           float("inf")]
BAD_TEXTS = [5, 2.5, True, [], ["The heart is normal."], {"text": "normal"}]
ODD_TEXTS = ['He said "no effusion", then left.', "a,b;c\td", "line one\nline two\r\nthree",
             "no\x00effusion", "effusion\u2028 resolved", "next\x85line", "para\u2029graph",
             "\ufeffBOM inside", "🫁 lungs clear", "\u202eright-to-left", "=SUM(A1)", "'quoted'"]
OTHER_COLUMNS = ["score", "model", "notes", "split"]
CANDIDATE_COLUMNS = ["generated_report", "reference_report", "report", "study_id", "dicom_id",
                     "ground_truth"]


class File:
    """One input file: rows (dicts, in column order) and how it is written."""

    def __init__(self, name: str, fmt: str, rows: list[dict]) -> None:
        self.name, self.fmt, self.rows = f"{name}.{fmt}", fmt, rows
        self.raw: bytes | None = None          # bytes written instead of rows
        self.kind = "file"                     # "file" | "missing" | "folder"

    def text(self) -> str:
        if self.fmt == "jsonl":
            return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.rows)
        if self.fmt == "json":
            return json.dumps(self.rows, ensure_ascii=False)
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in self.rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
        return buf.getvalue()

    def bytes(self) -> bytes:
        return self.raw if self.raw is not None else self.text().encode("utf-8")

    def write(self, folder):
        path = folder / self.name
        if self.kind == "folder":
            path.mkdir()
        elif self.kind == "file":
            path.write_bytes(self.bytes())
        return path


def text_field(role: str) -> str:
    return {"predictions": "prediction", "references": "reference", "reports": "report"}[role]


# --- mutations: (file, its role, draw) -> what must happen -------------------------------------
# roles: "predictions" / "references" (eval: paired by id), "both" (one eval file with both
# columns), "reports" (label: no pairing)

def unpaired(role: str) -> bool:
    """No other file to match ids with: a changed, added or dropped id is just another id."""
    return role in ("reports", "both")


def _row(f, draw) -> dict:
    return f.rows[draw(st.integers(0, len(f.rows) - 1), label="row")]


def _texts_of(role: str) -> list[str]:
    return {"predictions": ["prediction"], "references": ["reference"], "reports": ["report"],
            "both": ["prediction", "reference"]}[role]


def m_id_missing(f, role, draw):
    del _row(f, draw)["id"]
    return MUST_FAIL


def m_id_bad(f, role, draw):
    value = draw(st.sampled_from(BAD_IDS))
    _row(f, draw)["id"] = value
    if f.fmt == "csv" and value not in (None, "", "   ", "\t"):
        # CSV has no types: True, [] or nan are the strings "True", "[]", "nan": an id that the
        # other file does not have (eval), or just an odd id (label)
        return EITHER if unpaired(role) else MUST_FAIL
    return MUST_FAIL


def m_id_number(f, role, draw):
    _row(f, draw)["id"] = draw(st.integers(0, 10**6) | st.floats(0, 1e6, allow_nan=False))
    return EITHER if unpaired(role) else MUST_FAIL      # no longer the other file's id


def m_id_padded(f, role, draw):
    r = _row(f, draw)
    r["id"] = draw(st.sampled_from([" ", "  ", "\t"])) + r["id"] + " "
    return MUST_PASS                                         # ids are stripped


def m_id_duplicate(f, role, draw):
    a, b = draw(st.lists(st.integers(0, len(f.rows) - 1), min_size=2, max_size=2, unique=True))
    f.rows[b]["id"] = f.rows[a]["id"]
    return MUST_FAIL


def m_id_changed(f, role, draw):
    r = _row(f, draw)
    r["id"] = draw(st.sampled_from([r["id"][:3], r["id"] + "x", r["id"].lower(), "CXR9999"]))
    return EITHER if unpaired(role) else MUST_FAIL


def m_row_dropped(f, role, draw):
    f.rows.pop(draw(st.integers(0, len(f.rows) - 1)))
    return EITHER if unpaired(role) else MUST_FAIL


def m_row_added(f, role, draw):
    f.rows.append({**f.rows[0], "id": "CXR9999_IM-9999"})
    return EITHER if unpaired(role) else MUST_FAIL


def m_row_not_object(f, role, draw):
    if f.fmt == "csv":        # a CSV row with more fields than the header
        f.rows[draw(st.integers(0, len(f.rows) - 1))]["extra_without_header"] = "x"
        f.raw = _csv_extra_field(f)
        return MUST_FAIL
    f.rows[draw(st.integers(0, len(f.rows) - 1))] = draw(st.sampled_from(
        [None, 1, "row", [], ["CXR1000", "text"], True]))
    return MUST_FAIL


def _csv_extra_field(f) -> bytes:
    extra = "extra_without_header"
    columns = [c for c in dict.fromkeys(k for r in f.rows for k in r) if c != extra]
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in f.rows:
        w.writerow([r.get(c, "") for c in columns] + (["x"] if extra in r else []))
    return buf.getvalue().encode()


def m_deep(f, role, draw):
    depth = draw(st.sampled_from([1_000, 100_000]))
    r = _row(f, draw)
    key = draw(st.sampled_from(["id", *_texts_of(role)]))
    marker = "@@deep@@"
    r[key] = marker
    text = f.text()
    f.raw = text.replace(json.dumps(marker) if f.fmt != "csv" else marker,
                         "[" * depth + "]" * depth, 1).encode()
    # in a CSV the brackets are just text: an odd id or report
    if f.fmt == "csv":
        return EITHER if key != "id" or unpaired(role) else MUST_FAIL
    return MUST_FAIL


def m_text_missing(f, role, draw):
    key = draw(st.sampled_from(_texts_of(role)))
    del _row(f, draw)[key]
    if f.fmt == "csv":        # an empty cell
        return MUST_FAIL if key == "reference" else EITHER
    return MUST_FAIL


def m_text_null_or_blank(f, role, draw):
    key = draw(st.sampled_from(_texts_of(role)))
    _row(f, draw)[key] = draw(st.sampled_from([None, "", " ", "\n"]))
    return MUST_FAIL if key == "reference" else EITHER


def m_text_type(f, role, draw):
    key = draw(st.sampled_from(_texts_of(role)))
    _row(f, draw)[key] = draw(st.sampled_from(BAD_TEXTS))
    return EITHER if f.fmt == "csv" else MUST_FAIL


def m_text_odd(f, role, draw):
    key = draw(st.sampled_from(_texts_of(role)))
    _row(f, draw)[key] = draw(st.sampled_from(ODD_TEXTS) | st.text(min_size=1, max_size=40)
                              .filter(lambda s: s.strip()))
    return MUST_PASS


def m_text_huge(f, role, draw):
    key = draw(st.sampled_from(_texts_of(role)))
    n = draw(st.sampled_from([131_073, 200_000, 2_000_000]))
    _row(f, draw)[key] = ("no pleural effusion . " * (n // 22 + 1))[:n]
    return MUST_PASS


def m_extra_column(f, role, draw):
    name = draw(st.sampled_from(OTHER_COLUMNS + CANDIDATE_COLUMNS))
    value = draw(st.sampled_from(["x", "", None, 1]))
    for r in f.rows:
        r[name] = value
    return MUST_PASS if name in OTHER_COLUMNS else EITHER


def m_column_renamed(f, role, draw):
    old = draw(st.sampled_from(["id", *_texts_of(role)]))
    new = draw(st.sampled_from(["generated_report", "pred_report", "reference_report",
                                "study_id", "dicom_id", "ID", "Report", "text", "", " id "]))
    for r in f.rows:
        r[new] = r.pop(old)
    return EITHER


def m_truncate(f, role, draw):
    raw = f.bytes()
    at = draw(st.integers(0, len(raw) - 2))
    f.raw = cut(raw, at)
    if f.fmt == "csv":      # a CSV cut inside its last text is a shorter report
        return EITHER
    if f.fmt == "jsonl" and unpaired(role) and f.raw.strip() and b"\n" in (raw[at - 1:at],
                                                                              raw[at:at + 1]):
        return MUST_PASS    # cut at the end of a line: fewer rows, and nothing to pair them with
    return MUST_FAIL        # JSON / JSON lines lose their syntax, or rows the other file has


def m_nul_bytes(f, role, draw):
    raw = f.bytes()
    f.raw = insert(raw, draw(st.integers(0, len(raw))), b"\x00" * draw(st.integers(1, 3)))
    return EITHER if f.fmt == "csv" else MUST_FAIL


def m_stray_quote(f, role, draw):
    raw = f.bytes()
    f.raw = insert(raw, draw(st.integers(0, len(raw))), b'"')
    return EITHER if f.fmt == "csv" else MUST_FAIL


def m_encoding(f, role, draw):
    key = draw(st.sampled_from(_texts_of(role)))
    for r in f.rows:
        r[key] = "Épanchement pleural à droite. Cœur normal."
    enc = draw(st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32",
                                "utf-8-sig"]))
    text = f.text()
    if enc == "latin-1":
        text = text.replace("œ", "oe")
    f.raw = text.encode(enc)
    return MUST_PASS if enc == "utf-8-sig" else MUST_FAIL


def m_line_endings(f, role, draw):
    how = draw(st.sampled_from(["crlf", "blank lines", "no final newline", "bom"]))
    text = f.text()
    if how == "crlf":
        text = text.replace("\n", "\r\n")
    elif how == "blank lines":
        text = text.replace("\n", "\n\n", 2) + "\n\n"
    elif how == "no final newline":
        text = text.rstrip("\n")
    f.raw = (b"\xef\xbb\xbf" if how == "bom" else b"") + text.encode("utf-8")
    return MUST_PASS


def m_garbage(f, role, draw):
    f.raw = draw(st.binary(min_size=1, max_size=300) | st.sampled_from(
        [b"", b"\n\n", b"id,prediction,reference\n", b"{}", b"[]", b"null", b"\xef\xbb\xbf",
         b"id\n", b"\xff\xfe"]))
    return MUST_FAIL


def m_not_a_file(f, role, draw):
    f.kind = draw(st.sampled_from(["missing", "folder"]))
    return MUST_FAIL


MUTATIONS = {fn.__name__[2:]: fn for fn in (
    m_id_missing, m_id_bad, m_id_number, m_id_padded, m_id_duplicate, m_id_changed,
    m_row_dropped, m_row_added, m_row_not_object, m_deep, m_text_missing, m_text_null_or_blank,
    m_text_type, m_text_odd, m_text_huge, m_extra_column, m_column_renamed, m_truncate,
    m_nul_bytes, m_stray_quote, m_encoding, m_line_endings, m_garbage, m_not_a_file)}


def eval_files(layout: str, pred_fmt: str, ref_fmt: str) -> list[File]:
    if layout == "one file":
        return [File("both", pred_fmt, [{"id": i, "prediction": p, "reference": r}
                                        for i, p, r in zip(IDS, PREDS, TEXTS)])]
    return [File("preds", pred_fmt, [{"id": i, "prediction": p} for i, p in zip(IDS, PREDS)]),
            File("refs", ref_fmt, [{"id": i, "reference": r} for i, r in zip(IDS, TEXTS)])]


def test_fuzz_predictions_and_references():
    tally = Tally()

    @fuzz_settings(N_CASES)
    @given(st.data())
    def one(data):
        draw = data.draw
        layout = draw(st.sampled_from(["two files", "one file"]), label="layout")
        files = eval_files(layout, draw(st.sampled_from(FORMATS)), draw(st.sampled_from(FORMATS)))
        target = draw(st.sampled_from(files), label="damaged file")
        role = "both" if layout == "one file" else (
            "predictions" if target is files[0] else "references")
        name = draw(st.sampled_from(sorted(MUTATIONS)), label="mutation")
        target.rows = copy.deepcopy(target.rows)
        expect = MUTATIONS[name](target, role, draw)
        tally.mutations[f"{name} ({target.fmt})"] += 1
        with scratch() as d:
            paths = [f.write(d) for f in files]
            out = d / "scores"
            outputs = [out / METRICS_FILE, out / PER_REPORT_FILE,
                       *(out / n for n in LABEL_FILES.values())]
            check(lambda: evaluate(predictions=paths[0],
                                   references=paths[1] if len(paths) == 2 else None,
                                   metrics=["BLEU", "ROUGE-L"], labeler="rules", bootstrap=10,
                                   out_dir=out),
                  expect=expect, names=[target.name], outputs=outputs, tally=tally,
                  what=f"{name} on {target.name} ({layout})")

    one()
    print(tally.summary("predictions / references"))
    assert tally.cases >= N_CASES and tally.malformed >= MIN_CASES, tally.summary("eval")


def test_fuzz_label_reports():
    tally = Tally()

    @fuzz_settings(N_LABEL_CASES)
    @given(st.data())
    def one(data):
        draw = data.draw
        f = File("reports", draw(st.sampled_from(FORMATS)),
                 [{"id": i, "report": r} for i, r in zip(IDS, TEXTS)])
        name = draw(st.sampled_from(sorted(MUTATIONS)), label="mutation")
        expect = MUTATIONS[name](f, "reports", draw)
        tally.mutations[f"{name} ({f.fmt})"] += 1
        with scratch() as d:
            path = f.write(d)
            out = d / "labels" / "labels.csv"
            check(lambda: label_file(path, out), expect=expect, names=[f.name], outputs=[out],
                  tally=tally, what=f"{name} on {f.name}")

    one()
    print(tally.summary("label reports"))
    assert tally.cases >= N_LABEL_CASES and tally.malformed >= MIN_CASES, tally.summary("label")


# --- the classes this fuzzing found (each failed before its fix), as fixed cases --------------

@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_separators_inside_json_lines(tmp_path, separator):
    """str.splitlines() cut a JSON line at U+2028 / U+2029 / U+0085, which json.dumps(...,
    ensure_ascii=False) (our own writer too) leaves unescaped: "invalid JSON" for a valid file."""
    text = f"the heart is normal {separator} no effusion ."
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "prediction": text}, ensure_ascii=False)
                             + "\n" for i in IDS), encoding="utf-8")
    refs = tmp_path / "r.jsonl"
    refs.write_text("".join(json.dumps({"id": i, "reference": t}, ensure_ascii=False) + "\n"
                            for i, t in zip(IDS, TEXTS)), encoding="utf-8")
    ev = evaluate(predictions=preds, references=refs, metrics=["BLEU"], labeler=None,
                  bootstrap=0)
    assert ev.metrics["BLEU-1"].value is not None
    assert label_file(preds, tmp_path / "l.csv", field="prediction").is_file()


@pytest.mark.parametrize("value", [["CXR1000"], {"id": 1}, float("nan"), float("inf")],
                         ids=["list", "object", "NaN", "inf"])
def test_ids_that_are_not_strings_or_numbers(tmp_path, value):
    """A list id became the study "['CXR1000']" (label wrote it; eval blamed the pairing)."""
    from uarbench.errors import UarbenchError
    path = tmp_path / "reports.jsonl"
    rows = [{"id": value if i == 0 else k, "report": t} for i, (k, t) in enumerate(zip(IDS, TEXTS))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for call in (lambda: label_file(path, tmp_path / "l.csv"),
                 lambda: evaluate(predictions=path, references=path, metrics=["BLEU"],
                                  labeler=None, bootstrap=0, columns=ColumnChoice(
                                      pred="report", ref="report"))):
        with pytest.raises(UarbenchError, match=r"reports.jsonl: record line 1: the id must be "
                                                r"a string or a number"):
            call()
    assert not (tmp_path / "l.csv").exists()
