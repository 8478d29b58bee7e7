"""Writers of a :class:`~uarbench.compare.table.ComparisonTable`: Markdown, LaTeX (booktabs, a
complete document that compiles with pdflatex), CSV and JSON (every number, CI, p-value and
signature, machine-readable) and a standalone HTML page (:mod:`uarbench.compare.html`).

Every human-readable format prints the same cell text (:func:`cell_text`: score or mean ± sd,
the CI in brackets, † / ‡ significance markers) followed by the legend, the notes, the metric
signatures and the test signatures as a footer. Writers are registered by name in ``FORMATS``;
:func:`write_table` writes atomically. Hand-written: tabulate has no booktabs rules with
footers, and the cells mix numbers with markers.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from uarbench.compare.table import MISSING, Cell, ComparisonTable, RowInfo
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_text
from uarbench.registry import Registry

Writer = Callable[..., str]
FORMATS: Registry[Writer] = Registry("table format")
SUFFIXES = {".md": "md", ".markdown": "md", ".tex": "latex", ".csv": "csv", ".html": "html",
            ".htm": "html", ".json": "json"}


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


@FORMATS.register("md")
def to_markdown(table: ComparisonTable, *, digits: int = 4) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")
    head = ["row", "seeds", "source"] + [c.header for c in table.columns]
    lines = [f"### Suite `{table.suite}` on {table.dataset}, baseline "
             f"`{table.baseline}`", "",
             "| " + " | ".join(esc(h) for h in head) + " |",
             "|:--|--:|:--|" + "--:|" * len(table.columns)]
    for r in table.rows:
        cells = [cell_text(table.cell(r.name, c.key), digits) for c in table.columns]
        lines.append("| " + " | ".join(esc(x) for x in [row_label(table, r), seeds_text(r),
                                                          r.source, *cells]) + " |")
    for title, body in footer_lines(table).items():
        lines += ["", f"**{title}.**", ""] + [f"- `{x}`" if "signatures" in title else f"- {x}"
                                               for x in body]
    return "\n".join(lines) + "\n"


@FORMATS.register("csv")
def to_csv(table: ComparisonTable, *, digits: int = 4) -> str:
    """One line per (row, column), all numbers at full precision (``digits`` is not used)."""
    return table.to_frame().to_csv(index=False)


@FORMATS.register("json")
def to_json(table: ComparisonTable, *, digits: int = 4) -> str:
    return json.dumps(table.to_dict(), indent=2, ensure_ascii=False) + "\n"


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "|": r"\textbar{}\allowbreak{}", "<": r"\textless{}",
          ">": r"\textgreater{}", "—": "---", "–": "--", "±": r"$\pm$", "↑": r"$\uparrow$",
          "↓": r"$\downarrow$", "†": r"$^{\dagger}$", "‡": r"$^{\ddagger}$", "≤": r"$\leq$",
          "×": r"$\times$"}


def latex_escape(text: str) -> str:
    """Text safe for pdflatex with T1 fonts: specials escaped, the few symbols uarbench prints
    mapped to math, any other non-ASCII character replaced by "?"."""
    return "".join(_LATEX.get(ch, ch if ord(ch) < 128 else "?") for ch in text)


def latex_table(table: ComparisonTable, *, digits: int = 4) -> str:
    """The table environment plus its footer (needs booktabs and graphicx), for \\input."""
    def cell(c: Cell) -> str:
        text = latex_escape(value_text(c, digits) + c.marker)
        if c.mean is not None and c.ci is not None:
            text += r"\,{\scriptsize " + latex_escape(ci_text(c, digits)) + "}"
        return text
    spec = "lrl" + "r" * len(table.columns)
    head = ["Row", "Seeds", "Source"] + [c.header for c in table.columns]
    body = [r"\begin{table}[htbp]", r"\centering",
            r"\caption{" + latex_escape(f"Suite {table.suite} on {table.dataset}; baseline "
                                        f"{table.baseline}.") + "}",
            r"\resizebox{\textwidth}{!}{%", r"\begin{tabular}{" + spec + "}", r"\toprule",
            " & ".join(latex_escape(h) for h in head) + r" \\", r"\midrule"]
    previous = "measured"
    for r in table.rows:
        if r.kind != previous:
            body.append(r"\midrule")
            previous = r.kind
        cells = [cell(table.cell(r.name, c.key)) for c in table.columns]
        body.append(" & ".join([latex_escape(row_label(table, r)), latex_escape(seeds_text(r)),
                                latex_escape(r.source), *cells]) + r" \\")
    body += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", r"\begin{flushleft}",
             r"\footnotesize"]
    for title, lines in footer_lines(table).items():
        body.append(r"\textbf{" + latex_escape(title) + r".}")
        body.append(r"\begin{itemize}")
        wrap = (r"\texttt{", "}") if "signatures" in title else ("", "")
        body += [r"\item " + wrap[0] + latex_escape(x) + wrap[1] for x in lines]
        body.append(r"\end{itemize}")
    body.append(r"\end{flushleft}")
    return "\n".join(body) + "\n"


@FORMATS.register("latex")
def to_latex(table: ComparisonTable, *, digits: int = 4) -> str:
    """A complete document (compiles with pdflatex); :func:`latex_table` is its body."""
    return "\n".join([r"\documentclass{article}", r"\usepackage[T1]{fontenc}",
                      r"\usepackage{booktabs}", r"\usepackage{graphicx}",
                      r"\begin{document}", latex_table(table, digits=digits).rstrip(),
                      r"\end{document}"]) + "\n"


def _html(table: ComparisonTable, *, digits: int = 4) -> str:
    from uarbench.compare.html import to_html
    return to_html(table, digits=digits)


FORMATS.register("html")(_html)


def format_for(path: str | Path | None, fmt: str | None) -> str:
    """``fmt`` if given, else from the output file's suffix, else Markdown."""
    if fmt is not None:
        FORMATS.get(fmt)
        return fmt
    if path is None:
        return "md"
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise UarbenchError(f"cannot tell the format from the suffix {suffix!r}.", file=path,
                            fix=f"pass --format ({', '.join(FORMATS.names())}).")
    return SUFFIXES[suffix]


def write_table(table: ComparisonTable, fmt: str = "md", out: str | Path | None = None, *,
                digits: int = 4) -> str:
    """The table in ``fmt``; also written (atomically) to ``out`` when given."""
    text = FORMATS.get(fmt)(table, digits=digits)
    if out is not None:
        atomic_write_text(out, text)
    return text
