"""Label reports with a registered labeler: a list of strings -> DataFrame, a file -> CSV.

The library calls behind ``uarbench label --reports FILE --out labels.csv [--labeler rules]``.
Input files are read with :func:`uarbench.textfiles.read_texts` (JSONL or CSV with ``id`` and
the text in ``report``, ``prediction`` or ``reference``), so a missing file, bad JSON or a
missing field is one :class:`~uarbench.errors.UarbenchError` naming the file and the line. The
output CSV has the header ``id,<the 14 observations in OBSERVATIONS order>`` and cells 1 / 0 / -1,
empty for blank (not mentioned); it is written atomically.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.io import atomic_write_text
from uarbench.labeling.base import LABELERS, Labeler
from uarbench.textfiles import read_texts

TEXT_FIELDS = ("report", "prediction", "reference")


def make_labeler(labeler: str = "rules", **labeler_kwargs) -> Labeler:
    """An instance of a registered labeler; UarbenchError when it is unknown."""
    return LABELERS.get(labeler)(**labeler_kwargs)


def label_reports(reports: Sequence[str], labeler: str = "rules",
                  **labeler_kwargs) -> pd.DataFrame:
    """(n_reports, 14) labels, columns OBSERVATIONS, values 1.0 / 0.0 / -1.0 / NaN."""
    values = make_labeler(labeler, **labeler_kwargs).label(list(reports))   # (n, 14)
    return pd.DataFrame(values, columns=list(OBSERVATIONS))


def label_file(reports_path: str | Path, out_path: str | Path, *, labeler: str = "rules",
               field: str = "report", **labeler_kwargs) -> Path:
    """Label every report of a JSONL / CSV file and write ``id,<14 observations>`` as CSV.

    ``labeler_kwargs`` go to the labeler's constructor (e.g. a CheXbert checkpoint path).
    """
    aliases = tuple(f for f in TEXT_FIELDS if f != field)
    texts = read_texts(reports_path, field, aliases=aliases)
    table = label_reports(list(texts.values()), labeler, **labeler_kwargs)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", *OBSERVATIONS])
    for sid, row in zip(texts, table.itertuples(index=False)):
        writer.writerow([sid, *("" if math.isnan(v) else str(int(v)) for v in row)])
    return atomic_write_text(out_path, buf.getvalue())
