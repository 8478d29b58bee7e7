"""The text of a comparison table's cells, row labels and footer, shared by every writer
(:mod:`uarbench.compare.formats`, :mod:`uarbench.compare.html`) so all formats print the same
numbers: score or mean ± sd, the CI in brackets, the significance marker."""
from __future__ import annotations

from uarbench.compare.table import MISSING, Cell, ComparisonTable, RowInfo


def number(x: float, digits: int) -> str:
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


def seeds_text(row: RowInfo) -> str:
    return MISSING if row.kind == "reported" else str(len(row.seeds))


def footer_lines(table: ComparisonTable) -> dict[str, list[str]]:
    """Section title -> lines: legend, notes, metric signatures, test signatures, provenance."""
    measured = [r for r in table.rows if r.kind == "measured"]
    prov = table.provenance
    sections = {"Legend": table.legend(), "Notes": list(table.notes),
                "Metric signatures": [f"{c.key}: {c.signature or '(none: unavailable)'}"
                                      for c in table.columns],
                "CI and significance signatures": [f"{k}: {v}"
                                                   for k, v in table.test_signatures.items()]}
    sections["Provenance"] = [
        f"suite {table.suite}, dataset {table.dataset}, {len(measured)} measured rows from "
        f"{prov.get('runs', 0)} runs",
        f"git {', '.join(prov.get('git_commits', []))}"
        f"{' (dirty)' if prov.get('git_dirty') else ''}; uarbench "
        f"{', '.join(prov.get('uarbench_versions', []))}; benchmark "
        f"{', '.join(prov.get('benchmark_versions', []))}",
        f"dataset sha256 {', '.join(prov.get('dataset_sha256', []))}"]
    return {k: v for k, v in sections.items() if v}
