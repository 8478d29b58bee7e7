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
from pathlib import Path

from uarbench.errors import UarbenchError


def read_texts(path: str | Path, field: str, *, aliases: tuple[str, ...] = ()) -> dict[str, str]:
    """Read an id -> text mapping from ``path`` (``.csv`` or JSON lines)."""
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
    rows = _csv_rows(text, path) if path.suffix.lower() == ".csv" else _jsonl_rows(text, path)
    names = (field, *aliases)
    out: dict[str, str] = {}
    for where, row in rows:
        if "id" not in row or not any(n in row for n in names):
            raise UarbenchError(f"missing field(s): needs 'id' and {' or '.join(map(repr, names))}.",
                                file=path, record=where,
                                fix=f"write one {{\"id\": ..., \"{field}\": ...}} per line.")
        sid = str(row["id"])
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


def _jsonl_rows(text: str, path: Path):
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UarbenchError(f"invalid JSON: {e.msg} (column {e.colno}).", file=path,
                                record=f"line {n}", fix="write one JSON object per line.") from None
        if not isinstance(row, dict):
            raise UarbenchError("each line must be a JSON object.", file=path, record=f"line {n}",
                                fix="write one JSON object per line.")
        yield f"line {n}", row


def _csv_rows(text: str, path: Path):
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        return
    for n, row in enumerate(reader, 2):
        yield f"line {n}", {k: v for k, v in row.items() if k is not None}
