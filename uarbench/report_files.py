"""Reading the prediction / reference files people actually have, for ``uarbench eval`` and
``uarbench import``.

Released outputs come in many shapes: one CSV with an id, the generated report and the
reference (CvT2DistilGPT2 / MLRG / PriorRG style: ``dicom_id``, ``generated_report`` /
``pred_report``, ``reference_report`` / ``labels``), two files (predictions, references), JSON
lines, or R2Gen's id-less ``res.csv`` / ``gts.csv`` (one report per row in the annotation's test
order). This module finds the id, prediction and reference columns (``--id-col``,
``--pred-col``, ``--ref-col``, else the common names below), and refuses what cannot be read
without guessing: several candidate columns, a blank or missing id, an empty reference (some
released files start with metric-summary rows: ``--skip-empty-references`` leaves those out and
counts them), an id-less file without an order. Hand-written: the column conventions are the
field's, no library knows them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from uarbench.errors import UarbenchError
from uarbench.io import parse_json
from uarbench.provenance import file_sha256
from uarbench.textfiles import id_problem, is_csv, read_rows, study_id

# auto-detected column names, in order of preference
ID_COLUMNS = ("id", "dicom_id", "images_id", "image_id", "study_id")
PRED_COLUMNS = ("prediction", "generated_report", "pred_report", "generated", "pred",
                "hypothesis", "report")
REF_COLUMNS = ("reference", "reference_report", "ground_truth", "labels", "label", "gt_report",
               "target", "gts")
# a references file's own text column may also just be "report" (when no name above is there)
REF_FILE_COLUMNS = (REF_COLUMNS, ("report", "findings"))


@dataclass(frozen=True)
class ColumnChoice:
    """Column names chosen by the user (None: detect)."""

    id: str | None = None
    pred: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class ReportTexts:
    """What a scoring job read: predictions, references (None: take them from the dataset) and
    what was read from where (goes into metrics.json's ``inputs``)."""

    predictions: dict[str, str]
    references: dict[str, str] | None
    info: dict = field(default_factory=dict)


def split_order(annotation: str | Path, split: str) -> list[str]:
    """Study ids of ``split`` in ``annotation.json`` order (for id-less files)."""
    path = Path(annotation)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise UarbenchError("file not found.", file=path, fix="pass the dataset's "
                            "annotation.json to --order-from.") from None
    except UnicodeDecodeError as e:
        raise UarbenchError(f"not UTF-8 (byte {e.start}).", file=path,
                            fix="pass R2Gen's annotation.json to --order-from.") from None
    data = parse_json(text, path, fix="pass R2Gen's annotation.json to --order-from.")
    items = data.get(split) if isinstance(data, dict) else None
    if not isinstance(items, list):
        have = ", ".join(data) if isinstance(data, dict) else "none"
        raise UarbenchError(f"no {split!r} split (splits: {have}).", file=path,
                            fix="choose the split with --split.")
    ids = []
    for k, item in enumerate(items):
        sid = study_id(item.get("id")) if isinstance(item, dict) else None
        if sid is None:
            raise UarbenchError("a study without an id.", file=path, record=f"{split}[{k}]",
                                fix="use the annotation.json the predictions were made from.")
        ids.append(sid)
    return ids


def read_report_texts(predictions: str | Path, references: str | Path | None = None, *,
                      columns: ColumnChoice = ColumnChoice(), order: Sequence[str] | None = None,
                      order_source: str | None = None, want_references: bool = True,
                      skip_empty_references: bool = False) -> ReportTexts:
    """Read predictions (and references) from one file or two.

    ``references``: a second file; without it the predictions file's reference column is used
    when it has one and ``want_references`` (the caller has no dataset to take them from).
    ``order``: study ids for id-less files, in row order (from ``--order-from``)."""
    info: dict = {"predictions": str(predictions), "predictions_sha256": _sha(predictions)}
    pred_file = _ReportFile(predictions, order, order_source)
    id_col = pred_file.id_column(columns.id)
    in_file_ref = None
    if references is None:
        in_file_ref = pred_file.text_column(columns.ref, (REF_COLUMNS,), "reference", "--ref-col",
                                            required=False, exclude=(id_col,))
    pred_col = pred_file.text_column(columns.pred, (PRED_COLUMNS,), "prediction", "--pred-col",
                                     exclude=(in_file_ref, id_col))
    info["columns"] = {"id": id_col or f"(row order of {order_source})", "prediction": pred_col}
    refs: dict[str, str] | None = None
    skipped: list[str] = []
    if references is not None:
        ref_file = _ReportFile(references, order, order_source)
        ref_id = ref_file.id_column(columns.id)
        ref_col = ref_file.text_column(columns.ref, REF_FILE_COLUMNS, "reference", "--ref-col",
                                       exclude=(ref_id,))
        refs, skipped = ref_file.texts(ref_id, ref_col, "reference", skip_empty_references)
        info.update(references=str(references), references_sha256=_sha(references))
        info["columns"]["reference"] = f"{ref_col} ({Path(references).name})"
    skip_rows: set[str] = set()
    if in_file_ref is not None:
        file_refs, skipped = pred_file.texts(id_col, in_file_ref, "reference",
                                             skip_empty_references)
        skip_rows = set(skipped)
        if want_references:
            refs = file_refs
            info["columns"]["reference"] = in_file_ref
            info["references"] = f"{predictions} (column {in_file_ref})"
            info["references_sha256"] = info["predictions_sha256"]
        else:
            info["unused_reference_column"] = in_file_ref
    preds, _ = pred_file.texts(id_col, pred_col, "prediction", False, skip_rows=skip_rows)
    if skipped:
        info["skipped_empty_references"] = skipped
    return ReportTexts(preds, refs, info)


def _sha(path: str | Path) -> str | None:
    return file_sha256(path) if Path(path).is_file() else None


class _ReportFile:
    """One CSV / JSONL file of reports: its rows, column detection, id -> text reading."""

    def __init__(self, path: str | Path, order: Sequence[str] | None,
                 order_source: str | None) -> None:
        self.path = Path(path)
        self.order = None if order is None else list(order)
        self.order_source = order_source
        self.names, self.rows = read_rows(self.path)
        if not self.rows and not self.names:
            raise UarbenchError("no records.", file=self.path,
                                fix="write one row per study (id and report).")

    def id_column(self, chosen: str | None) -> str | None:
        """The id column, or None for an id-less file read in ``order``."""
        if chosen is not None:
            self._require(chosen, "--id-col")
            return chosen
        found = [c for c in ID_COLUMNS if c in self.names]
        if found:
            unique = [c for c in found if self._unique(c)]
            return (unique or found)[0]
        if self.order is None:
            raise UarbenchError(f"no id column (looked for {', '.join(ID_COLUMNS)}; columns: "
                                f"{self._shown()}).", file=self.path,
                                fix="name it with --id-col, or for an id-less file in test "
                                "order (R2Gen's res.csv / gts.csv) pass --order-from "
                                "annotation.json [--split S].")
        self._idless_rows()
        return None

    def text_column(self, chosen: str | None, tiers: Sequence[Sequence[str]], what: str,
                    flag: str, *, required: bool = True,
                    exclude: Sequence[str | None] = ()) -> str | None:
        """The column ``chosen`` by the user, else the one candidate of the first tier of names
        present (several in that tier: an error), else the file's only other column."""
        if chosen is not None:
            self._require(chosen, flag)
            return chosen
        found: list[str] = []
        for tier in tiers:
            found = found or [c for c in tier if c in self.names and c not in exclude]
        candidates = [c for tier in tiers for c in tier]
        if len(found) > 1:
            raise UarbenchError(f"several {what} columns: {', '.join(found)}.", file=self.path,
                                fix=f"choose one with {flag}.")
        if found:
            return found[0]
        left = [c for c in self.names if c not in exclude]
        if required and len(left) == 1:     # a one-column file: its only column
            return left[0]
        if required:
            raise UarbenchError(f"no {what} column (looked for {', '.join(candidates)}; "
                                f"columns: {self._shown()}).", file=self.path,
                                fix=f"name it with {flag}.")
        return None

    def texts(self, id_col: str | None, col: str, what: str, skip_empty: bool,
              skip_rows: set[str] = frozenset()) -> tuple[dict[str, str], list[str]]:
        """id -> text of column ``col``; rows with an empty reference are an error unless
        ``skip_empty`` (then they are left out and returned as "line N (id)")."""
        out: dict[str, str] = {}
        skipped: list[str] = []
        for k, (where, row) in enumerate(self.rows):
            if where in skip_rows:
                continue
            missing = [c for c in (col, id_col) if c is not None and c not in row]
            if missing:       # a JSON line without the field (CSV rows always have it)
                raise UarbenchError(f"no {missing[0]!r} field.", file=self.path, record=where,
                                    fix=f"give every line the same fields ({id_col or ''} "
                                        f"{col}).")
            value = row.get(col)
            sid = self.order[k] if id_col is None else row.get(id_col)
            if what == "reference" and (value is None or (isinstance(value, str)
                                                          and not value.strip())):
                if skip_empty:
                    skipped.append(where)
                    continue
                raise UarbenchError(
                    f"empty reference (id {sid!r}): not a report (released files often start "
                    "with metric-summary rows).", file=self.path, record=where,
                    fix="remove the row, or pass --skip-empty-references to leave such rows "
                        "out (they are counted in metrics.json).")
            raw_id, sid = sid, study_id(sid)
            if sid is None:
                raise UarbenchError(id_problem(raw_id).rstrip(".") + f" in column {id_col!r}.",
                                    file=self.path, record=where,
                                    fix="give every row its study id (or --skip-empty-"
                                        "references for summary rows without a reference).")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise UarbenchError(f"the {what} ({col!r}) must be a string, not "
                                    f"{type(value).__name__}.", file=self.path,
                                    record=f"{where} (id {sid})", fix="write the report as text.")
            if sid in out:
                raise UarbenchError(f"duplicate id {sid!r}.", file=self.path, record=where,
                                    fix="keep one row per study (choose the id column with "
                                        "--id-col).")
            out[sid] = value
        if not out:
            raise UarbenchError(f"no {what}s.", file=self.path,
                                fix="write one row per study.")
        return out, skipped

    def _idless_rows(self) -> None:
        """An id-less CSV may have no header: decide from the row count and the order."""
        n = len(self.order)
        if is_csv(self.path) and len(self.names) == 1 and len(self.rows) == n - 1:
            self.names, self.rows = read_rows(self.path, header=False)
        if len(self.rows) != n:
            count = (f"{len(self.rows) + 1} lines ({len(self.rows)} if the first is a header)"
                     if is_csv(self.path) and len(self.names) == 1 else f"{len(self.rows)} rows")
            raise UarbenchError(f"{count} but {self.order_source} lists {n} "
                                "studies in this split.", file=self.path,
                                fix="pass the annotation.json and --split the file was "
                                    "written from.")

    def _unique(self, col: str) -> bool:
        values = [str(r.get(col)) for _, r in self.rows]
        return len(set(values)) == len(values)

    def _require(self, col: str, flag: str) -> None:
        if col not in self.names:
            raise UarbenchError(f"no column {col!r} (columns: {self._shown()}).",
                                file=self.path, fix=f"check {flag}.")

    def _shown(self) -> str:
        return ", ".join(self.names[:12]) + (" ..." if len(self.names) > 12 else "") or "none"
