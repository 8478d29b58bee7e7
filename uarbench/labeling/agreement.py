"""Agreement between two labelers' CheXpert label files: per-class Cohen's kappa and F1.

Reads the field's 14-column label CSVs (CheXpert labeler, CheXbert, ``uarbench label``): an id
column (``id``, ``study_id``, ``dicom_id`` or ``report_id``; rows are matched by id, never by
order) and any subset of the 14 observations, aligned by name (labelers order them
differently); cells 1 / 0 / -1 / empty. For each observation present in
both files: Cohen's kappa over the four classes (positive, negative, uncertain, blank) computed
by scikit-learn, and F1 of "present" (positive or uncertain) taking the other file as the
reference. Bad input is one error naming the file, the row and the fix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.errors import UarbenchError
from uarbench.labeling.mesh_eval import present

ID_COLUMNS = ("id", "study_id", "dicom_id", "report_id")
_VALUES = {1.0, 0.0, -1.0}


def read_label_csv(path: str | Path) -> pd.DataFrame:
    """id-indexed float frame with the observation columns the file has (NaN = blank)."""
    path = Path(path)
    if not path.is_file():
        raise UarbenchError("file not found.", file=path, fix="check the path.")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UarbenchError(f"not a readable CSV ({e}).", file=path,
                            fix="write a CSV with a header row.") from None
    id_col = next((c for c in ID_COLUMNS if c in df.columns), None)
    if id_col is None:
        raise UarbenchError(f"no id column (one of {', '.join(ID_COLUMNS)}).", file=path,
                            fix="add the study id to every row so the two files can be matched.")
    obs = [o for o in OBSERVATIONS if o in df.columns]
    if not obs:
        raise UarbenchError("no CheXpert observation column.", file=path,
                            fix=f"name the columns as CheXpert does, e.g. {OBSERVATIONS[2]!r}.")
    dup = df[id_col][df[id_col].duplicated()]
    if len(dup):
        raise UarbenchError("duplicate id.", file=path, record=str(dup.iloc[0]),
                            fix="keep one row per study.")
    out = pd.DataFrame(index=df[id_col].astype(str))
    for o in obs:
        col = []
        for i, cell in enumerate(df[o].str.strip()):
            try:
                v = math.nan if cell == "" else float(cell)
            except ValueError:
                v = None
            if v is None or not (math.isnan(v) or v in _VALUES):
                raise UarbenchError(f"{o!r} is {cell!r}.", file=path,
                                    record=f"{df[id_col].iloc[i]} (row {i + 2})",
                                    fix="use 1, 0, -1 or an empty cell.")
            col.append(v)
        out[o] = col
    return out


@dataclass(frozen=True)
class ClassAgreement:
    observation: str
    n: int
    kappa: float            # NaN when both files use one class only
    f1: float               # of present (1 or -1), ``b`` as the reference
    present_a: int
    present_b: int


def agreement(a: pd.DataFrame, b: pd.DataFrame) -> list[ClassAgreement]:
    """Per-observation agreement of label frames ``a`` and ``b`` over their common ids."""
    from sklearn.metrics import cohen_kappa_score
    ids = a.index.intersection(b.index)
    if not len(ids):
        raise UarbenchError("the two label files share no id.",
                            fix="label the same reports in both files (same id column).")
    out = []
    for o in (o for o in OBSERVATIONS if o in a.columns and o in b.columns):
        x = a.loc[ids, o].fillna(9).to_numpy()          # 9 = blank, a class of its own
        y = b.loc[ids, o].fillna(9).to_numpy()
        px, py = present(x), present(y)
        tp, wrong = int((px & py).sum()), int((px != py).sum())
        single = len(set(x) | set(y)) == 1
        kappa = math.nan if single else float(cohen_kappa_score(x, y))
        f1 = 2 * tp / (2 * tp + wrong) if tp + wrong else 1.0
        out.append(ClassAgreement(o, len(ids), kappa, f1, int(px.sum()), int(py.sum())))
    return out


def format_agreement(rows: list[ClassAgreement], name_a: str, name_b: str) -> str:
    from tabulate import tabulate
    table = [(r.observation, r.n, r.present_a, r.present_b,
              "n/a" if math.isnan(r.kappa) else f"{r.kappa:.3f}", f"{r.f1:.3f}") for r in rows]
    return (f"agreement of {name_a} with {name_b} (kappa over pos / neg / unc / blank; "
            f"F1 of present = pos or unc, {name_b} as reference)\n"
            + tabulate(table, headers=("observation", "reports", f"present ({name_a})",
                                       f"present ({name_b})", "kappa", "F1")))
