"""``uarbench compare``: leaderboards and paper tables from a results folder.

- :mod:`~uarbench.compare.table`: the comparison of one suite (rows, seed variance, "—" for
  anything missing, columns split by signature, baseline, Holm-corrected tests);
- :mod:`~uarbench.compare.cells`: the text of cells, row labels and the footer (every format);
- :mod:`~uarbench.compare.reported`: the paper's reported numbers as optional rows;
- :mod:`~uarbench.compare.formats` / :mod:`~uarbench.compare.html`: md, latex, csv, json, html;
- :mod:`~uarbench.compare.plots`: metric bars with CIs and training curves (PNG);
- :mod:`~uarbench.compare.cli`: the ``uarbench compare`` sub-command.

Names are imported lazily so that building the ``uarbench`` argument parser stays fast.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"build_comparison": "table", "ComparisonTable": "table", "Cell": "table",
            "Column": "table", "RowInfo": "table", "FORMATS": "formats",
            "write_table": "formats", "write_plots": "plots"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"uarbench.compare.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'uarbench.compare' has no attribute {name!r}")
