"""Writers of a :class:`~uarbench.compare.table.ComparisonTable`: Markdown, LaTeX (booktabs, a
complete document that compiles with pdflatex), CSV and JSON (every number, CI, p-value and
signature, machine-readable) and a standalone HTML page (:mod:`uarbench.compare.html`).

Every human-readable format prints the same cell text (:mod:`uarbench.compare.cells`: score or mean ± sd,
the CI in brackets, † / ‡ significance markers) followed by the legend, the notes, the metric
signatures and the test signatures as a footer. Writers are registered by name in ``FORMATS``;
:func:`write_table` writes atomically. Hand-written: tabulate has no booktabs rules with
footers, and the cells mix numbers with markers.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from uarbench.compare.cells import (cell_text, ci_text, footer_lines, row_label, seeds_text,
                                    value_text)
from uarbench.compare.html import to_html
from uarbench.compare.table import Cell, ComparisonTable
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_text
from uarbench.registry import Registry

Writer = Callable[..., str]
FORMATS: Registry[Writer] = Registry("table format")
SUFFIXES = {".md": "md", ".markdown": "md", ".tex": "latex", ".csv": "csv", ".html": "html",
            ".htm": "html", ".json": "json"}


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
                            fix=f"pass --format ({', '.join(FORMATS.names())}).")
    return SUFFIXES[suffix]


def write_table(table: ComparisonTable, fmt: str = "md", out: str | Path | None = None, *,
                digits: int = 4) -> str:
    """The table in ``fmt``; also written (atomically) to ``out`` when given."""
    text = FORMATS.get(fmt)(table, digits=digits)
    if out is not None:
        atomic_write_text(out, text)
    return text
