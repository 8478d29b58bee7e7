"""Writers of a :class:`~uarbench.compare.table.ComparisonTable`: Markdown (tabulate), LaTeX
(booktabs through pandas' ``Styler.to_latex``: a ``tabular`` fragment for ``\\input``, or a
complete document with ``standalone=True``), CSV and JSON (every number, CI, p-value and
signature, machine-readable) and a standalone HTML leaderboard (:mod:`uarbench.compare.html`).

Every human-readable format prints the same cell text (:mod:`uarbench.compare.cells`: score or
mean ± sd, † / ‡ significance markers, the CI in brackets on the line below, inline or not at
all: ``ci``), the best value of each column in bold (direction-aware), then the legend, the
notes, the metric and test signatures. Writers are registered by name in ``FORMATS``;
:func:`write_table` picks the columns shown (``metrics``) and writes atomically.
"""
from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from uarbench.compare.cells import (
    CI_PLACEMENTS,
    best_rows,
    ci_text,
    footer_lines,
    row_label,
    seeds_text,
    select_columns,
    value_text,
)
from uarbench.compare.html import to_html
from uarbench.compare.table import ARROWS, Cell, Column, ComparisonTable, RowInfo
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_text
from uarbench.registry import Registry

Writer = Callable[..., str]
FORMATS: Registry[Writer] = Registry("table format")
SUFFIXES = {".md": "md", ".markdown": "md", ".tex": "latex", ".latex": "latex", ".csv": "csv",
            ".html": "html", ".htm": "html", ".json": "json"}


def _check_ci(ci: str) -> None:
    if ci not in CI_PLACEMENTS:
        raise UarbenchError(f"unknown CI placement {ci!r}.",
                            fix=f"use one of: {', '.join(CI_PLACEMENTS)}.")


def _shows_seeds(table: ComparisonTable) -> bool:
    return any(len(r.seeds) != 1 for r in table.rows if r.kind == "measured")


def _shows_source(table: ComparisonTable) -> bool:
    return any(r.source != "measured" for r in table.rows if r.kind == "measured")


@FORMATS.register("md")
def to_markdown(table: ComparisonTable, *, digits: int = 4, ci: str = "below") -> str:
    """A GitHub / pipe table (tabulate), best values in bold, the CIs on a line under each row
    (``ci="below"``), after each value (``"inline"``) or left out (``"none"``)."""
    _check_ci(ci)

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    def shown(cell: Cell, bold: bool) -> str:
        value = f"**{value_text(cell, digits)}**" if bold else value_text(cell, digits)
        if ci == "inline" and cell.mean is not None and cell.ci is not None:
            return f"{value}{cell.marker} {ci_text(cell, digits)}"
        return value + cell.marker
    best = {c.key: best_rows(table, c, digits) for c in table.columns}
    # the source column only where some row is not measured here (imported, reported)
    source = _shows_source(table) or any(r.kind != "measured" for r in table.rows)
    head = ["row", "seeds"] + ["source"] * source + [c.header for c in table.columns]
    body: list[list[str]] = []
    for r in table.rows:
        cells = [table.cell(r.name, c.key) for c in table.columns]
        body.append([row_label(table, r), seeds_text(r)] + [r.source] * source
                    + [shown(cell, r.name in best[c.key]) for c, cell in zip(table.columns, cells)])
        if ci == "below" and any(cell.mean is not None and cell.ci for cell in cells):
            body.append([f"↳ {table.confidence:.0%} CI", ""] + [""] * source
                        + [ci_text(cell, digits) if cell.mean is not None else ""
                           for cell in cells])
    align = ["left", "right"] + ["left"] * source + ["right"] * len(table.columns)
    grid = tabulate([[esc(x) for x in row] for row in body], headers=[esc(h) for h in head],
                    tablefmt="pipe", disable_numparse=True, colalign=align)
    lines = [f"### Suite `{table.suite}` on {table.dataset}, baseline `{table.baseline}`", "",
             grid]
    for title, text in footer_lines(table, ci=ci).items():
        lines += ["", f"**{title}.**", ""] + [f"- `{x}`" if "signatures" in title else f"- {x}"
                                               for x in text]
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
          "≥": r"$\geq$", "×": r"$\times$", "⁺": r"$^{+}$", "⁻": r"$^{-}$", "·": r"$\cdot$"}


def latex_escape(text: str) -> str:
    """Text safe for pdflatex with T1 fonts: specials escaped, the few symbols uarbench prints
    mapped to math, any other non-ASCII character replaced by "?"."""
    return "".join(_LATEX.get(ch, ch if ord(ch) < 128 else "?") for ch in text)


def _latex_cell(cell: Cell, bold: bool, ci: str, digits: int) -> str:
    text = latex_escape(value_text(cell, digits))
    if bold:
        text = r"\textbf{" + text + "}"
    text += latex_escape(cell.marker)
    if ci == "inline" and cell.mean is not None and cell.ci is not None:
        text += r"\,{\scriptsize " + latex_escape(ci_text(cell, digits)) + "}"
    return text


def _latex_header(column: Column) -> str:
    """The header of a metric column; a long CE name or a split column's letter goes on a
    second line in small type (a nested tabular: no package needed), so paper tables stay
    narrow: "CE-F1 ↑" over "micro-14-unc1"."""
    base, _, sub = column.metric.partition("[")
    extra = " ".join(x for x in (sub.rstrip("]"), column.key[len(column.metric):].strip()) if x)
    top = latex_escape(f"{base} {ARROWS[column.higher_is_better]}")
    if not extra:
        return top
    return (r"\begin{tabular}[b]{@{}r@{}}" + top + r"\\ {\scriptsize " + latex_escape(extra)
            + r"}\end{tabular}")


def _latex_frame(table: ComparisonTable, ci: str, digits: int
                 ) -> tuple[pd.DataFrame, str, list[int]]:
    """(the body as LaTeX cell strings, the column format, the body lines a \\midrule goes
    before: where the reported rows start)."""
    seeds, source = _shows_seeds(table), _shows_source(table)
    best = {c.key: best_rows(table, c, digits) for c in table.columns}
    head = (["Model"] + ["Seeds"] * seeds + ["Source"] * source
            + [_latex_header(c) for c in table.columns])
    rows: list[list[str]] = []
    rules: list[int] = []
    previous = "measured"

    def lead(r: RowInfo | None) -> list[str]:
        if r is None:
            return [""] * (1 + seeds + source)
        return ([latex_escape(row_label(table, r))] + [latex_escape(seeds_text(r))] * seeds
                + [latex_escape(r.source)] * source)
    for r in table.rows:
        if r.kind != previous:
            rules.append(len(rows))
            previous = r.kind
        cells = [table.cell(r.name, c.key) for c in table.columns]
        rows.append(lead(r) + [_latex_cell(cell, r.name in best[c.key], ci, digits)
                               for c, cell in zip(table.columns, cells)])
        if ci == "below" and any(cell.mean is not None and cell.ci for cell in cells):
            rows.append(lead(None) + [r"{\scriptsize " + latex_escape(ci_text(cell, digits))
                                      + "}" if cell.mean is not None and cell.ci else ""
                                      for cell in cells])
    spec = "l" + "r" * seeds + "l" * source + "r" * len(table.columns)
    return pd.DataFrame(rows, columns=head), spec, rules


def latex_tabular(table: ComparisonTable, *, digits: int = 4, ci: str = "below") -> str:
    """The ``tabular`` with booktabs rules (pandas ``Styler.to_latex``), nothing around it."""
    _check_ci(ci)
    frame, spec, rules = _latex_frame(table, ci, digits)
    text = frame.style.hide(axis="index").to_latex(column_format=spec, hrules=True)
    lines = text.rstrip("\n").split("\n")
    first = lines.index(r"\midrule") + 1          # the body's first line
    for k in sorted(rules, reverse=True):
        lines.insert(first + k, r"\midrule")
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    return "% " + text.replace("\n", " ")


def _caption(table: ComparisonTable) -> str:
    return latex_escape(f"Suite {table.suite} on {table.dataset}; baseline {table.baseline}.")


def latex_fragment(table: ComparisonTable, *, digits: int = 4, ci: str = "below") -> str:
    """What ``\\input{table}`` inside a paper's ``table`` environment expects: the tabular
    alone (the paper sets caption, label, font size), preceded by comment lines with the
    legend, notes, signatures and provenance. Needs ``\\usepackage{booktabs}``."""
    head = [_comment(f"uarbench compare: suite {table.suite} on {table.dataset}, baseline "
                     f"{table.baseline}. A fragment: \\input it inside a table environment "
                     "(needs \\usepackage{booktabs}; T1 fonts + lmodern avoid bitmap fonts)."),
            _comment(f"Suggested caption: {_caption(table)}")]
    for title, lines in footer_lines(table, ci=ci).items():
        head.append(_comment(f"{title}:"))
        head += [_comment(f"  {x}") for x in lines]
    return "\n".join(head) + "\n" + latex_tabular(table, digits=digits, ci=ci)


def _paper_width_cm(table: ComparisonTable, ci: str, digits: int) -> float:
    """Width of a page that holds the table (A4 when it fits), estimated from the visible
    characters of each column (~0.19 cm each, ~0.13 cm in \\scriptsize) plus the padding."""
    frame, _, _ = _latex_frame(table, ci, digits)
    widths = [max(_width_cm(text) for text in [str(h), *frame[h]]) for h in frame.columns]
    return max(21.0, 4.5 + sum(w + 0.45 for w in widths))


_COMMANDS = re.compile(r"\\(begin|end)\{[a-z]+\}(\[[a-z]\])?(\{[^}]*\})?|\\[A-Za-z]+\s*|[{}$^]")


def _width_cm(latex: str) -> float:
    """Rough printed width of a cell: its widest line (a header may hold two)."""
    out = 0.0
    for line in latex.split("\\\\"):
        visible = _COMMANDS.sub("", line).replace(r"\,", " ")
        out = max(out, len(visible) * (0.13 if r"\scriptsize" in line else 0.19))
    return out


@FORMATS.register("latex")
def to_latex(table: ComparisonTable, *, digits: int = 4, ci: str = "below",
             standalone: bool = False) -> str:
    """The :func:`latex_fragment` (default), or with ``standalone`` a complete document that
    compiles with pdflatex: T1 + lmodern (vector fonts, no Type 3 bitmaps), booktabs, the
    table as a float with its caption, the legend and signatures in small type below, a page
    as wide as the table needs (A4 when it fits; no shrinking of the text)."""
    _check_ci(ci)
    if not standalone:
        return latex_fragment(table, digits=digits, ci=ci)
    width = _paper_width_cm(table, ci, digits)
    body = [r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage{lmodern}",
            r"\usepackage{booktabs}",
            rf"\usepackage[paperwidth={width:.1f}cm,paperheight=29.7cm,margin=2cm]{{geometry}}",
            r"\begin{document}", r"\begin{table}[!htbp]", r"\centering",
            r"\caption{" + _caption(table) + "}",
            latex_tabular(table, digits=digits, ci=ci).rstrip(), r"\end{table}",
            r"\begin{flushleft}", r"\footnotesize"]
    for title, lines in footer_lines(table, ci=ci).items():
        body.append(r"\textbf{" + latex_escape(title) + r".}")
        body.append(r"\begin{itemize}")
        wrap = (r"\texttt{", "}") if "signatures" in title else ("", "")
        body += [r"\item " + wrap[0] + latex_escape(x) + wrap[1] for x in lines]
        body.append(r"\end{itemize}")
    body += [r"\end{flushleft}", r"\end{document}"]
    return "\n".join(body) + "\n"


FORMATS.register("html")(to_html)


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
                            fix=f"pass --format ({', '.join(FORMATS.names())}) or use one of "
                                f"the suffixes {', '.join(SUFFIXES)}.")
    return SUFFIXES[suffix]


def write_table(table: ComparisonTable, fmt: str = "md", out: str | Path | None = None, *,
                digits: int = 4, metrics: Sequence[str] | None = None, **options) -> str:
    """The table in ``fmt``; also written (atomically) to ``out`` when given.

    ``metrics``: show only these columns (names, or prefixes ending in "*"; default: every
    column of the table, see :func:`uarbench.compare.cells.select_columns`). ``options`` go to
    the writer: ``ci`` ("below", "inline", "none": md, latex, html) and ``standalone``
    (latex). An option the format does not take is an error."""
    writer = FORMATS.get(fmt)
    accepted = inspect.signature(writer).parameters
    for name in options:
        if name not in accepted:
            raise UarbenchError(f"the {fmt} format takes no option {name!r}.",
                                fix="drop it, or use a format that takes it.")
    text = writer(select_columns(table, metrics), digits=digits, **options)
    if out is not None:
        atomic_write_text(out, text)
    return text
