"""The comparison table as one standalone HTML page: a leaderboard sorted by clicking a column
header, then the legend and notes, with the metric and test signatures and the provenance of
the runs in a collapsible footer.

- The first click on a metric's header sorts best first by the metric's direction (highest
  first, or lowest for a lower-is-better metric); the next click reverses. Missing cells ("—")
  always sort last. Measured rows sort; reported rows stay in their own section below.
- The header row and the row-name column stay in view while the table scrolls (sticky, inside
  a scrolling box), so a wide table keeps its labels.
- The best measured value of each column is highlighted (:func:`~uarbench.compare.cells.best_rows`).
- Nothing is loaded from elsewhere (no CDN, no external CSS, JS or fonts): the style and a
  short sorting script are inline, so the page works offline and can be attached to a report.

Hand-written: a page this small does not justify a templating dependency.
"""
from __future__ import annotations

import json
from html import escape

from uarbench.compare.cells import (
    CI_PLACEMENTS,
    best_rows,
    ci_text,
    footer_lines,
    row_label,
    seeds_text,
    value_text,
)
from uarbench.compare.table import ComparisonTable, RowInfo
from uarbench.errors import UarbenchError

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
.wrap { overflow: auto; max-height: 80vh; max-width: 100%; border: 1px solid #ddd; }
table.lb { border-collapse: separate; border-spacing: 0; }
table.lb th, table.lb td { padding: 4px 8px; border-bottom: 1px solid #ddd; white-space: nowrap;
  background: #fff; }
table.lb thead th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; z-index: 2;
  user-select: none; }
table.lb th:first-child, table.lb td:first-child { position: sticky; left: 0; z-index: 1;
  border-right: 1px solid #ddd; }
table.lb thead th:first-child { z-index: 3; }
table.lb th[aria-sort=ascending]::after { content: " \\25B2"; }
table.lb th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.lb td.best { background: #dff0d8; font-weight: 600; }
.ci { color: #666; font-size: 85%; font-weight: normal; }
tr.baseline td:first-child { font-weight: bold; }
tbody.reported td { color: #555; font-style: italic; }
code, pre { font-size: 12px; white-space: pre-wrap; word-break: break-all; }
footer { margin-top: 1.5em; }
summary { cursor: pointer; font-weight: 600; }
"""

# Sort the measured rows (first tbody) by the clicked column: numeric data-v where present,
# missing ("—") always last. The first click uses the column's data-first order ("desc" for a
# higher-is-better metric: best first), a second click on the same column reverses it.
SCRIPT = """
document.querySelectorAll("table.lb thead th").forEach(function (th, i) {
  function sort() {
    var body = th.closest("table").tBodies[0];
    var current = th.getAttribute("aria-sort");
    var desc = current ? current === "ascending" : th.dataset.first === "desc";
    th.closest("tr").querySelectorAll("th").forEach(function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    function key(tr) {
      var v = tr.cells[i].dataset.v;
      if (v === undefined || v === "") return null;
      return isNaN(Number(v)) ? v.toLowerCase() : Number(v);
    }
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
    }).forEach(function (tr) { body.appendChild(tr); });
  }
  th.addEventListener("click", sort);
  th.addEventListener("keydown", function (e) {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
  });
});
"""


def _row_html(table: ComparisonTable, r: RowInfo, digits: int, ci: str,
              best: dict[str, frozenset[str]]) -> str:
    cls = ' class="baseline"' if r.name == table.baseline else ""
    tds = [f'<td data-v="{escape(r.name)}">{escape(row_label(table, r))}</td>',
           (f'<td class="num" data-v="{len(r.seeds) if r.kind == "measured" else ""}">'
           f"{escape(seeds_text(r))}</td>"),
           f'<td data-v="{escape(r.source)}">{escape(r.source)}</td>']
    for c in table.columns:
        cell = table.cell(r.name, c.key)
        v = "" if cell.mean is None else repr(cell.mean)
        title = cell.missing or (f"p = {cell.p_value:.4g}, Holm {cell.p_holm:.4g}"
                                 if cell.p_holm is not None else "")
        interval = ci_text(cell, digits) if cell.mean is not None and ci != "none" else ""
        sep = "<br>" if ci == "below" else " "
        classes = "num best" if r.name in best[c.key] else "num"
        tds.append(f'<td class="{classes}" data-v="{v}" title="{escape(title)}">'
                   f"{escape(value_text(cell, digits) + cell.marker)}"
                   f'{f"{sep}<span class=ci>{escape(interval)}</span>" if interval else ""}'
                   "</td>")
    return f"<tr{cls}>" + "".join(tds) + "</tr>"


def _th(text: str, first: str, tip: str) -> str:
    return (f'<th tabindex="0" data-first="{first}" title="{escape(tip)}">{escape(text)}'
            "</th>")


def to_html(table: ComparisonTable, *, digits: int = 4, ci: str = "below") -> str:
    if ci not in CI_PLACEMENTS:
        raise UarbenchError(f"unknown CI placement {ci!r}.",
                            fix=f"use one of: {', '.join(CI_PLACEMENTS)}.")
    title = f"uarbench compare: suite {table.suite} on {table.dataset}"
    best = {c.key: best_rows(table, c, digits) for c in table.columns}
    head = [_th("row", "asc", "sort by name"), _th("seeds", "desc", "sort by seed count"),
            _th("source", "asc", "sort by source")]
    for c in table.columns:
        order = "desc" if c.higher_is_better else "asc"
        word = "higher" if c.higher_is_better else "lower"
        head.append(_th(c.header, order, f"{word} is better: the first click puts the best "
                                         "first, the next reverses"))
    measured = [_row_html(table, r, digits, ci, best) for r in table.rows
                if r.kind == "measured"]
    reported = [_row_html(table, r, digits, ci, best) for r in table.rows
                if r.kind == "reported"]
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{escape(title)}</h1>",
             (f"<p>Baseline: <b>{escape(str(table.baseline))}</b>. Click a column header to "
              "sort (best first; click again to reverse). Highlighted: the best measured value "
              "of each column.</p>"), '<div class="wrap">', '<table class="lb">',
             f"<thead><tr>{''.join(head)}</tr></thead>", "<tbody>", *measured, "</tbody>"]
    if reported:
        parts += ['<tbody class="reported">', *reported, "</tbody>"]
    parts += ["</table>", "</div>"]
    sections = footer_lines(table, ci=ci)
    for section in ("Legend", "Notes", "Sources"):
        if section in sections:
            parts.append(f"<h2>{escape(section)}</h2><ul>")
            parts += [f"<li>{escape(x)}</li>" for x in sections[section]]
            parts.append("</ul>")
    parts += ["<footer>", "<details>", "<summary>Signatures and provenance</summary>"]
    for section in ("Metric signatures", "CI and significance signatures"):
        if section in sections:
            parts.append(f"<h3>{escape(section)}</h3><ul>")
            parts += [f"<li><code>{escape(x)}</code></li>" for x in sections[section]]
            parts.append("</ul>")
    parts += ["<h3>Provenance</h3>", "<ul>"]
    parts += [f"<li>{escape(x)}</li>" for x in sections.get("Provenance", [])]
    parts += ["</ul>",
              f"<pre>{escape(json.dumps(table.provenance, indent=2, ensure_ascii=False))}</pre>",
              "</details>", "</footer>", f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
