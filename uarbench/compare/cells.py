"""The text of a comparison table's cells, row labels and footer, shared by every writer
(:mod:`uarbench.compare.formats`, :mod:`uarbench.compare.html`,
:mod:`uarbench.compare.plots`) so all formats print the same numbers: score or mean ± sd, the
CI in brackets, the significance marker, the best value of each column.

Also the column views of a table: the compact metric set of paper tables
(:data:`PAPER_METRICS`, :func:`select_columns`) and the metric groups figures are split by
(:func:`metric_group`). A view only hides columns: CIs, tests and the Holm family stay those of
the whole table, so every format shows the same markers.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from uarbench.compare.table import MISSING, Cell, Column, ComparisonTable, RowInfo

# the compact metric set of paper tables and figures (Markdown, LaTeX, plots), in this order
# of preference; "*" at the end matches a prefix (CE names hold brackets, so no fnmatch).
# CE-F1 micro over 14 observations is the usual R2Gen-lineage CE number, macro its
# class-balanced companion.
PAPER_METRICS = ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "CE-F1[micro-14-*",
                 "CE-F1[macro-14-*")
CI_PLACEMENTS = ("below", "inline", "none")


def number(x: float | None, digits: int = 4) -> str:
    """The one number format of tables and summaries: ``digits`` decimals; a non-zero value
    that would print as 0 gets an exponent (5.9e-07), so a tiny score is never shown as 0;
    None -> "n/a"."""
    if x is None:
        return "n/a"
    if x != 0 and abs(x) < 0.5 * 10 ** -digits:
        return f"{x:.1e}"
    return f"{x:.{digits}f}"


def value_text(cell: Cell, digits: int = 4) -> str:
    """"0.1234", "0.1234 ± 0.0050" (several seeds) or "—"."""
    if cell.mean is None:
        return MISSING
    if cell.n_seeds > 1 and cell.sd is not None:
        return f"{number(cell.mean, digits)} ± {number(cell.sd, digits)}"
    return number(cell.mean, digits)


def ci_text(cell: Cell, digits: int = 4) -> str:
    if cell.ci is None:
        return ""
    return f"[{number(cell.ci[0], digits)}, {number(cell.ci[1], digits)}]"


def cell_text(cell: Cell, digits: int = 4) -> str:
    """Value, CI and marker in one string (Markdown and plain text)."""
    parts = [value_text(cell, digits) + cell.marker]
    if cell.mean is not None and cell.ci is not None:
        parts.append(ci_text(cell, digits))
    return " ".join(parts)


def row_label(table: ComparisonTable, row: RowInfo) -> str:
    label = f"{row.name} (baseline)" if row.name == table.baseline else row.name
    if row.same_as_floor:
        label += f" (= {row.same_as_floor} floor)"
    return label


DETERMINISTIC = "deterministic"


def seeds_text(row: RowInfo) -> str:
    """The Seeds column: how many training seeds a row averages; "deterministic" for a floor
    (fitted, not trained: it runs once whatever the seeds)."""
    if row.kind == "reported":
        return MISSING
    return str(len(row.seeds)) if row.trained or not row.run_dirs else DETERMINISTIC


def best_rows(table: ComparisonTable, column: Column, digits: int = 4) -> frozenset[str]:
    """The measured rows holding the best value of ``column`` as shown (at ``digits``
    decimals), by the column's direction (highest, or lowest for lower-is-better metrics).
    Empty when fewer than two rows have a number or all of them tie: nothing to single out.
    Reported rows never count (their numbers come from other scorers and data)."""
    shown: dict[str, float] = {}
    for r in table.rows:
        cell = table.cell(r.name, column.key)
        if r.kind == "measured" and cell.mean is not None:
            shown[r.name] = float(number(cell.mean, digits))
    if len(set(shown.values())) < 2:
        return frozenset()
    best = (max if column.higher_is_better else min)(shown.values())
    return frozenset(name for name, v in shown.items() if v == best)


def has_ci(table: ComparisonTable) -> bool:
    return any(table.cell(r.name, c.key).ci is not None for r in table.rows
               for c in table.columns)


def _matches(metric: str, pattern: str) -> bool:
    return metric == pattern or (pattern.endswith("*") and metric.startswith(pattern[:-1]))


def select_columns(table: ComparisonTable, metrics: Sequence[str] | None) -> ComparisonTable:
    """A view of ``table`` with only the columns whose metric matches one of ``metrics``
    (exact names, or a prefix ending in "*"), in the table's order; ``None``, or a selection
    that matches nothing, keeps every column. A note says what was left out."""
    if metrics is None:
        return table
    keep = tuple(c for c in table.columns if any(_matches(c.metric, p) for p in metrics))
    if not keep or len(keep) == len(table.columns):
        return table
    shown = {c.key for c in keep}
    hidden = [c.key for c in table.columns if c.key not in shown]
    note = (f"Columns shown: {len(keep)} of {len(table.columns)}; left out: "
            f"{', '.join(hidden)} (`uarbench compare --all-metrics` shows every column; the "
            "CSV and JSON formats always carry all). CIs, markers and the Holm family are "
            "those of the whole table.")
    return dataclasses.replace(
        table, columns=keep, notes=tuple(table.notes) + (note,),
        test_signatures={k: v for k, v in table.test_signatures.items() if k in shown})


def metric_group(metric: str) -> str:
    """The figure a metric is drawn in: "NLG" (BLEU, METEOR, ROUGE, CIDEr), "CE" (clinical
    efficacy), else the family's name (e.g. "RadGraph")."""
    if metric.startswith("CE-"):
        return "CE"
    if metric.startswith(("BLEU", "METEOR", "ROUGE", "CIDEr")):
        return "NLG"
    return metric.split("-")[0]


def legend_lines(table: ComparisonTable, *, ci: str = "below") -> list[str]:
    """The table's legend plus what the writers add: the bold best value, where the CIs are."""
    lines = list(table.legend())
    lines.append("Bold: the best measured value of each column as shown, by the column's "
                 "direction (reported rows excluded; none when every row ties).")
    if has_ci(table):
        lines.append({"below": "CIs: on the line under each row's values.",
                      "inline": "CIs: in brackets after each value.",
                      "none": "CIs: not shown here (`--ci below` or `--ci inline`; the CSV "
                              "and JSON formats always carry them)."}[ci])
    return lines


def footer_lines(table: ComparisonTable, *, ci: str = "below") -> dict[str, list[str]]:
    """Section title -> lines: legend, notes, metric signatures, test signatures, provenance."""
    measured = [r for r in table.rows if r.kind == "measured"]
    prov = table.provenance
    sections = {"Legend": legend_lines(table, ci=ci), "Notes": list(table.notes),
                "Metric signatures": [f"{c.key}: {c.signature or '(none: unavailable)'}"
                                      for c in table.columns],
                "CI and significance signatures": [f"{k}: {v}"
                                                   for k, v in table.test_signatures.items()]}
    sources = sorted({r.source for r in table.rows if r.source != "measured"})
    if sources:
        sections["Sources"] = sources
    sections["Provenance"] = [
        (f"suite {table.suite}, dataset {table.dataset}, {len(measured)} measured rows from "
        f"{prov.get('runs', 0)} runs"),
        (f"git {', '.join(prov.get('git_commits', []))}"
        f"{' (dirty)' if prov.get('git_dirty') else ''}; uarbench "
        f"{', '.join(prov.get('uarbench_versions', []))}; benchmark "
        f"{', '.join(prov.get('benchmark_versions', []))}"),
        f"dataset sha256 {', '.join(prov.get('dataset_sha256', []))}"]
    return {k: v for k, v in sections.items() if v}
