"""Reading id -> text files (predictions, references) as JSONL or CSV, with clear errors.

JSONL: one object per line with ``id`` and the text field (``prediction`` / ``reference``;
``report`` is accepted for references). CSV: a header row with the same column names.
Errors name the file, the line and the fix: non-UTF-8 bytes, bad JSON, missing fields, empty
files and duplicate ids.
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

from uarbench.errors import UarbenchError
from uarbench.io import jsonl_lines, parse_json


def read_texts(path: str | Path, field: str, *, aliases: tuple[str, ...] = ()) -> dict[str, str]:
    """Read an id -> text mapping from ``path`` (``.csv`` or JSON lines)."""
    path = Path(path)
    _, rows = read_rows(path)
    names = (field, *aliases)
    out: dict[str, str] = {}
    for where, row in rows:
        if "id" not in row or not any(n in row for n in names):
            raise UarbenchError(f"missing field(s): needs 'id' and {' or '.join(map(repr, names))}.",
                                file=path, record=where,
                                fix=f"write one {{\"id\": ..., \"{field}\": ...}} per line.")
        sid = study_id(row["id"])
        if sid is None:
            raise UarbenchError(id_problem(row["id"]), file=path, record=where,
                                fix="give every row its study id.")
        value = next(row[n] for n in names if n in row)
        if not isinstance(value, str):
            raise UarbenchError(f"{field!r} must be a string.", file=path, record=f"{sid} ({where})",
                                fix="write the text as a JSON string.")
        if sid in out:
            raise UarbenchError("duplicate id.", file=path, record=f"{sid} ({where})",
                                fix="keep one row per study id.")
        out[sid] = value
    if not out:
        raise UarbenchError("no records.", file=path, fix=f"write one row per study with id and {field}.")
    return out


def study_id(raw: object) -> str | None:
    """A row's id as text (``" CXR1 "`` -> "CXR1", 7 and 7.0 -> "7"), or None when the value is
    not an id: null, blank, true / false, a list or an object, NaN or infinity (each would
    otherwise become a study named "None", "True", "[1]" or "nan")."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        if raw.is_integer():
            raw = int(raw)
    if not isinstance(raw, (str, int, float)):
        return None
    return str(raw).strip() or None


def id_problem(raw: object) -> str:
    """Why :func:`study_id` refused ``raw``, in words."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return "blank or missing id."
    shown = json.dumps(raw, ensure_ascii=False)
    return f"the id must be a string or a number, not {shown[:40]}" + \
        ("..." if len(shown) > 40 else "") + "."


def is_csv(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".csv", ".tsv")


def read_rows(path: str | Path, *, header: bool = True) -> tuple[list[str], list[tuple[str, dict]]]:
    """(column names, [(where, row)]) of a CSV (``.csv`` / ``.tsv``), JSON (``.json``: a list of
    objects, or {id: text} read as columns id and text) or JSON-lines file.

    ``where`` is "line N" (the file's line). ``header=False`` reads a CSV without a header row:
    its columns are named "0", "1", ... (as pandas writes them). JSON lines: the columns are the
    keys in order of first appearance."""
    path = Path(path)
    if not path.is_file():
        raise UarbenchError("file not found.", file=path, fix="check the path.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UarbenchError(f"not valid UTF-8 (byte {e.start}, line {line}).", file=path,
                            fix="re-save the file as UTF-8.") from None
    if is_csv(path):
        return _csv_table(text, path, header)
    if path.suffix.lower() == ".json":
        rows = _json_rows(text, path)
    else:
        rows = list(_jsonl_rows(text, path))
    columns = list(dict.fromkeys(k for _, row in rows for k in row))
    return columns, rows


def _json_rows(text: str, path: Path) -> list[tuple[str, dict]]:
    """A ``.json`` file: a list of objects (one per report) or an {id: text} object."""
    data = parse_json(text, path, fix="repair the file, or write JSON lines (.jsonl).")
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return [(f"key {k!r}", {"id": k, "text": v}) for k, v in data.items()]
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return [(f"item {k}", r) for k, r in enumerate(data)]
    raise UarbenchError("a .json file must hold a list of objects or an {id: text} object.",
                        file=path, fix="write one object per report, or JSON lines (.jsonl).")


def _jsonl_rows(text: str, path: Path):
    for n, line in enumerate(jsonl_lines(text), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UarbenchError(f"invalid JSON: {e.msg} (column {e.colno}).", file=path,
                                record=f"line {n}", fix="write one JSON object per line.") from None
        except RecursionError:
            raise UarbenchError("JSON nested too deeply to read.", file=path,
                                record=f"line {n}", fix="write one flat JSON object per line.") \
                from None
        if not isinstance(row, dict):
            raise UarbenchError("each line must be a JSON object.", file=path, record=f"line {n}",
                                fix="write one JSON object per line.")
        yield f"line {n}", row


# reports can be long: lift the csv module's 131,072-character field limit (C long bound)
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _csv_table(text: str, path: Path, header: bool) -> tuple[list[str], list[tuple[str, dict]]]:
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as e:
        raise UarbenchError(f"not a readable CSV file ({e}).", file=path,
                            fix="write it with a CSV writer (quoted fields).") from None
    # the file line of each record (a quoted field may span lines)
    reader_lines: list[int] = []
    line = 1
    for rec in lines:
        reader_lines.append(line)
        line += sum(f.count("\n") for f in rec) + 1
    if header:
        if not lines:
            return [], []
        names = [n.strip() for n in lines[0]]
        body, starts = lines[1:], reader_lines[1:]
    else:
        width = max((len(r) for r in lines), default=0)
        names = [str(i) for i in range(width)]
        body, starts = lines, reader_lines
    rows = []
    for rec, start in zip(body, starts):
        if not rec:                 # a blank line
            continue
        if len(rec) > len(names):
            raise UarbenchError(f"{len(rec)} fields but the header names {len(names)}.",
                                file=path, record=f"line {start}",
                                fix="quote fields that contain the delimiter.")
        rows.append((f"line {start}", dict(zip(names, rec + [""] * (len(names) - len(rec))))))
    return names, rows
